/**
 * A saga worker in a child process, for the crash and restart tests. Usage:
 *   sagaWorker.ts <url> <schema> <mode> <leaseMs> [sagaId]
 *
 *   start-hang-after-effect   start <sagaId>; its claim step makes its effect, then hangs
 *   start-hang-before-effect  start <sagaId>; its claim step hangs before its effect
 *   start-sleep               start <sagaId> of the timer saga (sleeps 3 s in database time)
 *   work                      run workers until killed
 *   work-grouped              the same, on a store with group commit on
 *
 * Prints `ready`, `started`, `in-step <attempt>` and `effect <attempt>` lines for the parent.
 */
import { createEventStore } from '@evident/eventstore';
import { createSagaRuntime } from '../src/index.js';
import { crashSagas } from './crashSagas.js';

const [url, schema, mode, leaseMs, sagaId] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string?,
];
const say = (line: string) => process.stdout.write(`${line}\n`);
const store = createEventStore({
  connectionString: url,
  schema,
  poolSize: 4,
  groupCommit: mode === 'work-grouped',
});
const hang =
  mode === 'start-hang-after-effect'
    ? 'after'
    : mode === 'start-hang-before-effect'
      ? 'before'
      : 'never';
const runtime = createSagaRuntime({
  store,
  sagas: crashSagas({ store, schema, hang, say }),
  workers: { concurrency: 8, lease: Number(leaseMs), pollInterval: 100 },
});
say(`ready ${runtime.workerId}`);
if (mode.startsWith('start-') && sagaId) {
  await runtime.start(
    mode === 'start-sleep' ? 'reminder' : 'claim-submission',
    { claimId: `c-${sagaId}` },
    { id: sagaId },
  );
  say('started');
}
setInterval(() => {}, 1000);
