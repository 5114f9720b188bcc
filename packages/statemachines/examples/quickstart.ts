/**
 * The README's usage, as a program that runs: `pnpm --filter @evident/statemachines example`.
 * The import of the package and everything between the region markers appear in the README
 * verbatim (src/readme.int.test.ts checks it, and runs this).
 */
import { PGlite } from '@electric-sql/pglite';
import { createEventStore, type EventStore } from '@evident/eventstore';
import {
  createDurableMachine,
  isTransitionRejectedError,
  migrateStateMachines,
} from '@evident/statemachines';
import { documentReview } from './documentReview.js';

export async function quickstart(store: EventStore) {
  // #region usage
  await migrateStateMachines(store); // after store.migrate(); safe in every process at start-up
  const reviews = createDurableMachine(documentReview, {
    store,
    streamType: 'document',
    actions: { notifyReviewers: async (job) => console.log('notify', job.idempotencyKey) },
  });
  const author = { id: 'u-7', role: 'author' };

  await reviews.send('doc-1', { type: 'SUBMIT', pages: 12 }, { actor: author });
  try {
    await reviews.send('doc-1', { type: 'PUBLISH', role: 'author' }, { actor: author });
  } catch (error) {
    if (!isTransitionRejectedError(error)) throw error; // and recorded as TransitionRejected
  }
  const worker = reviews.startWorker(); // retries failed actions, fires the review deadline
  const [, submitted] = await reviews.history('doc-1'); // each step: event, guards, actor, state
  const then = await reviews.stateAt('doc-1', submitted!.recordedAt); // the state at that time
  await worker.stop();
  // #endregion usage
  return { submitted, then };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const store = createEventStore({ pglite: new PGlite() });
  await store.migrate();
  const { then } = await quickstart(store);
  console.log(JSON.stringify(then?.state.value));
  await store.close();
}
