/**
 * The README's usage, as a program that runs: `pnpm --filter @evident/saga example`.
 *
 * The seven-step onboarding saga of `onboarding.ts` against an in-memory practice whose payer
 * gateway answers 503 once and whose practice is out of the patient's plan network: eligibility is
 * retried with the same idempotency key, the booking fails with `PlanNotContracted`, and the saga
 * compensates by moving the coordinator assignment, the financial account and the patient record
 * to holding states. Nothing is deleted. Everything between the region markers appears in the
 * README verbatim (src/readme.int.test.ts checks it, and runs this).
 */
import { PGlite } from '@electric-sql/pglite';
import { createEventStore, type EventStore } from '@evident/eventstore';
import { createSagaRuntime, migrateSagas } from '@evident/saga';
import { type OnboardingServices, onboardingSaga, PlanNotContracted } from './onboarding.js';

/** An out-of-network practice in memory: each entity's state, and each effect once per key. */
export function createPractice() {
  const states = new Map<string, string>();
  const effects = new Set<string>();
  let eligibilityCalls = 0;
  /** An effect happens once per idempotency key, however often the step runs. */
  const once = (key: string, effect: () => void) => {
    if (!effects.has(key)) effect();
    effects.add(key);
  };
  const services: OnboardingServices = {
    records: {
      create: async (patientId, { idempotencyKey }) => {
        once(idempotencyKey, () => states.set(`record-${patientId}`, 'Active'));
        return { recordId: `record-${patientId}` };
      },
      moveToHolding: async (recordId, { idempotencyKey }) => {
        once(idempotencyKey, () => states.set(recordId, 'Holding'));
      },
    },
    payers: {
      checkEligibility: async () => {
        eligibilityCalls++;
        if (eligibilityCalls === 1) throw new Error('payer gateway answered 503');
        return { eb01: '1', planCode: 'PPO-CA-12' }; // 271 EB01 1: active coverage
      },
      priorAuthorizationRequired: async () => ({ required: false }),
    },
    billing: {
      openAccount: async (patientId, _payerId, { idempotencyKey }) => {
        once(idempotencyKey, () => states.set(`account-${patientId}`, 'Open'));
        return { accountId: `account-${patientId}` };
      },
      holdAccount: async (accountId, { idempotencyKey }) => {
        once(idempotencyKey, () => states.set(accountId, 'OnHold'));
      },
    },
    coordination: {
      assign: async (patientId, _practiceId, { idempotencyKey }) => {
        once(idempotencyKey, () => states.set(`assignment-${patientId}`, 'Assigned'));
        return { assignmentId: `assignment-${patientId}` };
      },
      markPendingInsuranceResolution: async (assignmentId, { idempotencyKey }) => {
        once(idempotencyKey, () => states.set(assignmentId, 'PendingInsuranceResolution'));
      },
    },
    messaging: {
      sendWelcome: async (patientId) => ({ messageId: `welcome-${patientId}` }),
    },
    scheduling: {
      bookInitialConsultation: async () => {
        throw new PlanNotContracted('practice-9 is not in the network of plan PPO-CA-12');
      },
    },
  };
  return { services, states };
}

export async function quickstart(store: EventStore, services: OnboardingServices) {
  // #region usage
  await migrateSagas(store); // after store.migrate(); safe in every process at start-up
  const runtime = createSagaRuntime({ store, sagas: [onboardingSaga(services)] });

  const input = {
    patientId: 'p-81',
    practiceId: 'practice-9',
    payerId: 'delta-dental-ca',
    memberId: 'M-1207',
  };
  const { id } = await runtime.start('patient-onboarding', input, { id: 'onboarding-p-81' });
  const instance = await runtime.waitUntil(id); // completed, compensated or dead-lettered
  console.log(instance.status); // 'compensated': the booking failed with PlanNotContracted
  for (const entry of await runtime.timeline(id)) console.log(entry.summary);
  // SagaStarted; started createPatientRecord
  // ...
  // StepFailed scheduleInitialConsultation (attempt 1): PlanNotContracted PLAN_NOT_CONTRACTED
  // CompensationStarted assignCareCoordinator (attempt 1) → markPendingInsuranceResolution
  // ...
  await runtime.stop(); // releases what this process holds
  // #endregion usage
  return instance;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const pglite = new PGlite();
  const store = createEventStore({ pglite }); // or { connectionString }
  await store.migrate();
  const practice = createPractice();
  await quickstart(store, practice.services);
  console.log();
  for (const [entity, state] of practice.states) console.log(`${entity}: ${state}`);
  await store.close();
  await pglite.close();
}
