/**
 * Reliability scenario 23: the application's clock is ten minutes off, ahead or behind. Timers
 * still fire after their duration in database time, never at once and never ten minutes late;
 * events are ordered by their stream versions and stamped with the database's time.
 */
import type { EventStore } from '@evident/eventstore';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory, type StoreFixture, sagaId } from '../test/fixtures.js';
import { createSagaRuntime, defineSaga, type SagaRuntime } from './index.js';

const minutes = 60_000;

const reminder = defineSaga('appointment-reminder', { version: 1 })
  .step('book', { run: () => null })
  .sleep(1500, { name: 'reminderDelay' })
  .waitFor('PatientConfirmed', { timeout: 1500, onTimeout: 'continue' })
  .step('remind', { run: () => null });

describe.skipIf(!postgresUrl)('an application clock skewed by minutes (PostgreSQL)', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  let runtime: SagaRuntime | undefined;

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
  });
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
    vi.useRealTimers();
  });
  afterAll(() => fixture?.cleanup());

  for (const skew of [10 * minutes, -10 * minutes]) {
    it(`fires timers after their duration in database time with the clock ${skew > 0 ? 'ahead' : 'behind'}`, async () => {
      // Only Date is faked: timers and the monotonic clock stay real, as on a skewed host.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + skew, shouldAdvanceTime: true });
      runtime = createSagaRuntime({ store, sagas: [reminder], workers: { pollInterval: 50 } });
      const id = sagaId('skew');
      await runtime.start('appointment-reminder', null, { id });
      const sleeping = await runtime.waitUntil(id, { until: (i) => i.status === 'sleeping' });
      expect((await runtime.waitUntil(id, { timeout: '20s' })).status).toBe('completed');

      const events = await store.readStream({ type: 'saga', id });
      const at = (type: string) => Date.parse(events.find((e) => e.type === type)!.recordedAt);
      const slept = at('TimerFired') - at('TimerScheduled');
      expect(slept).toBeGreaterThanOrEqual(1500);
      expect(slept).toBeLessThan(60_000);
      expect(Date.parse(sleeping.dueAt!)).toBe(at('TimerScheduled') + 1500);
      const waited = at('WaitTimedOut') - at('WaitStarted');
      expect(waited).toBeGreaterThanOrEqual(1500);
      expect(waited).toBeLessThan(60_000);

      // recorded-at is the database's time; occurred-at is the skewed application's.
      const [{ now }] = (await store.database.query<{ now: Date }>('select now()')) as [
        { now: Date },
      ];
      for (const e of events) {
        expect(Math.abs(now.getTime() - Date.parse(e.recordedAt))).toBeLessThan(60_000);
        const drift = Date.parse(e.occurredAt) - Date.parse(e.recordedAt);
        expect(Math.abs(drift - skew)).toBeLessThan(60_000);
      }
      // Order is the stream's, whatever the clocks say.
      expect(events.map((e) => e.streamVersion)).toEqual(events.map((_, i) => i + 1));
    });
  }
});
