/**
 * Reliability scenario 21 with the virtual clock: a saga that waits 45 days for a remittance runs
 * against the real database in milliseconds. The database is told the virtual time: every due
 * time compared in SQL is the clock's.
 */
import { createEnvelope } from '@evident/envelope';
import type { EventStore } from '@evident/eventstore';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory, type StoreFixture, sagaId } from '../test/fixtures.js';
import { createSagaRuntime, defineSaga, type SagaEventData, type SagaRuntime } from './index.js';
import { createVirtualClock, sagaKit } from './testing.js';

const day = 86_400_000;

/** The claim's wait for the payer: adjudication takes 30 to 45 days. */
const claimLifecycle = defineSaga<{ claimId: string }>('claim-lifecycle', { version: 1 })
  .step('submitClaim', { run: ({ input }) => ({ claimId: input.claimId, format: '837D' }) })
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
    (b) => b.step('followUpWithPayer', { run: () => ({ inquiry: '276' }) }),
    { name: 'noRemittance' },
  )
  .step('postPayment', { run: ({ results }) => ({ paid: results.remittance?.data.paid ?? 0 }) });

const coolingOff = defineSaga('treatment-start', { version: 1 })
  .step('planApproved', { run: () => null })
  .sleep('45d', { name: 'insuranceWaitingPeriod' })
  .step('startTreatment', { run: () => ({ started: true }) });

describe.skipIf(!postgresUrl)('a 45-day wait under the virtual clock (PostgreSQL)', () => {
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

  const setup = (workers: false | number = false) => {
    const clock = createVirtualClock();
    const runtime = createSagaRuntime({
      store,
      sagas: [claimLifecycle, coolingOff],
      clock,
      workers: workers === false ? false : { concurrency: workers, pollInterval: '1h' },
    });
    runtimes.push(runtime);
    return { clock, runtime, kit: sagaKit(runtime, store, clock) };
  };
  const remittance = (paid: number) =>
    createEnvelope({
      type: 'RemittanceReceived',
      data: { clp02: '1', paid },
      source: 'clearinghouse',
      actor: { id: 'era-835', role: 'system' },
    });

  it('sleeps 45 days in milliseconds, waking exactly at the virtual due time', async () => {
    const { clock, runtime } = setup();
    const id = sagaId('tx');
    const started = performance.now();
    await runtime.start('treatment-start', null, { id });
    await runtime.drain();
    const asleep = (await runtime.get(id))!;
    expect(asleep).toMatchObject({ status: 'sleeping', currentStep: 'insuranceWaitingPeriod' });
    expect(Date.parse(asleep.dueAt!) - clock.now()).toBeGreaterThan(45 * day - 60_000);

    clock.advance('44d');
    await runtime.drain();
    expect((await runtime.get(id))!.status).toBe('sleeping');
    clock.advance('1d');
    await runtime.drain();
    expect((await runtime.get(id))!.status).toBe('completed');
    expect(performance.now() - started).toBeLessThan(5000);
    expect(clock.skipped).toBe(45 * day);
    const events = await store.readStream({ type: 'saga', id });
    const scheduled = events.find((e) => e.type === 'TimerScheduled')!
      .data as SagaEventData['TimerScheduled'];
    expect(scheduled).toMatchObject({ timer: 'insuranceWaitingPeriod', delayMs: null });
    expect(Date.parse(scheduled.until!)).toBe(Date.parse(asleep.dueAt!));
  });

  it('takes a remittance that comes on day 30 of a 45-day wait', async () => {
    const { clock, runtime, kit } = setup();
    const id = sagaId('clm');
    await runtime.start('claim-lifecycle', { claimId: 'c-30' }, { id });
    await runtime.drain();
    expect(await runtime.get(id)).toMatchObject({
      status: 'waiting',
      waitingFor: 'RemittanceReceived',
      waitKey: 'c-30',
    });
    clock.advance('30d');
    await runtime.drain();
    expect((await runtime.get(id))!.status).toBe('waiting');
    expect(await runtime.deliver(remittance(412.8), { key: 'c-30' })).toEqual([id]);
    const done = await kit.runUntilSettled(id, { within: '60d' });
    expect(done.status).toBe('completed');
    const events = await store.readStream({ type: 'saga', id });
    expect(events.map((e) => e.type)).not.toContain('WaitTimedOut');
    expect((events.at(-2)!.data as SagaEventData['StepSucceeded']).result).toEqual({ paid: 412.8 });
  });

  it('follows up with the payer when no remittance comes in 45 days', async () => {
    const { clock, runtime, kit } = setup();
    const id = sagaId('clm');
    await runtime.start('claim-lifecycle', { claimId: 'c-45' }, { id });
    const started = clock.now();
    const done = await kit.runUntilSettled(id, { within: '60d' });
    expect(done.status).toBe('completed');
    expect(clock.now() - started).toBeGreaterThanOrEqual(45 * day);
    expect(clock.now() - started).toBeLessThan(46 * day);
    const steps = (await store.readStream({ type: 'saga', id }))
      .filter((e) => e.type === 'StepSucceeded')
      .map((e) => (e.data as SagaEventData['StepSucceeded']).step);
    expect(steps).toEqual(['submitClaim', 'followUpWithPayer', 'postPayment']);
  });

  it('wakes background workers when the clock jumps, with no poll in between', async () => {
    const { clock, runtime } = setup(4);
    const id = sagaId('tx');
    await runtime.start('treatment-start', null, { id });
    await runtime.waitUntil(id, { until: (i) => i.status === 'sleeping' });
    clock.advance('45d');
    // The poll interval is an hour: only the jump can have woken the worker.
    expect((await runtime.waitUntil(id, { timeout: '5s' })).status).toBe('completed');
  });
});
