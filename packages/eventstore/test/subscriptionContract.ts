/**
 * What every subscription promises, on PostgreSQL and on PGlite.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EventStore, HandlerContext, RecordedEvent, Subscription } from '../src/index.js';
import {
  event,
  events,
  type StoreFactory,
  type StoreFixture,
  settled,
  stream,
} from './fixtures.js';

let counter = 0;
const uniqueName = (prefix: string) => `${prefix}-${++counter}-${Date.now().toString(36)}`;

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function subscriptionContract(name: string, factory: StoreFactory): void {
  describe(`subscriptions: ${name}`, () => {
    let fixture: StoreFixture;
    let store: EventStore;
    const running: Subscription[] = [];
    const track = (s: Subscription) => {
      running.push(s);
      return s;
    };

    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
      await store.database.exec(
        `create table "${store.schema}".handled (subscription text, event_id uuid, n integer)`,
      );
    });
    afterEach(async () => {
      await Promise.all(running.splice(0).map((s) => s.stop()));
    });
    afterAll(() => fixture?.cleanup());

    /** A stream type of its own per test, so tests do not see each other's events. */
    const own = () => ({ streamTypes: [`t${++counter}`] });

    it('catches up from the start, then delivers new events live', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      await store.append(s, events(5), { expectedVersion: 'no_stream' });
      const seen: RecordedEvent[] = [];
      const sub = track(
        store.subscribe({ name: uniqueName('live'), filter, handler: (e) => void seen.push(e) }),
      );
      await eventually(() => seen.length === 5);
      const more = await store.append(s, events(3), { expectedVersion: 5 });
      await sub.waitFor(more.checkpoint!);
      expect(seen.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('resumes from its stored checkpoint after a stop', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      const subName = uniqueName('resume');
      const seen: string[] = [];
      const first = store.subscribe({
        name: subName,
        filter,
        handler: (e) => void seen.push(e.id),
      });
      const a = await store.append(s, events(3), { expectedVersion: 'no_stream' });
      await first.waitFor(a.checkpoint!);
      await first.stop();
      const later = events(2);
      const b = await store.append(s, later, { expectedVersion: 3 });
      const again: string[] = [];
      const second = track(
        store.subscribe({ name: subName, filter, handler: (e) => void again.push(e.id) }),
      );
      await second.waitFor(b.checkpoint!);
      expect(again).toEqual(later.map((e) => e.id));
    });

    it('delivers only the event and stream types it filters on, and moves past the rest', async () => {
      const claim = `t${++counter}`;
      const patient = `t${++counter}`;
      const seen: string[] = [];
      const sub = track(
        store.subscribe({
          name: uniqueName('filter'),
          filter: { types: ['ClaimAdjudicated'], streamTypes: [claim] },
          handler: (e) => void seen.push(e.type),
        }),
      );
      await store.append(stream(claim), [event('ClaimSubmitted'), event('ClaimAdjudicated')], {
        expectedVersion: 'no_stream',
      });
      const last = await store.append(stream(patient), [event('ClaimAdjudicated')], {
        expectedVersion: 'no_stream',
      });
      await sub.waitFor(last.checkpoint!);
      expect(seen).toEqual(['ClaimAdjudicated']);
    });

    it('commits a handler’s database writes with its checkpoint: exactly once', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      const subName = uniqueName('exactly-once');
      let failNext = true;
      const handler = async (e: RecordedEvent, { tx }: HandlerContext) => {
        await tx.query(`insert into "${store.schema}".handled values ($1, $2, 1)`, [subName, e.id]);
        // The first delivery of the 4th event fails after the batch wrote three rows: they must
        // roll back with the batch and be written once more, not twice.
        if (e.streamVersion === 4 && failNext) {
          failNext = false;
          throw new Error('transient');
        }
      };
      const sub = track(
        store.subscribe({
          name: subName,
          filter,
          handler,
          onError: { retries: 2, backoff: { initialMs: 1 } },
        }),
      );
      const last = await store.append(s, events(10), { expectedVersion: 'no_stream' });
      await sub.waitFor(last.checkpoint!);
      const [row] = await store.database.query<{ n: string; d: string }>(
        `select count(*) as n, count(distinct event_id) as d from "${store.schema}".handled where subscription = $1`,
        [subName],
      );
      expect(Number(row!.n)).toBe(10);
      expect(Number(row!.d)).toBe(10);
    });

    it('retries with increasing attempts, then parks the event with its error and goes on', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      const attempts: number[] = [];
      const seen: string[] = [];
      const sub = track(
        store.subscribe({
          name: uniqueName('park'),
          filter,
          onError: { retries: 2, backoff: { initialMs: 1, factor: 2 } },
          handler: (e, { attempt }) => {
            if (e.type === 'Poison') {
              attempts.push(attempt);
              throw Object.assign(new Error('payer rejected the claim'), {
                code: 'PAYER_REJECTED',
              });
            }
            seen.push(e.type);
          },
        }),
      );
      const last = await store.append(
        s,
        [event('ClaimSubmitted'), event('Poison'), event('ClaimAcknowledged')],
        { expectedVersion: 'no_stream' },
      );
      await sub.waitFor(last.checkpoint!);
      // The failed batch is retried one event at a time, so the event before the poison one is
      // delivered again: at least once, as the docs say, for anything but database effects.
      expect(seen).toEqual(['ClaimSubmitted', 'ClaimSubmitted', 'ClaimAcknowledged']);
      expect(attempts).toEqual([1, 1, 2, 3]); // the batch try, then one by one: 1, 2, 3
      const parked = await sub.parked();
      expect(parked).toHaveLength(1);
      expect(parked[0]).toMatchObject({
        eventType: 'Poison',
        attempts: 3,
        error: { name: 'Error', code: 'PAYER_REJECTED', message: 'payer rejected the claim' },
      });
      expect((await sub.status()).parked).toBe(1);
    });

    it('lets an operator retry or skip parked events', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      let healthy = false;
      const handled: string[] = [];
      const sub = track(
        store.subscribe({
          name: uniqueName('operator'),
          filter,
          onError: { retries: 0 },
          handler: (e) => {
            if (!healthy) throw new Error('downstream unavailable');
            handled.push(e.id);
          },
        }),
      );
      const batch = events(2);
      const last = await store.append(s, batch, { expectedVersion: 'no_stream' });
      await sub.waitFor(last.checkpoint!);
      const [first, second] = await sub.parked();
      healthy = true;
      await sub.retryParked(first!.id);
      expect(handled).toEqual([batch[0]!.id]);
      await sub.skipParked(second!.id, {
        actor: 'ops-7',
        reason: 'duplicate of a manual correction',
      });
      expect(await sub.parked()).toEqual([]);
      await expect(sub.retryParked(second!.id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      const [resolution] = await store.database.query<{ resolved_by: string; status: string }>(
        `select status, resolved_by from "${store.schema}".parked_events where id = $1`,
        [second!.id],
      );
      expect(resolution).toEqual({ status: 'skipped', resolved_by: 'ops-7' });
    });

    it('stops where it failed when the policy says stop', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      const sub = track(
        store.subscribe({
          name: uniqueName('stop'),
          filter,
          onError: { retries: 1, backoff: { initialMs: 1 }, exhausted: 'stop' },
          handler: (e) => {
            if (e.streamVersion === 3) throw new Error('cannot project this');
          },
        }),
      );
      const batch = events(5);
      await store.append(s, batch, { expectedVersion: 'no_stream' });
      await eventually(() => sub.state === 'failed');
      const status = await sub.status();
      expect(status.lastError?.message).toBe('cannot project this');
      // Versions 1 and 2 are handled; 3, 4 and 5 are still ahead.
      expect(status.lagEvents).toBe(3);
    });

    it('reports its lag in events and seconds', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      const subName = uniqueName('lag');
      const sub = store.subscribe({ name: subName, filter, handler: () => {} });
      const first = await store.append(s, events(1), { expectedVersion: 'no_stream' });
      await sub.waitFor(first.checkpoint!);
      await sub.stop();
      const behind = await store.append(s, events(4), { expectedVersion: 1 });
      await settled(store, behind.checkpoint);
      await new Promise((r) => setTimeout(r, 50));
      const status = await sub.status();
      expect(status).toMatchObject({ name: subName, state: 'stopped', lagEvents: 4 });
      expect(status.lagSeconds).toBeGreaterThan(0.01);
      expect(status.head >= behind.checkpoint!).toBe(true);
    });

    it('keeps one active instance per name and hands over when it stops', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      const subName = uniqueName('compete');
      const byA: string[] = [];
      const byB: string[] = [];
      const a = store.subscribe({ name: subName, filter, handler: (e) => void byA.push(e.id) });
      await eventually(() => a.state === 'active');
      const b = track(
        store.subscribe({
          name: subName,
          filter,
          takeoverIntervalMs: 50,
          handler: (e) => void byB.push(e.id),
        }),
      );
      await eventually(() => b.state === 'standby');
      const first = await store.append(s, events(3), { expectedVersion: 'no_stream' });
      await a.waitFor(first.checkpoint!);
      expect(byB).toEqual([]);
      await a.stop();
      await eventually(() => b.state === 'active', 5000);
      const second = await store.append(s, events(2), { expectedVersion: 3 });
      await b.waitFor(second.checkpoint!);
      expect(byA).toHaveLength(3);
      expect(byB).toHaveLength(2);
    });

    it('starts at the head of the log when asked to start now', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      const old = await store.append(s, events(3), { expectedVersion: 'no_stream' });
      await settled(store, old.checkpoint);
      const seen: number[] = [];
      const sub = track(
        store.subscribe({
          name: uniqueName('now'),
          from: 'now',
          filter,
          handler: (e) => void seen.push(e.streamVersion),
        }),
      );
      await eventually(() => sub.state === 'active');
      const fresh = await store.append(s, events(1), { expectedVersion: 3 });
      await sub.waitFor(fresh.checkpoint!);
      expect(seen).toEqual([4]);
    });

    it('takes the pages its readAhead offers instead of reading them, and reads the log when it offers none', async () => {
      const filter = own();
      const s = stream(filter.streamTypes[0]);
      await store.append(s, events(6), { expectedVersion: 'no_stream' });
      const { events: all } = await store.readAll({ ...filter, limit: 10 });
      const start = '0000000000000000:0000000000000000'; // the start of the log
      // The first three, as the caller read them (marked, so what was read again would show).
      const offered = all.slice(0, 3).map((e) => ({ ...e, metadata: { offered: true } }));
      const asked: [string, number][] = [];
      const readAll = store.readAll;
      let read = 0;
      store.readAll = async (options) => {
        const page = await readAll.call(store, options);
        read += page.events.length;
        return page;
      };
      const seen: RecordedEvent[] = [];
      try {
        const sub = track(
          store.subscribe({
            name: uniqueName('ahead'),
            filter,
            batchSize: 50,
            handler: (e) => void seen.push(e),
            // Answered later, as a caller that reads the log itself answers.
            readAhead: async (after, limit) => {
              asked.push([after, limit]);
              await new Promise((r) => setTimeout(r, 5));
              return after === start
                ? { events: offered, checkpoint: offered[2]!.checkpoint, caughtUp: false }
                : undefined;
            },
          }),
        );
        await sub.waitFor(all[5]!.checkpoint);
      } finally {
        store.readAll = readAll;
      }
      expect(seen.map((e) => e.id)).toEqual(all.map((e) => e.id));
      expect(seen.map((e) => e.metadata.offered ?? false)).toEqual([
        true,
        true,
        true,
        false,
        false,
        false,
      ]);
      expect(asked[0]).toEqual([start, 50]);
      expect(asked[1]![0]).toBe(offered[2]!.checkpoint); // then from where the offered page ended
      expect(read).toBe(3); // only the three it was not offered
    });

    it('rejects a malformed name or handler', () => {
      expect(() => store.subscribe({ name: 'Bad Name', handler: () => {} })).toThrow(/name/);
      expect(() => store.subscribe({ name: 'ok', handler: undefined as never })).toThrow(/handler/);
      expect(() =>
        store.subscribe({ name: 'ok', handler: () => {}, readAhead: 'yes' as never }),
      ).toThrow(/readAhead/);
    });
  });
}
