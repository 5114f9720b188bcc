/**
 * Child process for the SIGKILL test: opens a transaction, appends to two streams, tells the
 * parent it is ready, then waits to be killed before it can COMMIT.
 */
import pg from 'pg';
import { appendStatement } from '../src/appendSql.js';

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
] as const) {
  await client.query(appendStatement(`"${schema}"`, 'any', 'many'), [
    'claim',
    id,
    JSON.parse(batch).length,
    batch,
    '',
  ]);
}
process.stdout.write('ready\n');
setInterval(() => {}, 1000);
