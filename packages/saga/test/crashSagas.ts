/**
 * Sagas for the crash and restart tests. Their steps record, in the test's schema, every attempt
 * (`attempts`) and every effect keyed by the step's idempotency key (`effects`, one row per key:
 * what an external system that honours idempotency keys would do).
 */
import type { EventStore } from '@evident/eventstore';
import { defineSaga } from '../src/index.js';

export const crashTables = (schema: string) => `
  create table "${schema}".attempts (key text not null, attempt int not null, pid int not null,
    at timestamptz not null default clock_timestamp());
  create table "${schema}".effects (key text primary key, pid int not null,
    at timestamptz not null default clock_timestamp());`;

export function crashSagas(options: {
  readonly store: EventStore;
  readonly schema: string;
  readonly hang: 'before' | 'after' | 'never';
  readonly say: (line: string) => void;
}) {
  const { store, schema, hang, say } = options;
  const forever = () => new Promise<never>(() => {});
  const record = async (key: string, attempt: number) => {
    await store.database.query(
      `insert into "${schema}".attempts (key, attempt, pid) values ($1, $2, $3)`,
      [key, attempt, process.pid],
    );
    if (hang !== 'never') say(`in-step ${attempt}`);
  };
  const effect = async (key: string, attempt: number) => {
    await store.database.query(
      `insert into "${schema}".effects (key, pid) values ($1, $2) on conflict (key) do nothing`,
      [key, process.pid],
    );
    if (hang !== 'never') say(`effect ${attempt}`);
  };
  const claimSubmission = defineSaga<{ claimId: string }>('claim-submission', { version: 1 })
    .step('captureCharges', { run: ({ input }) => ({ claimId: input.claimId, lines: 3 }) })
    .step('submitClaim', {
      run: async ({ idempotencyKey, attempt }) => {
        await record(idempotencyKey, attempt);
        if (hang === 'before') await forever();
        await effect(idempotencyKey, attempt);
        if (hang === 'after') await forever();
        return { submitted: true };
      },
      compensate: { transition: 'withdrawClaim', run: () => null },
    })
    .step('confirmSubmission', { run: () => ({ ok: true }) });
  const reminder = defineSaga<{ claimId: string }>('reminder', { version: 1 })
    .step('schedule', { run: () => null })
    .sleep(3000, { name: 'followUpDelay' })
    .step('sendReminder', {
      run: async ({ idempotencyKey, attempt }) => {
        await record(idempotencyKey, attempt);
        await effect(idempotencyKey, attempt);
        return null;
      },
    });
  // Eligibility checks in bulk: every claim id ending in 7 is out of network and compensates.
  const eligibilityBatch = defineSaga<{ claimId: string }>('eligibility-batch', { version: 1 })
    .step('verifyEligibility', {
      run: async ({ idempotencyKey, attempt }) => {
        await effect(idempotencyKey, attempt);
        return { eb01: '1' };
      },
    })
    .step('openAccount', {
      run: async ({ idempotencyKey, attempt }) => {
        await effect(idempotencyKey, attempt);
        return { accountId: 'a' };
      },
      compensate: {
        transition: 'holdAccount',
        run: async ({ idempotencyKey, attempt }) => {
          await effect(idempotencyKey, attempt);
          return null;
        },
      },
    })
    .step('scheduleConsultation', {
      run: ({ input }) => {
        if (input.claimId.endsWith('7')) {
          throw Object.assign(new Error('out of network'), { name: 'PlanNotContracted' });
        }
        return { appointment: true };
      },
      retry: { attempts: 2, initialInterval: 50, nonRetryable: ['PlanNotContracted'] },
    });
  return [claimSubmission, reminder, eligibilityBatch];
}
