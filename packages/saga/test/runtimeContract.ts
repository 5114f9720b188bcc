/**
 * What the saga runtime promises, run against every database it supports (PostgreSQL, PGlite).
 * The onboarding saga of the healthcare example is the subject wherever it fits; small sagas
 * stand in where a test needs a shape the onboarding saga does not have.
 */
import { createEnvelope, type Envelope } from '@evident/envelope';
import type { EventStore, RecordedEvent } from '@evident/eventstore';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { onboardingSaga, PlanNotContracted } from '../examples/onboarding.js';
import {
  createSagaRuntime,
  defineSaga,
  isSagaError,
  isSagaTimeoutError,
  type SagaEventData,
  type SagaRuntime,
  type SagaRuntimeOptions,
} from '../src/index.js';
import {
  eventually,
  onboardingInput,
  operator,
  rejection,
  type StoreFactory,
  type StoreFixture,
  sagaId,
  stepStarts,
} from './fixtures.js';
import { createWorld, notContracted } from './world.js';

const clerk = { id: 'u-17', role: 'front-desk' };

export function runtimeContract(name: string, factory: StoreFactory): void {
  describe(`saga runtime (${name})`, () => {
    let fixture: StoreFixture;
    let store: EventStore;
    const runtimes: SagaRuntime[] = [];

    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
    });
    afterEach(async () => {
      await Promise.all(runtimes.splice(0).map((r) => r.stop()));
    });
    afterAll(() => fixture?.cleanup());

    const runtimeOf = (
      sagas: SagaRuntimeOptions['sagas'],
      options: Omit<SagaRuntimeOptions, 'store' | 'sagas'> = {},
    ) => {
      const runtime = createSagaRuntime({
        store,
        sagas,
        workers: { concurrency: 8, pollInterval: 50 },
        ...options,
      });
      runtimes.push(runtime);
      return runtime;
    };
    const stream = (id: string) => store.readStream({ type: 'saga', id });
    const types = async (id: string) => (await stream(id)).map((e) => e.type);
    const dataOf = <T extends keyof SagaEventData>(events: RecordedEvent[], type: T) =>
      events.filter((e) => e.type === type).map((e) => e.data as SagaEventData[T]);
    const signalOf = (type: string, data: unknown = {}, correlationId?: string): Envelope =>
      createEnvelope({
        type,
        data,
        source: 'clearinghouse',
        actor: { id: 'payer-gateway', role: 'system' },
        ...(correlationId ? { correlationId } : {}),
      });

    describe('running a saga', () => {
      it('runs the seven-step onboarding saga to completion, each step once, on the saga stream', async () => {
        const world = createWorld();
        const runtime = runtimeOf([onboardingSaga(world.services)]);
        const id = sagaId();
        const started = await runtime.start('patient-onboarding', onboardingInput('p-81'), { id });
        expect(started.created).toBe(true);
        const done = await runtime.waitUntil(id);
        expect(done).toMatchObject({ status: 'completed', saga: 'patient-onboarding', version: 1 });
        expect(world.calls).toEqual([
          'records.create',
          'payers.checkEligibility',
          'payers.priorAuthorizationRequired',
          'billing.openAccount',
          'coordination.assign',
          'messaging.sendWelcome',
          'scheduling.bookInitialConsultation',
        ]);
        const events = await stream(id);
        expect(events[0]!.type).toBe('SagaStarted');
        expect(events.at(-1)!.type).toBe('SagaCompleted');
        const steps = [
          'createPatientRecord',
          'verifyInsuranceEligibility',
          'checkPriorAuthorization',
          'createFinancialAccount',
          'assignCareCoordinator',
          'sendWelcomeCommunications',
          'scheduleInitialConsultation',
        ];
        expect(dataOf(events, 'StepSucceeded').map((d) => d.step)).toEqual(steps);
        // Every step's start is on the stream before the step ran: the first carried by the
        // saga's start (this process started the instance and ran it), each other one by the
        // previous step's success. One event per step boundary: start, 7 successes, completion.
        expect(stepStarts(events).map((d) => d.step)).toEqual(steps);
        expect(dataOf(events, 'SagaStarted')[0]!.next?.map((d) => d.step)).toEqual([
          'createPatientRecord',
        ]);
        expect(events).toHaveLength(9);
      });

      it('records the first step with the start when this process runs what it starts, and shows it at once', async () => {
        let open!: () => void;
        const gate = new Promise<void>((resolve) => {
          open = resolve;
        });
        const saga = defineSaga('intake-review', { version: 1 })
          .step('reviewIntakeForm', { run: () => gate.then(() => null) })
          .step('notifyFrontDesk', { run: () => null });
        const runtime = runtimeOf([saga]);
        const id = sagaId('intake');
        await runtime.start('intake-review', null, { id });
        // While the first step runs, its start is on the stream (inside SagaStarted) and the work
        // row names it.
        const running = await eventually(async () => {
          const i = await runtime.get(id);
          if (i?.currentStep !== 'reviewIntakeForm') throw new Error('not yet');
          return i;
        });
        expect(running).toMatchObject({ status: 'running', attempt: 1 });
        expect((await stream(id)).map((e) => e.type)).toEqual(['SagaStarted']);
        open();
        await runtime.waitUntil(id);
        expect(await types(id)).toEqual([
          'SagaStarted',
          'StepSucceeded',
          'StepSucceeded',
          'SagaCompleted',
        ]);

        // Started for any worker (this process runs none): the start alone, then the worker's
        // StepStarted — the shape of every history written before starts carried a step.
        const client = runtimeOf([saga], { workers: false });
        const other = sagaId('intake');
        await client.start('intake-review', null, { id: other });
        expect(dataOf(await stream(other), 'SagaStarted')[0]!.next).toBeUndefined();
        expect((await runtime.waitUntil(other)).status).toBe('completed');
        expect((await types(other)).slice(0, 2)).toEqual(['SagaStarted', 'StepStarted']);
        expect(stepStarts(await stream(other)).map((d) => d.step)).toEqual([
          'reviewIntakeForm',
          'notifyFrontDesk',
        ]);
      });

      it('starts an instance once per id: starting it again starts nothing', async () => {
        const world = createWorld();
        const runtime = runtimeOf([onboardingSaga(world.services)]);
        const id = sagaId();
        const first = await runtime.start('patient-onboarding', onboardingInput(), { id });
        const again = await runtime.start('patient-onboarding', onboardingInput(), { id });
        expect(again).toEqual({ id, correlationId: first.correlationId, created: false });
        await runtime.waitUntil(id);
        expect((await types(id)).filter((t) => t === 'SagaStarted')).toHaveLength(1);
        expect(world.calls.filter((c) => c === 'records.create')).toHaveLength(1);
      });

      it('refuses an id that belongs to an instance of another saga', async () => {
        const other = defineSaga('claim-follow-up', { version: 1 }).step('noop', {
          run: () => null,
        });
        const runtime = runtimeOf([onboardingSaga(createWorld().services), other]);
        const id = sagaId();
        await runtime.start('claim-follow-up', null, { id });
        const error = await rejection(
          runtime.start('patient-onboarding', onboardingInput(), { id }),
        );
        expect(isSagaError(error, 'SAGA_ID_CONFLICT')).toBe(true);
        expect(
          isSagaError(
            await rejection(runtime.start('unknown', null, { id: sagaId() })),
            'SAGA_NOT_REGISTERED',
          ),
        ).toBe(true);
      });

      it("puts the saga on the patient's journey: one query by correlation id returns both", async () => {
        const runtime = runtimeOf([onboardingSaga(createWorld().services)]);
        const booked = createEnvelope({
          type: 'PatientRegistered',
          data: { patientId: 'p-90' },
          source: 'front-desk',
          actor: clerk,
        });
        await store.append({ type: 'patient', id: `p-90-${sagaId()}` }, [booked], {
          expectedVersion: 'no_stream',
        });
        const id = sagaId();
        const started = await runtime.start('patient-onboarding', onboardingInput('p-90'), {
          id,
          correlationId: booked.correlationId,
          causationId: booked.id,
          actor: clerk,
        });
        expect(started.correlationId).toBe(booked.correlationId);
        await runtime.waitUntil(id);
        const journey = await store.readByCorrelation(booked.correlationId);
        expect(journey[0]!.type).toBe('PatientRegistered');
        expect(journey.slice(1).every((e) => e.stream.type === 'saga')).toBe(true);
        expect(journey.at(-1)!.type).toBe('SagaCompleted');
        expect(journey[1]).toMatchObject({
          type: 'SagaStarted',
          causationId: booked.id,
          actor: clerk,
        });
        // Each saga event is caused by the one before it.
        for (let i = 2; i < journey.length; i++) {
          expect(journey[i]!.causationId).toBe(journey[i - 1]!.id);
        }
      });

      it('shows an operator the step an instance is running', async () => {
        let release!: () => void;
        const gate = new Promise<void>((r) => {
          release = r;
        });
        const saga = defineSaga('gated', { version: 1 })
          .step('first', { run: () => ({ ok: true }) })
          .step('waitsForGate', { run: () => gate.then(() => null) });
        const runtime = runtimeOf([saga]);
        const id = sagaId('gated');
        await runtime.start('gated', null, { id });
        await eventually(async () =>
          expect(await runtime.get(id)).toMatchObject({
            status: 'running',
            currentStep: 'waitsForGate',
            attempt: 1,
            leaseOwner: runtime.workerId,
          }),
        );
        release();
        expect((await runtime.waitUntil(id)).status).toBe('completed');
      });
    });

    describe('retries and timeouts', () => {
      it('retries a failing step with the same idempotency key, recording every failed attempt', async () => {
        const world = createWorld();
        world.fail('payers.checkEligibility', { times: 2 });
        const saga = onboardingSaga(world.services);
        const keys: { attempt: number; key: string }[] = [];
        const observed = defineSaga<ReturnType<typeof onboardingInput>>('observed', {
          version: 1,
        }).step('verify', {
          run: async (ctx) => {
            keys.push({ attempt: ctx.attempt, key: ctx.idempotencyKey });
            if (ctx.attempt < 3) throw new Error('payer gateway 503');
            return { eb01: '1' };
          },
          retry: { attempts: 3, initialInterval: 10 },
        });
        const runtime = runtimeOf([saga, observed]);
        const id = sagaId();
        await runtime.start('patient-onboarding', onboardingInput(), { id });
        expect((await runtime.waitUntil(id)).status).toBe('completed');
        expect(world.calls.filter((c) => c === 'payers.checkEligibility')).toHaveLength(3);
        const events = await stream(id);
        expect(dataOf(events, 'StepFailed').map((d) => [d.step, d.attempt, d.final])).toEqual([
          ['verifyInsuranceEligibility', 1, false],
          ['verifyInsuranceEligibility', 2, false],
        ]);
        expect(dataOf(events, 'StepRetryScheduled').map((d) => d.attempt)).toEqual([2, 3]);

        const other = sagaId('obs');
        await runtime.start('observed', onboardingInput(), { id: other });
        await runtime.waitUntil(other);
        expect(keys.map((k) => k.attempt)).toEqual([1, 2, 3]);
        expect(new Set(keys.map((k) => k.key))).toEqual(new Set([`saga/${other}/verify`]));
      });

      it('backs off initial × coefficient^(n−1) between attempts, capped at the maximum', async () => {
        const saga = defineSaga('flaky', { version: 1 }).step('call', {
          run: () => {
            throw new Error('still down');
          },
          retry: { attempts: 5, initialInterval: 20, backoffCoefficient: 3, maximumInterval: 100 },
        });
        const runtime = runtimeOf([saga]);
        const id = sagaId('flaky');
        await runtime.start('flaky', null, { id });
        expect((await runtime.waitUntil(id)).status).toBe('compensated');
        const events = await stream(id);
        expect(dataOf(events, 'StepRetryScheduled').map((d) => d.delayMs)).toEqual([
          20, 60, 100, 100,
        ]);
        expect(dataOf(events, 'StepFailed').map((d) => d.final)).toEqual([
          false,
          false,
          false,
          false,
          true,
        ]);
      });

      it('does not retry a non-retryable error (by class, name or code)', async () => {
        const world = createWorld();
        world.fail('scheduling.bookInitialConsultation', { error: notContracted });
        const byName = defineSaga('by-name', { version: 1 }).step('call', {
          run: () => {
            throw Object.assign(new Error('no'), { name: 'CoverageTerminated' });
          },
          retry: { attempts: 5, initialInterval: 10, nonRetryable: ['CoverageTerminated'] },
        });
        const runtime = runtimeOf([onboardingSaga(world.services), byName]);
        const id = sagaId();
        await runtime.start('patient-onboarding', onboardingInput(), { id });
        expect((await runtime.waitUntil(id)).status).toBe('compensated');
        expect(world.calls.filter((c) => c === 'scheduling.bookInitialConsultation')).toHaveLength(
          1,
        );
        const other = sagaId('nr');
        await runtime.start('by-name', null, { id: other });
        await runtime.waitUntil(other);
        expect(dataOf(await stream(other), 'StepFailed')).toHaveLength(1);
        expect(new PlanNotContracted().code).toBe('PLAN_NOT_CONTRACTED');
      });

      it('aborts an attempt at its timeout (reason SagaTimeoutError) and retries it', async () => {
        const reasons: unknown[] = [];
        const saga = defineSaga('slow-payer', { version: 1 }).step('eligibility', {
          run: ({ attempt, signal }) =>
            attempt === 1
              ? new Promise((_, reject) => {
                  signal.addEventListener('abort', () => {
                    reasons.push(signal.reason);
                    reject(signal.reason);
                  });
                })
              : { eb01: '1' },
          retry: { attempts: 3, initialInterval: 10 },
          timeout: { attempt: 100 },
        });
        const runtime = runtimeOf([saga]);
        const id = sagaId('slow');
        await runtime.start('slow-payer', null, { id });
        expect((await runtime.waitUntil(id)).status).toBe('completed');
        expect(reasons).toHaveLength(1);
        expect(isSagaTimeoutError(reasons[0])).toBe(true);
        expect(reasons[0]).toMatchObject({ scope: 'attempt', timeoutMs: 100 });
        expect(dataOf(await stream(id), 'StepFailed')[0]!.error).toMatchObject({
          name: 'SagaTimeoutError',
          code: 'SAGA_TIMEOUT',
        });
      });

      it('fails a step whose total time runs out, whatever attempts are left', async () => {
        const saga = defineSaga('slow-payer-total', { version: 1 }).step('eligibility', {
          // Ignores its signal: the runtime stops waiting for it anyway.
          run: () => new Promise(() => {}),
          retry: { attempts: 100, initialInterval: 10, maximumInterval: 10 },
          timeout: { attempt: 60, step: 250 },
        });
        const runtime = runtimeOf([saga]);
        const id = sagaId('total');
        await runtime.start('slow-payer-total', null, { id });
        expect((await runtime.waitUntil(id)).status).toBe('compensated');
        const failed = dataOf(await stream(id), 'StepFailed');
        expect(failed.length).toBeLessThan(10);
        expect(failed.at(-1)).toMatchObject({ final: true, error: { code: 'SAGA_TIMEOUT' } });
        expect(failed.at(-1)!.error.message).toMatch(/step eligibility timed out after 250 ms/);
      });

      it('parks a long back-off as a row due at the retry time, then resumes it', async () => {
        let calls = 0;
        const saga = defineSaga('parked-retry', { version: 1 }).step('call', {
          run: () => {
            calls++;
            if (calls === 1) throw new Error('payer maintenance window');
            return { ok: true };
          },
          retry: { attempts: 2, initialInterval: 600 },
        });
        const runtime = runtimeOf([saga], {
          workers: { concurrency: 4, pollInterval: 50, holdRetriesUpTo: 100 },
        });
        const id = sagaId('parked');
        await runtime.start('parked-retry', null, { id });
        const parked = await runtime.waitUntil(id, { until: (i) => i.status === 'retrying' });
        expect(parked).toMatchObject({ currentStep: 'call', leaseOwner: null });
        expect(parked.dueAt).not.toBeNull();
        expect((await runtime.waitUntil(id)).status).toBe('completed');
        const events = await stream(id);
        const scheduled = events.find((e) => e.type === 'StepRetryScheduled')!;
        const restarted = events.find(
          (e) => e.type === 'StepStarted' && (e.data as { attempt: number }).attempt === 2,
        )!;
        // Database time, to the millisecond.
        expect(
          Date.parse(restarted.recordedAt) - Date.parse(scheduled.recordedAt),
        ).toBeGreaterThanOrEqual(600);
        expect(await types(id)).toContain('SagaWaiting');
      });
    });

    describe('conditional and parallel steps', () => {
      it('runs a branch only when its condition holds, recording the decision', async () => {
        const saga = defineSaga<{ required: boolean }>('prior-auth', { version: 1 })
          .step('check', { run: ({ input }) => ({ required: input.required }) })
          .when(
            ({ results }) => results.check.required,
            (b) => b.step('requestPriorAuthorization', { run: () => ({ requested: true }) }),
            { name: 'priorAuthorizationRequired' },
          )
          .step('after', {
            run: ({ results }) => ({
              requested: results.requestPriorAuthorization?.requested ?? false,
            }),
          });
        const runtime = runtimeOf([saga]);
        const yes = sagaId('pa');
        const no = sagaId('pa');
        await runtime.start('prior-auth', { required: true }, { id: yes });
        await runtime.start('prior-auth', { required: false }, { id: no });
        await runtime.waitUntil(yes);
        await runtime.waitUntil(no);
        const a = await stream(yes);
        const b = await stream(no);
        expect(dataOf(a, 'ConditionEvaluated')).toEqual([
          { node: 'priorAuthorizationRequired', value: true },
        ]);
        expect(dataOf(b, 'ConditionEvaluated')).toEqual([
          { node: 'priorAuthorizationRequired', value: false },
        ]);
        expect(dataOf(a, 'StepSucceeded').map((d) => d.step)).toEqual([
          'check',
          'requestPriorAuthorization',
          'after',
        ]);
        expect(dataOf(b, 'StepSucceeded').map((d) => [d.step, d.result])).toEqual([
          ['check', { required: false }],
          ['after', { requested: false }],
        ]);
      });

      it('runs parallel branches at the same time and joins them', async () => {
        // Each branch waits for the other to have started: only concurrent branches finish.
        let arrived = 0;
        let open!: () => void;
        const barrier = new Promise<void>((r) => {
          open = r;
        });
        const meet = async (payer: string) => {
          arrived++;
          if (arrived === 2) open();
          await barrier;
          return { payer, claimId: `clm-${payer}` };
        };
        const saga = defineSaga('claim-submission', { version: 1 })
          .step('captureCharges', { run: () => ({ lines: 3 }) })
          .parallel({
            primary: (b) => b.step('submitToPrimary', { run: () => meet('delta-dental') }),
            secondary: (b) =>
              b
                .step('submitToSecondary', { run: () => meet('metlife') })
                .step('confirmSecondary', { run: () => ({ ok: true }) }),
          })
          .step('postSubmission', {
            run: ({ results }) => ({
              claims: [results.submitToPrimary.claimId, results.submitToSecondary.claimId],
            }),
          });
        const runtime = runtimeOf([saga]);
        const id = sagaId('clm');
        await runtime.start('claim-submission', null, { id });
        expect((await runtime.waitUntil(id)).status).toBe('completed');
        const events = await stream(id);
        expect(dataOf(events, 'StepSucceeded').at(-1)!.result).toEqual({
          claims: ['clm-delta-dental', 'clm-metlife'],
        });
      });

      it('lets a failing branch’s sibling finish, then compensates what completed, in reverse order', async () => {
        const order: string[] = [];
        const compensate = (step: string) => ({
          transition: `void${step}`,
          run: () => {
            order.push(step);
          },
        });
        const saga = defineSaga('claim-submission-failing', { version: 1 })
          .step('captureCharges', {
            run: () => ({ lines: 3 }),
            compensate: compensate('captureCharges'),
          })
          .parallel({
            primary: (b) =>
              b.step('submitToPrimary', {
                run: () =>
                  new Promise<{ ok: boolean }>((r) => setTimeout(() => r({ ok: true }), 150)),
                compensate: compensate('submitToPrimary'),
              }),
            secondary: (b) =>
              b.step('submitToSecondary', {
                run: () => {
                  throw Object.assign(new Error('277CA A7 rejected'), { code: 'A7' });
                },
                retry: { attempts: 1 },
                compensate: compensate('submitToSecondary'),
              }),
          })
          .step('never', { run: () => null });
        const runtime = runtimeOf([saga]);
        const id = sagaId('clmf');
        await runtime.start('claim-submission-failing', null, { id });
        expect((await runtime.waitUntil(id)).status).toBe('compensated');
        expect(order).toEqual(['submitToPrimary', 'captureCharges']);
        const compensated = dataOf(await stream(id), 'SagaCompensated')[0]!;
        expect(compensated.failure).toMatchObject({
          phase: 'step',
          step: 'submitToSecondary',
          error: { code: 'A7' },
        });
      });
    });

    describe('timers and signals', () => {
      it('sleeps as a row with a wake-up time in database time, held by no process', async () => {
        const saga = defineSaga('cooling-off', { version: 1 })
          .step('before', { run: () => null })
          .sleep(400, { name: 'coolingOffPeriod' })
          .step('after', { run: () => null });
        const runtime = runtimeOf([saga]);
        const id = sagaId('cool');
        await runtime.start('cooling-off', null, { id });
        const sleeping = await runtime.waitUntil(id, { until: (i) => i.status === 'sleeping' });
        expect(sleeping).toMatchObject({ currentStep: 'coolingOffPeriod', leaseOwner: null });
        expect((await runtime.waitUntil(id)).status).toBe('completed');
        const events = await stream(id);
        const scheduled = events.find((e) => e.type === 'TimerScheduled')!;
        const fired = events.find((e) => e.type === 'TimerFired')!;
        expect(
          Date.parse(fired.recordedAt) - Date.parse(scheduled.recordedAt),
        ).toBeGreaterThanOrEqual(400);
        expect(Date.parse(sleeping.dueAt!)).toBe(Date.parse(scheduled.recordedAt) + 400);
      });

      it('keeps a signal that arrives before the wait, and the wait consumes it', async () => {
        let release!: () => void;
        const gate = new Promise<void>((r) => {
          release = r;
        });
        const saga = defineSaga('remittance', { version: 1 })
          .step('submitClaim', { run: () => gate.then(() => ({ claimId: 'c-9' })) })
          .waitFor<'RemittanceReceived', { paid: number }, 'remittance'>('RemittanceReceived', {
            name: 'remittance',
          })
          .step('postPayment', {
            run: ({ results }) => ({ posted: results.remittance?.data.paid }),
          });
        const runtime = runtimeOf([saga]);
        const id = sagaId('rem');
        await runtime.start('remittance', null, { id });
        await runtime.signal(id, signalOf('RemittanceReceived', { paid: 182.5 }));
        release();
        expect((await runtime.waitUntil(id)).status).toBe('completed');
        expect(dataOf(await stream(id), 'StepSucceeded').at(-1)!.result).toEqual({ posted: 182.5 });
      });

      it('waits for a signal as a row with no wake-up time, and wakes when it comes', async () => {
        const saga = defineSaga('await-remittance', { version: 1 })
          .waitFor('RemittanceReceived', { name: 'remittance' })
          .step('postPayment', { run: () => null });
        const runtime = runtimeOf([saga]);
        const id = sagaId('await');
        await runtime.start('await-remittance', null, { id });
        const waiting = await runtime.waitUntil(id, { until: (i) => i.status === 'waiting' });
        expect(waiting).toMatchObject({
          waitingFor: 'RemittanceReceived',
          dueAt: null,
          leaseOwner: null,
        });
        await runtime.signal(id, signalOf('RemittanceReceived', { paid: 1 }));
        expect((await runtime.waitUntil(id)).status).toBe('completed');
      });

      it('records a signal delivered twice (same event id) once', async () => {
        const saga = defineSaga('dedupe', { version: 1 })
          .waitFor('RemittanceReceived')
          .waitFor('ClaimClosed')
          .step('done', { run: () => null });
        const runtime = runtimeOf([saga]);
        const id = sagaId('dup');
        await runtime.start('dedupe', null, { id });
        const remittance = signalOf('RemittanceReceived', { paid: 10 });
        const first = await runtime.signal(id, remittance);
        const second = await runtime.signal(id, remittance);
        expect(second.eventId).toBe(first.eventId);
        await runtime.signal(id, signalOf('ClaimClosed'));
        expect((await runtime.waitUntil(id)).status).toBe('completed');
        const received = (await stream(id)).filter((e) => e.type === 'SignalReceived');
        expect(received.map((e) => (e.data as { type: string }).type)).toEqual([
          'RemittanceReceived',
          'ClaimClosed',
        ]);
      });

      it('times out a wait: the saga fails and compensates, or continues with null', async () => {
        const failing = defineSaga('wait-fails', { version: 1 })
          .step('submit', {
            run: () => null,
            compensate: { transition: 'withdrawClaim', run: () => null },
          })
          .waitFor('RemittanceReceived', { timeout: 200 });
        const continuing = defineSaga('wait-continues', { version: 1 })
          .waitFor('RemittanceReceived', {
            timeout: 200,
            onTimeout: 'continue',
            name: 'remittance',
          })
          .step('followUp', { run: ({ results }) => ({ had: results.remittance !== null }) });
        const runtime = runtimeOf([failing, continuing]);
        const a = sagaId('wf');
        const b = sagaId('wc');
        await runtime.start('wait-fails', null, { id: a });
        await runtime.start('wait-continues', null, { id: b });
        expect((await runtime.waitUntil(a)).status).toBe('compensated');
        expect((await runtime.waitUntil(b)).status).toBe('completed');
        expect(dataOf(await stream(a), 'SagaCompensated')[0]!.failure).toMatchObject({
          step: 'RemittanceReceived',
          error: { code: 'SAGA_TIMEOUT' },
        });
        expect(dataOf(await stream(b), 'StepSucceeded')[0]!.result).toEqual({ had: false });
      });

      it('routes an event to the instances waiting for it by key, or belonging to its workflow', async () => {
        const saga = defineSaga<{ claimId: string }>('adjudication', { version: 1 })
          .waitFor('ClaimAdjudicated', {
            correlate: ({ input }) => input.claimId,
            name: 'adjudication',
          })
          .step('post', { run: () => null });
        const runtime = runtimeOf([saga]);
        const byKey = sagaId('adj');
        const other = sagaId('adj');
        const sameWorkflow = sagaId('adj');
        await runtime.start('adjudication', { claimId: 'c-1' }, { id: byKey });
        await runtime.start('adjudication', { claimId: 'c-2' }, { id: other });
        const journey = signalOf('PatientRegistered');
        await runtime.start(
          'adjudication',
          { claimId: 'c-3' },
          { id: sameWorkflow, correlationId: journey.correlationId },
        );
        await runtime.waitUntil(byKey, { until: (i) => i.status === 'waiting' });
        expect(
          await runtime.deliver(signalOf('ClaimAdjudicated', { paid: true }), { key: 'c-1' }),
        ).toEqual([byKey]);
        expect(
          await runtime.deliver(signalOf('ClaimAdjudicated', {}, journey.correlationId)),
        ).toEqual([sameWorkflow]);
        expect(await runtime.deliver(signalOf('UnrelatedEvent'), { key: 'c-2' })).toEqual([]);
        expect((await runtime.waitUntil(byKey)).status).toBe('completed');
        expect((await runtime.waitUntil(sameWorkflow)).status).toBe('completed');
        expect((await runtime.get(other))!.status).toBe('waiting');
      });
    });

    describe('compensation and dead letters', () => {
      it('compensates completed steps in reverse order, as transitions, each intent recorded before its step ran', async () => {
        const world = createWorld();
        world.fail('scheduling.bookInitialConsultation', { error: notContracted });
        const runtime = runtimeOf([onboardingSaga(world.services)]);
        const id = sagaId();
        const input = onboardingInput('p-77');
        await runtime.start('patient-onboarding', input, { id });
        expect((await runtime.waitUntil(id)).status).toBe('compensated');
        const events = await stream(id);
        expect(
          dataOf(events, 'CompensationStarted').map((d) => [d.step, d.transition, d.to]),
        ).toEqual([
          ['assignCareCoordinator', 'markPendingInsuranceResolution', 'PendingInsuranceResolution'],
          ['createFinancialAccount', 'holdAccount', 'OnHold'],
          ['createPatientRecord', 'moveToHolding', 'Holding'],
        ]);
        // Nothing was deleted: every participant moved to a state.
        expect(world.states.get('assignment:p-77')).toBe('PendingInsuranceResolution');
        expect(world.states.get('account:p-77')).toBe('OnHold');
        expect(world.states.get('record:p-77')).toBe('Holding');
        // The compensation of assignCareCoordinator was on the stream before the assignment ran.
        const intentAt = events.findIndex((e) =>
          [
            e.data as SagaEventData['StepStarted'],
            ...((e.data as SagaEventData['StepSucceeded']).next ?? []),
          ].some(
            (d) =>
              d.step === 'assignCareCoordinator' &&
              d.compensation?.transition === 'markPendingInsuranceResolution',
          ),
        );
        const doneAt = events.findIndex(
          (e) =>
            e.type === 'StepSucceeded' &&
            (e.data as { step: string }).step === 'assignCareCoordinator',
        );
        expect(intentAt).toBeGreaterThan(-1);
        expect(intentAt).toBeLessThan(doneAt);
        expect(events.map((e) => e.type)).not.toContain('SagaCompleted');
      });

      it('dead-letters an instance whose compensation fails, with full context, never completed', async () => {
        const world = createWorld();
        world.fail('scheduling.bookInitialConsultation', { error: notContracted });
        world.fail('billing.holdAccount', {
          error: () => new Error('billing system rejected the hold'),
        });
        const runtime = runtimeOf([onboardingSaga(world.services)]);
        const id = sagaId();
        await runtime.start('patient-onboarding', onboardingInput('p-78'), { id });
        const parked = await runtime.waitUntil(id);
        expect(parked).toMatchObject({
          status: 'dead_lettered',
          currentStep: 'createFinancialAccount',
          lastError: { message: 'billing system rejected the hold' },
          dueAt: null,
        });
        const [letter] = await runtime.deadLetters({
          saga: 'patient-onboarding',
          step: 'createFinancialAccount',
        });
        expect(letter!.instance.id).toBe(id);
        expect(letter!.context.failurePoint).toMatchObject({
          phase: 'compensation',
          step: 'createFinancialAccount',
          attempt: 3,
          error: { message: 'billing system rejected the hold' },
        });
        expect(letter!.context.originalFailure).toMatchObject({
          phase: 'step',
          step: 'scheduleInitialConsultation',
          error: { name: 'PlanNotContracted', code: 'PLAN_NOT_CONTRACTED' },
        });
        expect(letter!.context.compensationsRun).toEqual([
          {
            step: 'assignCareCoordinator',
            transition: 'markPendingInsuranceResolution',
            outcome: 'succeeded',
            attempts: 1,
          },
          {
            step: 'createFinancialAccount',
            transition: 'holdAccount',
            outcome: 'failed',
            attempts: 3,
          },
        ]);
        expect(letter!.context.participants.map((p) => [p.step, p.participant, p.status])).toEqual([
          ['createPatientRecord', 'patient-record', 'completed'],
          ['verifyInsuranceEligibility', 'verifyInsuranceEligibility', 'not-compensable'],
          ['checkPriorAuthorization', 'checkPriorAuthorization', 'not-compensable'],
          ['createFinancialAccount', 'createFinancialAccount', 'compensation-failed'],
          ['assignCareCoordinator', 'assignCareCoordinator', 'compensated'],
          ['sendWelcomeCommunications', 'sendWelcomeCommunications', 'not-compensable'],
          ['scheduleInitialConsultation', 'scheduleInitialConsultation', 'failed'],
        ]);
        const kinds = await types(id);
        expect(kinds).not.toContain('SagaCompleted');
        expect(kinds).not.toContain('SagaCompensated');
        // The patient record was never moved: compensation stopped at the failure.
        expect(world.states.get('record:p-78')).toBe('Active');
      });
    });

    describe('operators', () => {
      it('lists and counts instances by saga, status, step, age and last error', async () => {
        const world = createWorld();
        world.fail('scheduling.bookInitialConsultation', { error: notContracted });
        world.fail('billing.holdAccount', {
          error: () => Object.assign(new Error('hold refused'), { code: 'HOLD_REFUSED' }),
        });
        const saga = defineSaga('ops-waiting', { version: 1 }).waitFor('Never');
        const runtime = runtimeOf([onboardingSaga(world.services), saga]);
        const dead = sagaId('ops');
        const waiting = sagaId('ops');
        await runtime.start('patient-onboarding', onboardingInput(), { id: dead });
        await runtime.start('ops-waiting', null, { id: waiting });
        await runtime.waitUntil(dead);
        await runtime.waitUntil(waiting, { until: (i) => i.status === 'waiting' });

        const listed = await runtime.list({ saga: 'ops-waiting', status: 'waiting' });
        expect(listed.map((i) => i.id)).toContain(waiting);
        expect(
          await runtime.count({
            saga: 'patient-onboarding',
            status: 'dead_lettered',
            step: 'createFinancialAccount',
          }),
        ).toBeGreaterThanOrEqual(1);
        expect((await runtime.list({ error: 'HOLD_REFUSED' })).map((i) => i.id)).toContain(dead);
        expect(await runtime.count({ olderThan: '1h', saga: 'ops-waiting' })).toBe(0);
        expect(await runtime.count({ olderThan: 1, saga: 'ops-waiting' })).toBeGreaterThanOrEqual(
          1,
        );
        const byStatus = await runtime.countBy('status', { saga: 'ops-waiting' });
        expect(byStatus).toContainEqual({ key: 'waiting', count: expect.any(Number) });
        const byError = await runtime.countBy('error', { saga: 'patient-onboarding' });
        expect(byError.find((g) => g.key === 'HOLD_REFUSED')?.count).toBeGreaterThanOrEqual(1);
      });

      it('reads the instances asked for together in one query, each its own row', async () => {
        const saga = defineSaga('ops-read', { version: 1 }).step('only', { run: () => 'done' });
        const runtime = runtimeOf([saga]);
        const [a, b] = [sagaId('read'), sagaId('read')];
        await runtime.start('ops-read', null, { id: a });
        await runtime.start('ops-read', null, { id: b });
        await runtime.waitUntil(a);
        await runtime.waitUntil(b);
        // Count the runtime's instance reads on the store's own database handle.
        const database = store.database as { query: EventStore['database']['query'] };
        const query = database.query;
        const reads: unknown[] = [];
        database.query = ((text: string, params?: readonly unknown[], name?: string) => {
          if (name === 'evident_saga_get') reads.push(params);
          return query.call(database, text, params, name);
        }) as typeof query;
        try {
          const [first, second, none, again] = await Promise.all([
            runtime.get(a),
            runtime.get(b),
            runtime.get('no-such-saga'),
            runtime.get(a),
          ]);
          expect(first).toMatchObject({ id: a, saga: 'ops-read', status: 'completed' });
          expect(second).toMatchObject({ id: b, saga: 'ops-read', status: 'completed' });
          expect(none).toBeUndefined();
          expect(again).toEqual(first);
          expect(reads).toHaveLength(1);
          // Asked apart, each is its own read.
          expect(await runtime.get(b)).toEqual(second);
          expect(reads).toHaveLength(2);
        } finally {
          database.query = query;
        }
      });

      it("shows one instance's history as a timeline", async () => {
        const world = createWorld();
        world.fail('payers.checkEligibility', { times: 1, error: () => new Error('payer 503') });
        const runtime = runtimeOf([onboardingSaga(world.services)]);
        const id = sagaId();
        await runtime.start('patient-onboarding', onboardingInput(), { id });
        await runtime.waitUntil(id);
        const timeline = await runtime.timeline(id);
        expect(timeline.map((t) => t.version)).toEqual(timeline.map((_, i) => i + 1));
        expect(timeline.map((t) => t.summary)).toContain(
          'StepFailed verifyInsuranceEligibility (attempt 1): Error',
        );
        expect(timeline[0]!.summary).toBe('SagaStarted; started createPatientRecord');
        expect(
          isSagaError(await rejection(runtime.timeline('no-such-saga')), 'SAGA_NOT_FOUND'),
        ).toBe(true);
      });

      it('retries a dead letter from the failed compensation, recorded with the operator', async () => {
        const world = createWorld();
        world.fail('scheduling.bookInitialConsultation', { error: notContracted });
        world.fail('billing.holdAccount', { times: 3, error: () => new Error('billing down') });
        const runtime = runtimeOf([onboardingSaga(world.services)]);
        const id = sagaId();
        await runtime.start('patient-onboarding', onboardingInput('p-79'), { id });
        expect((await runtime.waitUntil(id)).status).toBe('dead_lettered');
        await runtime.retryFromFailure(id, { operator, reason: 'billing is back' });
        expect((await runtime.waitUntil(id)).status).toBe('compensated');
        expect(world.states.get('account:p-79')).toBe('OnHold');
        expect(world.states.get('record:p-79')).toBe('Holding');
        const resumed = (await stream(id)).find((e) => e.type === 'SagaResumed')!;
        expect(resumed.actor).toEqual(operator);
        expect(resumed.data).toMatchObject({
          mode: 'retry',
          status: 'compensating',
          reason: 'billing is back',
        });
        // assignCareCoordinator's compensation had succeeded: it did not run again.
        expect(
          world.calls.filter((c) => c === 'coordination.markPendingInsuranceResolution'),
        ).toHaveLength(1);
      });

      it('retries from a failed step parked for an operator, or compensates it on request', async () => {
        let payerUp = false;
        const saga = defineSaga('operator-parked', { version: 1 })
          .step('openAccount', {
            run: () => ({ accountId: 'a-1' }),
            compensate: { transition: 'holdAccount', run: () => null },
          })
          .step('submitToPayer', {
            run: () => {
              if (!payerUp) throw new Error('payer unreachable');
              return { ok: true };
            },
            retry: { attempts: 2, initialInterval: 10 },
            onExhausted: 'deadLetter',
          });
        const runtime = runtimeOf([saga]);
        const retried = sagaId('op');
        const compensated = sagaId('op');
        await runtime.start('operator-parked', null, { id: retried });
        await runtime.start('operator-parked', null, { id: compensated });
        const parked = await runtime.waitUntil(retried);
        expect(parked).toMatchObject({ status: 'dead_lettered', currentStep: 'submitToPayer' });
        await runtime.waitUntil(compensated);
        const [letter] = (await runtime.deadLetters({ saga: 'operator-parked' })).filter(
          (l) => l.instance.id === retried,
        );
        expect(letter!.context.failurePoint).toMatchObject({
          phase: 'step',
          step: 'submitToPayer',
          attempt: 2,
        });
        expect(letter!.context.compensationsRun).toEqual([]);

        payerUp = true;
        await runtime.retryFromFailure(retried, { operator });
        expect((await runtime.waitUntil(retried)).status).toBe('completed');
        const attempts = dataOf(await stream(retried), 'StepStarted')
          .concat(dataOf(await stream(retried), 'StepSucceeded').flatMap((d) => d.next ?? []))
          .filter((d) => d.step === 'submitToPayer')
          .map((d) => d.attempt);
        expect(attempts.sort()).toEqual([1, 2, 3]);

        await runtime.compensate(compensated, { operator, reason: 'patient withdrew' });
        expect((await runtime.waitUntil(compensated)).status).toBe('compensated');
        expect(
          dataOf(await stream(compensated), 'CompensationSucceeded').map((d) => d.step),
        ).toEqual(['openAccount']);
      });

      it('marks an instance resolved with the operator and the reason, and refuses what does not apply', async () => {
        const saga = defineSaga('resolvable', { version: 1 })
          .waitFor('Never')
          .step('after', { run: () => null });
        const quick = defineSaga('quick', { version: 1 }).step('only', { run: () => null });
        const runtime = runtimeOf([saga, quick]);
        const id = sagaId('res');
        const done = sagaId('res');
        await runtime.start('resolvable', null, { id });
        await runtime.start('quick', null, { id: done });
        await runtime.waitUntil(id, { until: (i) => i.status === 'waiting' });
        await runtime.waitUntil(done);
        expect(
          isSagaError(
            await rejection(runtime.retryFromFailure(id, { operator })),
            'OPERATOR_ACTION_REFUSED',
          ),
        ).toBe(true);
        expect(
          isSagaError(
            await rejection(runtime.resolve(done, { operator, reason: 'x' })),
            'OPERATOR_ACTION_REFUSED',
          ),
        ).toBe(true);
        await expect(runtime.resolve(id, { operator } as never)).rejects.toThrow(/reason/);
        await runtime.resolve(id, {
          operator,
          reason: 'payer confirmed by phone; posted manually',
        });
        expect(await runtime.get(id)).toMatchObject({ status: 'resolved', dueAt: null });
        const resolved = (await stream(id)).at(-1)!;
        expect(resolved).toMatchObject({
          type: 'ManuallyResolved',
          actor: operator,
          data: { operator, reason: 'payer confirmed by phone; posted manually' },
        });
        // Nothing runs any more, even when the awaited event comes.
        await runtime.signal(id, signalOf('Never'));
        await new Promise((r) => setTimeout(r, 200));
        expect((await types(id)).filter((t) => t === 'StepSucceeded')).toHaveLength(0);
      });
    });

    describe('versions', () => {
      it('keeps an instance on the version it started with; a newer one runs only new instances', async () => {
        const v1 = defineSaga('versioned', { version: 1 })
          .waitFor('Go')
          .step('legacyStep', { run: () => ({ by: 'v1' }) });
        const v2 = defineSaga('versioned', { version: 2 })
          .waitFor('Go')
          .step('newStep', { run: () => ({ by: 'v2' }) });
        const old = sagaId('ver');
        const first = runtimeOf([v1]);
        await first.start('versioned', null, { id: old });
        await first.waitUntil(old, { until: (i) => i.status === 'waiting' });
        await first.stop();

        // A deployment with only v2: it starts v2 instances and leaves v1 ones alone.
        const onlyNew = runtimeOf([v2]);
        const fresh = sagaId('ver');
        await onlyNew.start('versioned', null, { id: fresh });
        await onlyNew.signal(old, signalOf('Go'));
        await onlyNew.signal(fresh, signalOf('Go'));
        expect((await onlyNew.waitUntil(fresh)).version).toBe(2);
        await new Promise((r) => setTimeout(r, 200));
        expect(await onlyNew.get(old)).toMatchObject({ version: 1, status: 'waiting' });
        await onlyNew.stop();

        // With v1 still registered beside it, the old instance finishes on v1.
        const both = runtimeOf([v1, v2]);
        expect((await both.waitUntil(old)).status).toBe('completed');
        expect(dataOf(await stream(old), 'StepSucceeded').map((d) => d.result)).toEqual([
          { by: 'v1' },
        ]);
        expect(dataOf(await stream(fresh), 'StepSucceeded').map((d) => d.result)).toEqual([
          { by: 'v2' },
        ]);
      });

      it('lets a newer version take over older instances through a registered migration', async () => {
        const v1 = defineSaga('migrating', { version: 1 })
          .waitFor('Go')
          .step('legacyName', { run: () => null });
        const v2 = defineSaga('migrating', {
          version: 2,
          migrations: {
            1: (e) => (e.type === 'WaitStarted' || e.type === 'WaitCompleted' ? e : e),
          },
        })
          .waitFor('Go')
          .step('renamed', { run: () => ({ by: 'v2' }) });
        const id = sagaId('mig');
        const old = runtimeOf([v1]);
        await old.start('migrating', null, { id });
        await old.waitUntil(id, { until: (i) => i.status === 'waiting' });
        await old.stop();
        const next = runtimeOf([v2]);
        await next.signal(id, signalOf('Go'));
        const done = await next.waitUntil(id);
        expect(done).toMatchObject({ status: 'completed', version: 2 });
        const events = await stream(id);
        expect(dataOf(events, 'SagaMigrated')).toEqual([{ from: 1, to: 2 }]);
        expect(dataOf(events, 'StepSucceeded').map((d) => d.step)).toEqual(['renamed']);
      });
    });

    describe('workers', () => {
      it('hands a stopped runtime’s instances to another at once', async () => {
        let calls = 0;
        const saga = defineSaga('handover', { version: 1 })
          .step('first', { run: () => null })
          .step('slow', {
            run: ({ signal }) => {
              calls++;
              return calls === 1
                ? new Promise((_, reject) =>
                    signal.addEventListener('abort', () => reject(signal.reason)),
                  )
                : { ok: true };
            },
          });
        const a = runtimeOf([saga], { workers: { concurrency: 4, lease: '1m', pollInterval: 50 } });
        const id = sagaId('hand');
        await a.start('handover', null, { id });
        await a.waitUntil(id, { until: (i) => i.currentStep === 'slow' });
        await eventually(() => expect(calls).toBe(1));
        await a.stop();
        expect((await a.get(id))!.leaseOwner).toBeNull();
        const b = runtimeOf([saga], { workers: { concurrency: 4, lease: '1m', pollInterval: 50 } });
        const done = await b.waitUntil(id, { timeout: '10s' });
        expect(done.status).toBe('completed');
        const failed = dataOf(await stream(id), 'StepFailed');
        expect(failed).toEqual([
          expect.objectContaining({
            step: 'slow',
            attempt: 1,
            error: expect.objectContaining({ code: 'ATTEMPT_INTERRUPTED' }),
          }),
        ]);
      });

      it('runs due instances with drain() when the runtime has no workers', async () => {
        const saga = defineSaga('drained', { version: 1 }).step('only', { run: () => ({ ok: 1 }) });
        const client = runtimeOf([saga], { workers: false });
        const id = sagaId('drain');
        await client.start('drained', null, { id });
        expect((await client.get(id))!.status).toBe('running');
        expect(await client.drain()).toBeGreaterThanOrEqual(1);
        expect((await client.get(id))!.status).toBe('completed');
      });
    });
  });
}
