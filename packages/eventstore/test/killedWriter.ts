/**
 * Child process for the SIGKILL test: opens a transaction, appends to two streams, tells the
 * parent it is ready, then waits to be killed before it can COMMIT.
 */
import pg from 'pg';

const [url, schema, streamA, streamB, batchA, batchB] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const client = new pg.Client({ connectionString: url });
await client.connect();
await client.query('begin');
for (const [id, batch] of [
  [streamA, batchA],
  [streamB, batchB],
]) {
  await client.query(`select * from "${schema}".append_to_stream('claim', $1, -1, $2::jsonb)`, [
    id,
    batch,
  ]);
}
process.stdout.write('ready\n');
setInterval(() => {}, 1000);
