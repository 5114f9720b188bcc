/**
 * Child process for the crash tests: runs one subscription whose handler records each event in
 * the checkpoint's transaction (slowly, so the parent can kill it mid-stream), and reports its
 * state on stdout.
 */
import { createEventStore } from '../src/index.js';

const [url, schema, name, delayMs] = process.argv.slice(2) as [string, string, string, string];
const store = createEventStore({ connectionString: url, schema, poolSize: 4 });
const sub = store.subscribe({
  name,
  batchSize: 10,
  takeoverIntervalMs: 100,
  handler: async (event, { tx }) => {
    await tx.query(`insert into "${schema}".handled (subscription, event_id) values ($1, $2)`, [
      name,
      event.id,
    ]);
    await new Promise((r) => setTimeout(r, Number(delayMs)));
  },
});
let reported = '';
setInterval(() => {
  if (sub.state !== reported) {
    reported = sub.state;
    process.stdout.write(`${sub.state}\n`);
  }
}, 10);
