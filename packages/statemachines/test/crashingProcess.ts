/**
 * Child process for the crash tests: steps an entity, tells the parent where it is, then waits to
 * be killed with SIGKILL. Usage: crashingProcess.ts <url> <schema> <scenario> <entityId>
 *
 *   after-commit      the step commits (its action left to workers), then the process idles
 *   in-action         the step commits, its action starts, and the process dies inside it
 *   in-transaction    a transactional action has written inside its transaction, then dies
 *   timer-scheduled   a step schedules a 1.5 s timer, then the process dies
 */
import { createEventStore } from '@evident/eventstore';
import { documentReview } from '../examples/documentReview.js';
import { createDurableMachine } from '../src/index.js';
import { claimMachine } from './machines.js';

const [url, schema, scenario, entityId] = process.argv.slice(2) as [string, string, string, string];
const store = createEventStore({ connectionString: url, schema, poolSize: 2 });
const actor = { id: 'u-17', role: 'billing-clerk' };
const say = (line: string) => process.stdout.write(`${line}\n`);
const idle = () => new Promise<never>(() => setInterval(() => {}, 1000));

if (scenario === 'timer-scheduled') {
  const reviews = createDurableMachine(
    documentReview.provide({ delays: { reviewDeadline: 1500 } }),
    { store, streamType: 'document' },
  );
  await reviews.send(entityId, { type: 'SUBMIT', pages: 2 }, { actor });
  say('scheduled');
  await idle();
}

const claims = createDurableMachine(claimMachine, {
  store,
  streamType: 'claim',
  leaseMs: 1000,
  runActions: scenario === 'after-commit' ? 'worker' : 'inline',
  actions: {
    notifyPayer:
      scenario === 'in-transaction'
        ? {
            transactional: true,
            async run(job, tx) {
              await tx.query(`insert into "${schema}".effects (key, pid) values ($1, $2)`, [
                job.idempotencyKey,
                process.pid,
              ]);
              say('in-transaction');
              await idle();
            },
          }
        : async () => {
            say('in-action');
            await idle();
          },
  },
});
await claims.send(entityId, { type: 'ClaimSubmitted', lines: 1 }, { actor });
say('committed');
await idle();
