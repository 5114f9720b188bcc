/**
 * docs/sagas.md is tested code: every TypeScript block of the page is a slice of this file, of
 * examples/onboarding.ts or of examples/quickstart.ts (indentation aside), and the regions below
 * run here against PGlite. Helpers outside the regions stand in for the practice's systems.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createEnvelope } from '@evident/envelope';
import type { EventStore } from '@evident/eventstore';
import {
  createSagaRuntime,
  defineSaga,
  isSagaError,
  renameSteps,
  type SagaEventData,
  type SagaRuntime,
  uuidFromKey,
} from '@evident/saga';
import { checkStoredHistories, createVirtualClock, given, sagaKit } from '@evident/saga/testing';
import { createDurableMachine } from '@evident/statemachines';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { setup } from 'xstate';
import { onboardingSaga, PlanNotContracted } from '../examples/onboarding.js';
import { createPractice } from '../examples/quickstart.js';
import { pgliteFactory, type StoreFixture } from '../test/fixtures.js';

const read = (path: string) => readFile(fileURLToPath(new URL(path, import.meta.url)), 'utf8');
/** Lines without their indentation: a block shown at the left margin matches nested code. */
const flat = (code: string) =>
  code
    .split('\n')
    .map((line) => line.trim())
    .join('\n');

/** The clearinghouse and billing systems of the claim saga, in memory. */
function createClearinghouse() {
  const calls: string[] = [];
  let primaryDown = false;
  const call = <T>(name: string, result: T) => {
    calls.push(name);
    return Promise.resolve(result);
  };
  return {
    calls,
    takePrimaryDown: () => {
      primaryDown = true;
    },
    bringPrimaryUp: () => {
      primaryDown = false;
    },
    billing: {
      captureCharges: (claimId: string, _o: { idempotencyKey: string }) =>
        call('captureCharges', { claimId, lines: 2, total: 1450 }),
      voidCharges: (claimId: string, _o: { idempotencyKey: string }) =>
        call('voidCharges', { claimId }),
      postPayment: (claimId: string, paid: number, _o: { idempotencyKey: string }) =>
        call('postPayment', { claimId, paid }),
    },
    payers: {
      priorAuthorizationRequired: (payerId: string, cdtCodes: readonly string[]) =>
        call('priorAuthorizationRequired', {
          required: payerId === 'metlife-dental' && cdtCodes.includes('D8080'),
        }),
      requestPriorAuthorization: (claimId: string, _o: { idempotencyKey: string }) =>
        call('requestPriorAuthorization', { claimId, reference: 'PA-3391' }),
      submit837D: (
        payerId: string,
        claimId: string,
        _o: { idempotencyKey: string; signal: AbortSignal },
      ) => {
        if (primaryDown && payerId === 'delta-dental-ca') {
          return Promise.reject(
            Object.assign(new Error('clearinghouse unavailable'), { code: 'CH_DOWN' }),
          );
        }
        return call(`submit837D ${payerId}`, { payerId, claimId, accepted: true });
      },
      claimStatusInquiry: (claimId: string, _o: { idempotencyKey: string }) =>
        call('claimStatusInquiry', { claimId, transaction: '276' }),
    },
  };
}

interface ClaimInput {
  readonly claimId: string;
  readonly patientId: string;
  readonly primaryPayerId: string;
  readonly secondaryPayerId: string;
  readonly cdtCodes: readonly string[];
}

const claimInput: ClaimInput = {
  claimId: 'c-9',
  patientId: 'p-81',
  primaryPayerId: 'delta-dental-ca',
  secondaryPayerId: 'metlife-dental',
  cdtCodes: ['D0120', 'D1110'],
};

const claimSaga = (clearinghouse: ReturnType<typeof createClearinghouse>) => {
  const { billing, payers } = clearinghouse;
  // #region claim
  const claimLifecycle = defineSaga<ClaimInput>('claim-lifecycle', { version: 1 })
    .step('captureCharges', {
      run: ({ input, idempotencyKey }) => billing.captureCharges(input.claimId, { idempotencyKey }),
      compensate: {
        transition: 'voidCharges',
        to: 'Voided',
        run: ({ input, idempotencyKey }) => billing.voidCharges(input.claimId, { idempotencyKey }),
      },
    })
    .step('checkPriorAuthorization', {
      run: ({ input }) => payers.priorAuthorizationRequired(input.primaryPayerId, input.cdtCodes),
    })
    .when(
      ({ results }) => results.checkPriorAuthorization.required,
      (b) =>
        b.step('requestPriorAuthorization', {
          run: ({ input, idempotencyKey }) =>
            payers.requestPriorAuthorization(input.claimId, { idempotencyKey }),
        }),
      { name: 'priorAuthorizationRequired' },
    )
    .parallel(
      {
        primary: (b) =>
          b.step('submitToPrimaryPayer', {
            run: ({ input, idempotencyKey, signal }) =>
              payers.submit837D(input.primaryPayerId, input.claimId, { idempotencyKey, signal }),
            timeout: '2m',
            // A clearinghouse outage is for a person to look at, not a reason to void the charges.
            onExhausted: 'deadLetter',
          }),
        secondary: (b) =>
          b.step('submitToSecondaryPayer', {
            run: ({ input, idempotencyKey, signal }) =>
              payers.submit837D(input.secondaryPayerId, input.claimId, { idempotencyKey, signal }),
            timeout: '2m',
          }),
      },
      { name: 'submission' },
    )
    // Adjudication takes 30 to 45 days: the instance is a row with a wake-up time meanwhile.
    .waitFor<'RemittanceReceived', { clp02: string; paid: number }, 'remittance'>(
      'RemittanceReceived',
      {
        name: 'remittance',
        correlate: ({ input }) => input.claimId,
        timeout: '45d',
        onTimeout: 'continue',
      },
    )
    .when(
      ({ results }) => results.remittance === null,
      (b) =>
        b.step('followUpWithPayer', {
          run: ({ input, idempotencyKey }) =>
            payers.claimStatusInquiry(input.claimId, { idempotencyKey }),
        }),
      { name: 'noRemittance' },
    )
    .step('postPayment', {
      run: ({ input, results, idempotencyKey }) =>
        billing.postPayment(input.claimId, results.remittance?.data.paid ?? 0, { idempotencyKey }),
    });
  // #endregion claim
  return claimLifecycle;
};

const careCoordinationMachine = setup({
  types: {
    events: {} as
      | { type: 'ASSIGN'; coordinatorId: string }
      | { type: 'MARK_PENDING_INSURANCE_RESOLUTION' }
      | { type: 'INSURANCE_RESOLVED' }
      | { type: 'CLOSE' },
  },
}).createMachine({
  id: 'careCoordination',
  initial: 'unassigned',
  states: {
    unassigned: { on: { ASSIGN: 'assigned' } },
    assigned: {
      on: { MARK_PENDING_INSURANCE_RESOLUTION: 'pendingInsuranceResolution', CLOSE: 'closed' },
    },
    pendingInsuranceResolution: { on: { INSURANCE_RESOLVED: 'assigned', CLOSE: 'closed' } },
    closed: { type: 'final' },
  },
});

describe('docs/sagas.md', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  const runtimes: SagaRuntime[] = [];
  const operator = { id: 'u-42', role: 'operations-lead' };

  beforeAll(async () => {
    fixture = await pgliteFactory()();
    store = fixture.store;
  });
  // The examples print what an operator would see.
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((r) => r.stop()));
    log.mockClear();
  });
  afterAll(async () => {
    log.mockRestore();
    await fixture?.cleanup();
  });

  it('shows only code from this file and the examples', async () => {
    const [doc, ...sources] = await Promise.all([
      read('../../../docs/sagas.md'),
      read('./docs.int.test.ts'),
      read('../examples/onboarding.ts'),
      read('../examples/quickstart.ts'),
    ]);
    const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => flat(m[1]!).trim());
    expect(blocks.length).toBeGreaterThan(8);
    for (const block of blocks) {
      expect(
        sources.some((source) => flat(source).includes(block)),
        `not found in the tested sources:\n${block}`,
      ).toBe(true);
    }
    // The running example is the whole onboarding saga.
    const onboarding = sources[1]!.match(/\/\/ #region onboarding\n([\s\S]*?)\/\/ #endregion/)![1]!;
    expect(blocks).toContain(flat(onboarding).trim());
  });

  it('runs the claim lifecycle: charges, both payers in parallel, a remittance delivered by key', async () => {
    const clearinghouse = createClearinghouse();
    const claimLifecycle = claimSaga(clearinghouse);
    const runtime = createSagaRuntime({ store, sagas: [claimLifecycle] });
    runtimes.push(runtime);
    await runtime.start('claim-lifecycle', claimInput, { id: 'claim-c-9' });
    await runtime.waitUntil('claim-c-9', { until: (i) => i.status === 'waiting' });
    // #region deliver
    const remittance = createEnvelope({
      type: 'RemittanceReceived',
      data: { claimId: 'c-9', clp02: '1', paid: 182.5 }, // 835 CLP02 1: processed as primary
      source: 'clearinghouse',
      actor: { id: 'era-835', role: 'system' },
    });
    // Every unfinished instance waiting for RemittanceReceived with key c-9 (or in the
    // remittance's workflow) gets it; the same envelope delivered again is recorded once.
    const signalled = await runtime.deliver(remittance, { key: 'c-9' }); // ['claim-c-9']
    // #endregion deliver
    expect(signalled).toEqual(['claim-c-9']);
    expect((await runtime.waitUntil('claim-c-9')).status).toBe('completed');
    expect(clearinghouse.calls).toEqual([
      'captureCharges',
      'priorAuthorizationRequired',
      expect.stringMatching(/^submit837D /),
      expect.stringMatching(/^submit837D /),
      'postPayment',
    ]);
    const events = await store.readStream({ type: 'saga', id: 'claim-c-9' });
    const posted = events.filter((e) => e.type === 'StepSucceeded').at(-1)!
      .data as SagaEventData['StepSucceeded'];
    expect(posted).toMatchObject({ step: 'postPayment', result: { paid: 182.5 } });
  });

  it('checks machine compensations when the saga is defined, and takes them as transitions', async () => {
    const frontDesk = { id: 'u-17', role: 'front-desk' };
    // #region machine
    const assignments = createDurableMachine(careCoordinationMachine, {
      store,
      streamType: 'care-coordination',
    });
    const onboarding = defineSaga<{ patientId: string }>('onboarding-coordination', { version: 1 })
      .step('assignCareCoordinator', {
        run: async ({ input, idempotencyKey }) => {
          const assignment = { type: 'ASSIGN', coordinatorId: 'cc-4' } as const;
          await assignments.send(input.patientId, assignment, {
            actor: frontDesk,
            // idempotent by a UUID derived from the step's key
            id: uuidFromKey(idempotencyKey),
          });
          return { assignmentId: input.patientId };
        },
        compensate: {
          transition: 'markPendingInsuranceResolution',
          machine: assignments,
          to: 'pendingInsuranceResolution',
          entityId: ({ result }) => result.assignmentId,
        },
      })
      .step('scheduleInitialConsultation', {
        run: () => {
          throw new PlanNotContracted('practice-9 is not in the plan network');
        },
        retry: { nonRetryable: [PlanNotContracted] },
      });
    // #endregion machine
    const runtime = createSagaRuntime({ store, sagas: [onboarding] });
    runtimes.push(runtime);
    await runtime.start('onboarding-coordination', { patientId: 'p-83' }, { id: 'onb-p-83' });
    expect((await runtime.waitUntil('onb-p-83')).status).toBe('compensated');
    expect((await assignments.load('p-83'))!.value).toBe('pendingInsuranceResolution');

    const refused = vi.spyOn(console, 'error').mockImplementation(() => {});
    // #region never-legal
    try {
      defineSaga('careless-onboarding', { version: 1 }).step('assignCareCoordinator', {
        run: () => ({ assignmentId: 'p-84' }),
        compensate: {
          transition: 'deleteAssignment',
          machine: assignments,
          to: 'unassigned', // the initial state: no transition leads back into it
          entityId: ({ result }) => result.assignmentId,
        },
      });
    } catch (error) {
      if (!isSagaError(error, 'COMPENSATION_NEVER_LEGAL')) throw error;
      console.error(error.message); // ...targets state unassigned, which no transition of
      // care-coordination machines leads into
    }
    // #endregion never-legal
    expect(refused).toHaveBeenCalledWith(expect.stringMatching(/unassigned, which no transition/));
    refused.mockRestore();
  });

  it('sleeps until a date computed from the input', async () => {
    const sent: string[] = [];
    const messaging = {
      sendReminder: async (patientId: string, _o: { idempotencyKey: string }) => {
        sent.push(patientId);
        return { messageId: `reminder-${patientId}` };
      },
    };
    // #region sleep
    const reminder = defineSaga<{ patientId: string; consultationAt: string }>(
      'consultation-reminder',
      { version: 1 },
    )
      .sleep(
        { until: ({ input }) => new Date(Date.parse(input.consultationAt) - 86_400_000) },
        { name: 'untilTheDayBefore' },
      )
      .step('sendReminder', {
        run: ({ input, idempotencyKey }) =>
          messaging.sendReminder(input.patientId, { idempotencyKey }),
      });
    // #endregion sleep
    const consultationAt = new Date(Date.now() + 21 * 86_400_000).toISOString();
    const outcome = await given(reminder, { patientId: 'p-81', consultationAt }, { store }).then({
      status: 'completed',
      completed: ['sendReminder'],
    });
    expect(outcome.skippedMs).toBeGreaterThan(19 * 86_400_000);
    expect(sent).toEqual(['p-81']);
  });

  it('parks dead letters for operators, who retry, compensate or resolve them', async () => {
    const practice = createPractice();
    let billingUp = false;
    const services = {
      ...practice.services,
      billing: {
        ...practice.services.billing,
        holdAccount: async () => {
          if (!billingUp) throw new Error('billing system unavailable');
        },
      },
    };
    const clearinghouse = createClearinghouse();
    clearinghouse.takePrimaryDown();
    const runtime = createSagaRuntime({
      store,
      sagas: [onboardingSaga(services), claimSaga(clearinghouse)],
    });
    runtimes.push(runtime);
    const input = {
      patientId: 'p-85',
      practiceId: 'practice-9',
      payerId: 'delta-dental-ca',
      memberId: 'M-3310',
    };
    await runtime.start('patient-onboarding', input, { id: 'onboarding-p-85' });
    await runtime.start(
      'claim-lifecycle',
      { ...claimInput, claimId: 'c-12' },
      { id: 'claim-c-12' },
    );
    expect((await runtime.waitUntil('onboarding-p-85', { timeout: '20s' })).status).toBe(
      'dead_lettered',
    );
    expect((await runtime.waitUntil('claim-c-12', { timeout: '20s' })).status).toBe(
      'dead_lettered',
    );

    // #region dead-letters
    const byError = await runtime.countBy('error', { status: 'dead_lettered' });
    // [{ key: 'CH_DOWN', count: 1 }, { key: 'Error', count: 1 }]
    const [letter] = await runtime.deadLetters({ saga: 'patient-onboarding' });
    const { failurePoint, originalFailure, participants } = letter!.context;
    // failurePoint: { phase: 'compensation', step: 'createFinancialAccount', attempt: 3, error }
    // originalFailure: { phase: 'step', step: 'scheduleInitialConsultation', error: PlanNotContracted }
    // participants: createPatientRecord completed, createFinancialAccount compensation-failed,
    // assignCareCoordinator compensated, ...
    // #endregion dead-letters
    expect(byError).toEqual(
      expect.arrayContaining([
        { key: 'CH_DOWN', count: 1 },
        { key: 'Error', count: 1 },
      ]),
    );
    expect(failurePoint).toMatchObject({
      phase: 'compensation',
      step: 'createFinancialAccount',
      attempt: 3,
    });
    expect(originalFailure).toMatchObject({
      step: 'scheduleInitialConsultation',
      error: { name: 'PlanNotContracted' },
    });
    expect(participants.map((p) => `${p.step} ${p.status}`)).toEqual(
      expect.arrayContaining([
        'createPatientRecord completed',
        'createFinancialAccount compensation-failed',
        'assignCareCoordinator compensated',
      ]),
    );

    billingUp = true;
    // #region retry
    // Billing is back: run the failed compensation again, then the rest of them.
    await runtime.retryFromFailure('onboarding-p-85', {
      operator,
      reason: 'billing system restored after the 09:10 outage',
    });
    // #endregion retry
    expect((await runtime.waitUntil('onboarding-p-85')).status).toBe('compensated');
    expect(practice.states.get('record-p-85')).toBe('Holding');

    // #region compensate
    // The patient withdrew while the clearinghouse was down: void the charges instead.
    await runtime.compensate('claim-c-12', { operator, reason: 'patient withdrew the claim' });
    // #endregion compensate
    expect((await runtime.waitUntil('claim-c-12')).status).toBe('compensated');
    expect(clearinghouse.calls).toContain('voidCharges');

    const stuck = createSagaRuntime({ store, sagas: [claimSaga(clearinghouse)], workers: false });
    runtimes.push(stuck);
    clearinghouse.bringPrimaryUp();
    await stuck.start('claim-lifecycle', { ...claimInput, claimId: 'c-14' }, { id: 'claim-c-14' });
    await stuck.drain();
    expect((await stuck.get('claim-c-14'))!.status).toBe('waiting');
    // #region resolve
    await runtime.resolve('claim-c-14', {
      operator,
      reason: 'payer confirmed payment by phone; posted by hand',
    });
    // #endregion resolve
    expect((await runtime.get('claim-c-14'))!.status).toBe('resolved');
    // #region timeline
    for (const entry of await runtime.timeline('claim-c-14')) {
      console.log(entry.recordedAt, entry.actor.id, entry.summary);
    }
    // ... u-42 ManuallyResolved by u-42: payer confirmed payment by phone; posted by hand
    // #endregion timeline
    expect(log.mock.calls.at(-1)!.at(-1)).toBe(
      'ManuallyResolved by u-42: payer confirmed payment by phone; posted by hand',
    );
  });

  it('lets version 2 take over version 1 instances through a migration, checked by replay', async () => {
    const noop = () => ({ ok: true });
    const v1 = defineSaga('consent-onboarding', { version: 1 })
      .step('createPatientRecord', { run: noop })
      .waitFor('ConsentSigned', { name: 'consent' })
      .step('scheduleInitialConsultation', { run: noop });
    const old = createSagaRuntime({ store, sagas: [v1], workers: false });
    await old.start('consent-onboarding', null, { id: 'consent-p-86' });
    await old.drain();
    await old.stop();
    // #region versions
    const v2 = defineSaga('consent-onboarding', {
      version: 2,
      // Lets v2 run instances v1 started, mapping each recorded event of theirs.
      migrations: { 1: renameSteps({ createPatientRecord: 'registerPatient' }) },
    })
      .step('registerPatient', { run: noop })
      .waitFor('ConsentSigned', { name: 'consent' })
      .step('scheduleInitialConsultation', { run: noop })
      .step('sendWelcomeCommunications', { run: noop }); // added at the end: compatible

    // In CI, against a copy of production's saga streams, before deploying v2:
    const reports = await checkStoredHistories({ store, sagas: [v2] });
    const incompatible = reports.filter((r) => !r.compatible);
    // [] — or, per instance, problems such as { kind: 'order-changed', node, message }
    // #endregion versions
    expect(reports.map((r) => [r.sagaId, r.compatible])).toEqual([['consent-p-86', true]]);
    expect(incompatible).toEqual([]);
    const next = createSagaRuntime({ store, sagas: [v2], workers: false });
    runtimes.push(next);
    await next.signal(
      'consent-p-86',
      createEnvelope({
        type: 'ConsentSigned',
        data: { form: 'HIPAA-NPP' },
        source: 'patient-portal',
        actor: { id: 'portal', role: 'system' },
      }),
    );
    await next.drain();
    expect(await next.get('consent-p-86')).toMatchObject({ status: 'completed', version: 2 });
  });

  it('passes a 45-day wait in milliseconds with the virtual clock', async () => {
    const claimLifecycle = claimSaga(createClearinghouse());
    // #region virtual-clock
    const clock = createVirtualClock();
    const runtime = createSagaRuntime({ store, sagas: [claimLifecycle], clock, workers: false });
    const kit = sagaKit(runtime, store, clock);

    await runtime.start('claim-lifecycle', claimInput, { id: 'claim-c-21' });
    // Runs what is due, skips the clock to the next wake-up, and again, until the instance is
    // final: here the remittance wait times out after 45 days and the payer is followed up.
    const settled = await kit.runUntilSettled('claim-c-21', { within: '60d' });
    console.log(settled.status, clock.skipped / 86_400_000); // completed 45
    // #endregion virtual-clock
    runtimes.push(runtime);
    expect(settled.status).toBe('completed');
    expect(Math.round(clock.skipped / 86_400_000)).toBe(45);
  });

  it('states scenarios as given, when, then', async () => {
    const practice = createPractice();
    const input = {
      patientId: 'p-87',
      practiceId: 'practice-9',
      payerId: 'delta-dental-ca',
      memberId: 'M-4471',
    };
    // #region given
    await given(onboardingSaga(practice.services), input)
      .when({
        steps: {
          verifyInsuranceEligibility: () => ({ eb01: '1', planCode: 'PPO-CA-12' }),
          scheduleInitialConsultation: () => {
            throw new PlanNotContracted('practice-9 is not in the network of plan PPO-CA-12');
          },
        },
      })
      .then({
        status: 'compensated',
        compensated: ['assignCareCoordinator', 'createFinancialAccount', 'createPatientRecord'],
      });

    const claimLifecycle = claimSaga(createClearinghouse());
    const paid = await given(claimLifecycle, claimInput)
      .when({
        signals: [{ type: 'RemittanceReceived', data: { clp02: '1', paid: 182.5 }, after: '31d' }],
      })
      .then({ status: 'completed' });
    console.log(paid.completed.at(-1), paid.skippedMs / 86_400_000); // postPayment 31
    // #endregion given

    // An expectation that does not hold fails as an assertion, naming what differed.
    const wrong = await given(onboardingSaga(practice.services), input)
      .when({ steps: { verifyInsuranceEligibility: () => ({ eb01: '1', planCode: 'PPO-CA-12' }) } })
      .then({ status: 'dead_lettered' })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(wrong).toMatchObject({ name: 'AssertionError' });
    expect((wrong as Error).message).toMatch(
      /status: expected "?dead_lettered"?, got "?(completed|compensated)"?/,
    );
    expect(paid.completed).toHaveLength(5);
    expect(paid.completed.at(-1)).toBe('postPayment');
    expect(Math.round(paid.skippedMs / 86_400_000)).toBe(31);
    expect(practice.states.get('record-p-87')).toBe('Holding');
  });
});
