/**
 * Compensation as a transition of an Evident state machine: legal in the machine or refused when
 * the saga is defined; checked against the entity's current state before it runs; dead-lettered
 * with the entity's state when that state does not allow it.
 */
import { createHash } from 'node:crypto';
import type { EventStore } from '@evident/eventstore';
import { createDurableMachine } from '@evident/statemachines';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { PlanNotContracted } from '../examples/onboarding.js';
import { postgresFactory, type StoreFixture, sagaId } from '../test/fixtures.js';
import { careCoordinationMachine, patientRecordMachine } from '../test/machines.js';
import {
  createSagaRuntime,
  defineSaga,
  isSagaError,
  type SagaEventData,
  type SagaRuntime,
} from './index.js';

const frontDesk = { id: 'u-17', role: 'front-desk' };

describe.skipIf(!postgresUrl)('compensation as a state machine transition (PostgreSQL)', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  const runtimes: SagaRuntime[] = [];

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
  });
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((r) => r.stop()));
  });
  afterAll(() => fixture?.cleanup());

  const machines = () => ({
    assignments: createDurableMachine(careCoordinationMachine, {
      store,
      streamType: 'care-coordination',
    }),
    records: createDurableMachine(patientRecordMachine, { store, streamType: 'patient-record' }),
  });

  /** Onboarding cut to the steps whose participants are machines, failing at the end. */
  const onboarding = (
    m: ReturnType<typeof machines>,
    options: { beforeFailure?: (patientId: string) => Promise<void> } = {},
  ) =>
    defineSaga<{ patientId: string }>('onboarding-machines', { version: 1 })
      .step('createPatientRecord', {
        run: async ({ input, idempotencyKey }) => {
          await m.records.send(
            input.patientId,
            { type: 'OPEN' },
            { actor: frontDesk, id: uuidOf(idempotencyKey) },
          );
          return { recordId: input.patientId };
        },
        compensate: {
          transition: 'moveToHolding',
          machine: m.records,
          to: 'holding',
          entityId: ({ result }) => result.recordId,
        },
      })
      .step('assignCareCoordinator', {
        run: async ({ input, idempotencyKey }) => {
          await m.assignments.send(
            input.patientId,
            { type: 'ASSIGN', coordinatorId: 'cc-4' },
            { actor: frontDesk, id: uuidOf(idempotencyKey) },
          );
          return { assignmentId: input.patientId };
        },
        compensate: {
          transition: 'markPendingInsuranceResolution',
          machine: m.assignments,
          to: 'pendingInsuranceResolution',
          entityId: ({ result }) => result.assignmentId,
        },
      })
      .step('scheduleInitialConsultation', {
        run: async ({ input }) => {
          await options.beforeFailure?.(input.patientId);
          throw new PlanNotContracted('out of network');
        },
        retry: { attempts: 1 },
      });

  it('checks each compensation against its machine, then takes the transition, in reverse order', async () => {
    const m = machines();
    const runtime = createSagaRuntime({
      store,
      sagas: [onboarding(m)],
      workers: { pollInterval: 50 },
    });
    runtimes.push(runtime);
    const id = sagaId();
    const patientId = `p-${id}`;
    const { correlationId } = await runtime.start('onboarding-machines', { patientId }, { id });
    expect((await runtime.waitUntil(id)).status).toBe('compensated');
    expect((await m.assignments.load(patientId))!.value).toBe('pendingInsuranceResolution');
    expect((await m.records.load(patientId))!.value).toBe('holding');
    // The participants' steps belong to the saga's workflow and are caused by it.
    const history = await m.assignments.history(patientId);
    expect(history.at(-1)).toMatchObject({
      from: 'assigned',
      to: 'pendingInsuranceResolution',
      event: { type: 'MARK_PENDING_INSURANCE_RESOLUTION' },
    });
    const journey = await store.readByCorrelation(correlationId);
    expect(journey.some((e) => e.stream.type === 'care-coordination')).toBe(true);
    const saga = (await store.readStream({ type: 'saga', id })).filter(
      (e) => e.type === 'CompensationSucceeded',
    );
    expect(saga.map((e) => (e.data as SagaEventData['CompensationSucceeded']).step)).toEqual([
      'assignCareCoordinator',
      'createPatientRecord',
    ]);
    expect((saga[0]!.data as { result: unknown }).result).toMatchObject({
      entityId: patientId,
      from: 'assigned',
      state: 'pendingInsuranceResolution',
    });
  });

  it('refuses to define a saga whose compensation no entity could ever take', () => {
    const m = machines();
    const define = (to: string, events?: { type: string }[]) =>
      defineSaga('impossible', { version: 1 }).step('assign', {
        run: () => ({ id: 'x' }),
        compensate: {
          transition: 'undoAssignment',
          machine: m.assignments,
          to,
          entityId: () => 'x',
          ...(events ? { events } : {}),
        },
      });
    const refusal = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return error;
      }
      throw new Error('expected a refusal');
    };
    // No such state.
    expect(
      isSagaError(
        refusal(() => define('deleted')),
        'COMPENSATION_NEVER_LEGAL',
      ),
    ).toBe(true);
    // A state no transition leads into (initial states are entered only at creation).
    expect(
      isSagaError(
        refusal(() => define('unassigned')),
        'COMPENSATION_NEVER_LEGAL',
      ),
    ).toBe(true);
    // A reachable state, but not on the events the compensation may send.
    expect(
      isSagaError(
        refusal(() => define('pendingInsuranceResolution', [{ type: 'CLOSE' }])),
        'COMPENSATION_NEVER_LEGAL',
      ),
    ).toBe(true);
    const unreachable = () =>
      defineSaga('impossible-record', { version: 1 }).step('open', {
        run: () => ({ id: 'x' }),
        compensate: {
          transition: 'importLegacy',
          machine: m.records,
          to: 'legacyImported',
          entityId: () => 'x',
        },
      });
    expect(isSagaError(refusal(unreachable), 'COMPENSATION_NEVER_LEGAL')).toBe(true);
    expect(() =>
      define('pendingInsuranceResolution', [{ type: 'MARK_PENDING_INSURANCE_RESOLUTION' }]),
    ).not.toThrow();
  });

  it("dead-letters a compensation the entity's current state does not allow, with that state, sending nothing", async () => {
    const m = machines();
    // Someone closed the assignment while the saga ran: pendingInsuranceResolution is no longer reachable.
    const saga = onboarding(m, {
      beforeFailure: async (patientId) => {
        await m.assignments.send(patientId, { type: 'CLOSE' }, { actor: frontDesk });
      },
    });
    const runtime = createSagaRuntime({ store, sagas: [saga], workers: { pollInterval: 50 } });
    runtimes.push(runtime);
    const id = sagaId();
    const patientId = `p-${id}`;
    await runtime.start('onboarding-machines', { patientId }, { id });
    expect((await runtime.waitUntil(id)).status).toBe('dead_lettered');
    const [letter] = (await runtime.deadLetters({ saga: 'onboarding-machines' })).filter(
      (l) => l.instance.id === id,
    );
    expect(letter!.context.failurePoint).toMatchObject({
      phase: 'compensation',
      step: 'assignCareCoordinator',
      attempt: 1, // not retried: it can never become legal by waiting
      error: { code: 'COMPENSATION_ILLEGAL' },
    });
    expect(letter!.context.participants).toEqual([
      {
        step: 'createPatientRecord',
        participant: 'patient-record',
        status: 'completed',
        machineState: 'active',
      },
      {
        step: 'assignCareCoordinator',
        participant: 'care-coordination',
        status: 'compensation-failed',
        machineState: 'closed',
      },
      {
        step: 'scheduleInitialConsultation',
        participant: 'scheduleInitialConsultation',
        status: 'failed',
      },
    ]);
    // Nothing was sent to the closed assignment, and the record was left as it was.
    expect((await m.assignments.history(patientId)).map((h) => h.to)).toEqual([
      'unassigned',
      'assigned',
      'closed',
    ]);
    expect((await m.records.load(patientId))!.value).toBe('active');
  });

  it('does not take a transition again when the entity is already where the compensation leads', async () => {
    const m = machines();
    const saga = onboarding(m, {
      beforeFailure: async (patientId) => {
        // As if an earlier attempt of the compensation had moved it, on a worker that then died.
        await m.assignments.send(
          patientId,
          { type: 'MARK_PENDING_INSURANCE_RESOLUTION' },
          { actor: frontDesk },
        );
      },
    });
    const runtime = createSagaRuntime({ store, sagas: [saga], workers: { pollInterval: 50 } });
    runtimes.push(runtime);
    const id = sagaId();
    const patientId = `p-${id}`;
    await runtime.start('onboarding-machines', { patientId }, { id });
    expect((await runtime.waitUntil(id)).status).toBe('compensated');
    const steps = await m.assignments.history(patientId);
    expect(steps.filter((h) => h.to === 'pendingInsuranceResolution')).toHaveLength(1);
    const done = (await store.readStream({ type: 'saga', id })).find(
      (e) =>
        e.type === 'CompensationSucceeded' &&
        (e.data as { step: string }).step === 'assignCareCoordinator',
    )!;
    expect((done.data as { result: unknown }).result).toMatchObject({
      already: true,
      state: 'pendingInsuranceResolution',
    });
  });
});

/** A UUID for a machine send derived from the step's idempotency key (idempotent sends). */
function uuidOf(key: string): string {
  const hex = createHash('sha256').update(key).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
