/**
 * The behaviour every EventStore implementation promises, run against each one (PostgreSQL,
 * PGlite). A new implementation is done when this suite passes against it unchanged.
 */
import { isEvidentError } from '@evident/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  compareCheckpoints,
  DuplicateEventError,
  type EventStore,
  isConcurrencyError,
  startOfLog,
} from '../src/index.js';
import {
  event,
  events,
  type StoreFactory,
  type StoreFixture,
  settled,
  stream,
} from './fixtures.js';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

export function eventStoreContract(name: string, factory: StoreFactory): void {
  describe(`event store contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: EventStore;

    beforeAll(async () => {
      fixture = await factory({ limits: { maxEventBytes: 64 * 1024, maxBatchEvents: 200 } });
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.cleanup();
    });

    describe('append', () => {
      it('writes a new stream at contiguous versions starting at 1', async () => {
        const s = stream();
        const batch = events(3);
        const result = await store.append(s, batch, { expectedVersion: 'no_stream' });
        expect(result.nextExpectedVersion).toBe(3);
        const read = await store.readStream(s);
        expect(read.map((e) => e.streamVersion)).toEqual([1, 2, 3]);
        expect(read.map((e) => e.id)).toEqual(batch.map((e) => e.id));
        expect(result.lastGlobalPosition).toBe(read[2]!.globalPosition);
        expect(result.checkpoint).toBe(read[2]!.checkpoint);
        // Database time, the same for every event of one append.
        expect(result.recordedAt).toBe(read[2]!.recordedAt);
        expect(read.map((e) => e.recordedAt)).toEqual([
          result.recordedAt,
          result.recordedAt,
          result.recordedAt,
        ]);
      });

      it('appends at the expected version and returns the next one', async () => {
        const s = stream();
        await store.append(s, events(2), { expectedVersion: 'no_stream' });
        const result = await store.append(s, events(2), { expectedVersion: 2 });
        expect(result.nextExpectedVersion).toBe(4);
        expect(await store.streamVersion(s)).toBe(4);
      });

      it('rejects an append whose expected version is stale, writing nothing', async () => {
        const s = stream();
        await store.append(s, events(3), { expectedVersion: 'no_stream' });
        const error = await rejection(store.append(s, events(2), { expectedVersion: 2 }));
        expect(error).toBeInstanceOf(ConcurrencyError);
        expect(isConcurrencyError(error)).toBe(true);
        expect(error).toMatchObject({ stream: s, expected: 2, actual: 3 });
        expect(await store.readStream(s)).toHaveLength(3);
      });

      it('refuses "no_stream" when the stream exists and "exists" when it does not', async () => {
        const s = stream();
        await expect(
          store.append(s, events(1), { expectedVersion: 'exists' }),
        ).rejects.toMatchObject({
          code: 'CONCURRENCY_CONFLICT',
          actual: 0,
        });
        expect(await store.streamVersion(s)).toBe(0);
        await store.append(s, events(1), { expectedVersion: 'no_stream' });
        await expect(
          store.append(s, events(1), { expectedVersion: 'no_stream' }),
        ).rejects.toMatchObject({ code: 'CONCURRENCY_CONFLICT', expected: 'no_stream', actual: 1 });
        await store.append(s, events(1), { expectedVersion: 'exists' });
        expect(await store.streamVersion(s)).toBe(2);
      });

      it('treats expected version 0 as "the stream does not exist"', async () => {
        const s = stream();
        await store.append(s, events(1), { expectedVersion: 0 });
        await expect(store.append(s, events(1), { expectedVersion: 0 })).rejects.toBeInstanceOf(
          ConcurrencyError,
        );
      });

      it('appends with "any" whether or not the stream exists', async () => {
        const s = stream();
        await store.append(s, events(2), { expectedVersion: 'any' });
        const result = await store.append(s, events(2), { expectedVersion: 'any' });
        expect(result.nextExpectedVersion).toBe(4);
      });

      it('rejects an expected version that is not one of the four forms', async () => {
        for (const bad of [-2, 1.5, Number.NaN, 'latest', null, undefined]) {
          const error = await rejection(
            store.append(stream(), events(1), { expectedVersion: bad as never }),
          );
          expect(isEvidentError(error, 'INVALID_ARGUMENT')).toBe(true);
          expect((error as Error).message).toMatch(
            /expectedVersion must be a non-negative integer, "any", "no_stream" or "exists"/,
          );
        }
      });

      it('does nothing on an empty append and leaves the stream writable', async () => {
        const s = stream();
        const empty = await store.append(s, [], { expectedVersion: 'no_stream' });
        expect(empty).toEqual({
          nextExpectedVersion: 0,
          lastGlobalPosition: null,
          checkpoint: null,
          recordedAt: null,
        });
        expect(await store.streamVersion(s)).toBe(0);
        await store.append(s, events(1), { expectedVersion: 'no_stream' });
        expect((await store.append(s, [], { expectedVersion: 1 })).nextExpectedVersion).toBe(1);
        await expect(store.append(s, [], { expectedVersion: 5 })).rejects.toBeInstanceOf(
          ConcurrencyError,
        );
        await store.append(s, events(1), { expectedVersion: 1 });
        expect(await store.streamVersion(s)).toBe(2);
      });

      it('stores the envelope as given, with database time as recordedAt', async () => {
        const s = stream();
        const e = event('EligibilityVerified', {
          occurredAt: '2026-01-02T03:04:05.678Z',
          tenantId: 'practice-9',
          metadata: { traceparent: '00-abc-def-01' },
          data: { coverage: 'active', nested: { list: [1, 'two', null, true] } },
        });
        const before = Date.now();
        // The envelope names its tenant, so it goes through that tenant's view of the store.
        const practice = store.forTenant('practice-9');
        await practice.append(s, [e], { expectedVersion: 'no_stream' });
        const [read] = await practice.readStream(s);
        expect(read).toMatchObject({
          id: e.id,
          type: 'EligibilityVerified',
          schemaVersion: 1,
          occurredAt: '2026-01-02T03:04:05.678Z',
          correlationId: e.correlationId,
          causationId: e.causationId,
          source: 'billing-service',
          actor: { id: 'u-17', role: 'billing-clerk' },
          tenantId: 'practice-9',
          data: e.data,
          metadata: e.metadata,
          stream: s,
          streamVersion: 1,
        });
        // Database time, not the envelope's: a skewed client clock cannot move it.
        expect(Math.abs(Date.parse(read!.recordedAt) - before)).toBeLessThan(60_000);
      });
    });

    describe('idempotent appends', () => {
      it('stores a retried append once and returns the original result', async () => {
        const s = stream();
        const batch = events(2);
        const first = await store.append(s, batch, { expectedVersion: 'no_stream' });
        await store.append(s, events(1), { expectedVersion: 2 });
        const retry = await store.append(s, batch, { expectedVersion: 'no_stream' });
        expect(retry).toEqual(first);
        const again = await store.append(s, batch, { expectedVersion: 'any' });
        expect(again).toEqual(first);
        expect(await store.readStream(s)).toHaveLength(3);
      });

      it('refuses an id already stored as part of a different append', async () => {
        const s = stream();
        const [a, b] = events(2);
        await store.append(s, [a!], { expectedVersion: 'no_stream' });
        const other = stream();
        const error = await rejection(store.append(other, [a!], { expectedVersion: 'any' }));
        expect(error).toBeInstanceOf(DuplicateEventError);
        const partial = await rejection(store.append(s, [a!, b!], { expectedVersion: 'any' }));
        expect(partial).toBeInstanceOf(DuplicateEventError);
        expect(await store.streamVersion(other)).toBe(0);
        expect(await store.readStream(s)).toHaveLength(1);
      });

      it('refuses a batch that holds the same id twice', async () => {
        const e = event();
        await expect(
          store.append(stream(), [e, e], { expectedVersion: 'any' }),
        ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      });
    });

    describe('appendMany', () => {
      it('appends to several streams atomically', async () => {
        const a = stream();
        const b = stream('patient');
        await store.append(a, events(1), { expectedVersion: 'no_stream' });
        const results = await store.appendMany([
          { stream: a, events: events(2), expectedVersion: 1 },
          { stream: b, events: events(1), expectedVersion: 'no_stream' },
        ]);
        expect(results.map((r) => r.nextExpectedVersion)).toEqual([3, 1]);
      });

      it('writes nothing when one stream is not at its expected version', async () => {
        const a = stream();
        const b = stream();
        await store.append(b, events(1), { expectedVersion: 'no_stream' });
        await expect(
          store.appendMany([
            { stream: a, events: events(2), expectedVersion: 'no_stream' },
            { stream: b, events: events(1), expectedVersion: 'no_stream' },
          ]),
        ).rejects.toBeInstanceOf(ConcurrencyError);
        expect(await store.streamVersion(a)).toBe(0);
        expect(await store.streamVersion(b)).toBe(1);
      });

      it('returns the original results when retried', async () => {
        const requests = [
          { stream: stream(), events: events(2), expectedVersion: 'no_stream' as const },
          { stream: stream(), events: events(1), expectedVersion: 'no_stream' as const },
        ];
        const first = await store.appendMany(requests);
        expect(await store.appendMany(requests)).toEqual(first);
      });
    });

    describe('readStream', () => {
      let s: ReturnType<typeof stream>;
      beforeAll(async () => {
        s = stream();
        await store.append(s, events(10), { expectedVersion: 'no_stream' });
      });

      it('reads a window forwards and backwards', async () => {
        const v = async (o: Parameters<EventStore['readStream']>[1]) =>
          (await store.readStream(s, o)).map((e) => e.streamVersion);
        expect(await v({ fromVersion: 3, toVersion: 5 })).toEqual([3, 4, 5]);
        expect(await v({ fromVersion: 8 })).toEqual([8, 9, 10]);
        expect(await v({ direction: 'backwards', limit: 3 })).toEqual([10, 9, 8]);
        expect(await v({ direction: 'backwards', fromVersion: 4 })).toEqual([4, 3, 2, 1]);
        expect(await v({ direction: 'backwards', fromVersion: 6, toVersion: 5 })).toEqual([6, 5]);
        expect(await v({ limit: 2 })).toEqual([1, 2]);
      });

      it('pages through a stream with for await', async () => {
        const seen: number[] = [];
        for await (const e of store.readStream(s, { pageSize: 3 })) seen.push(e.streamVersion);
        expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        const back: number[] = [];
        for await (const e of store.readStream(s, {
          pageSize: 4,
          direction: 'backwards',
          limit: 6,
        })) {
          back.push(e.streamVersion);
        }
        expect(back).toEqual([10, 9, 8, 7, 6, 5]);
      });

      it('reads a stream that does not exist as empty', async () => {
        expect(await store.readStream(stream())).toEqual([]);
      });

      it('rejects malformed read options', async () => {
        expect(() => store.readStream(s, { fromVersion: 0 })).toThrow(/fromVersion/);
        expect(() => store.readStream(s, { direction: 'sideways' as never })).toThrow(/direction/);
      });
    });

    describe('the global log', () => {
      it('reads every event after a checkpoint, in order, with comparable checkpoints', async () => {
        const start = (await store.readAll({ after: startOfLog, limit: 100_000 })).checkpoint;
        const a = stream();
        const b = stream('patient');
        const appended = [...events(3), ...events(2)];
        await store.append(a, appended.slice(0, 3), { expectedVersion: 'no_stream' });
        const last = await store.append(b, appended.slice(3), { expectedVersion: 'no_stream' });
        await settled(store, last.checkpoint);
        const { events: read, checkpoint, caughtUp } = await store.readAll({ after: start });
        expect(read.map((e) => e.id)).toEqual(appended.map((e) => e.id));
        expect(caughtUp).toBe(true);
        const checkpoints = read.map((e) => e.checkpoint);
        expect([...checkpoints].sort(compareCheckpoints)).toEqual(checkpoints);
        expect(compareCheckpoints(checkpoint, checkpoints[4]!)).toBeGreaterThanOrEqual(0);
        expect((await store.readAll({ after: checkpoint })).events).toEqual([]);
      });

      it('pages with limit and resumes from the returned checkpoint', async () => {
        const start = (await store.readAll({ after: startOfLog, limit: 100_000 })).checkpoint;
        const appended = events(5);
        const last = await store.append(stream(), appended, { expectedVersion: 'no_stream' });
        await settled(store, last.checkpoint);
        const first = await store.readAll({ after: start, limit: 2 });
        expect(first.caughtUp).toBe(false);
        const second = await store.readAll({ after: first.checkpoint, limit: 10 });
        expect([...first.events, ...second.events].map((e) => e.id)).toEqual(
          appended.map((e) => e.id),
        );
      });

      it('filters by event type and stream type and still moves the checkpoint on', async () => {
        const start = (await store.readAll({ after: startOfLog, limit: 100_000 })).checkpoint;
        const claim = stream('claim');
        const patient = stream('patient');
        await store.append(claim, [event('ClaimSubmitted'), event('ClaimAdjudicated')], {
          expectedVersion: 'no_stream',
        });
        const last = await store.append(patient, [event('PatientRegistered')], {
          expectedVersion: 'no_stream',
        });
        await settled(store, last.checkpoint);
        const byType = await store.readAll({ after: start, types: ['ClaimAdjudicated'] });
        expect(byType.events.map((e) => e.type)).toEqual(['ClaimAdjudicated']);
        const byStream = await store.readAll({ after: start, streamTypes: ['patient'] });
        expect(byStream.events.map((e) => e.type)).toEqual(['PatientRegistered']);
        const none = await store.readAll({ after: start, types: ['NothingLikeThis'] });
        expect(none.events).toEqual([]);
        expect(compareCheckpoints(none.checkpoint, byStream.events[0]!.checkpoint)).toBeGreaterThan(
          0,
        );
      });

      it('rejects filters that are not event or stream type names', async () => {
        for (const filter of [
          { types: ['Claim\u0000'] },
          { types: [] },
          { streamTypes: ["x'; --"] },
        ]) {
          await expect(store.readAll(filter)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        }
      });

      it('rejects a checkpoint it did not make', async () => {
        await expect(store.readAll({ after: 'position-12' as never })).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
        });
      });
    });

    describe('correlation', () => {
      it("returns a workflow's events across streams in order with one query", async () => {
        const root = event('AppointmentScheduled');
        const patient = stream('patient');
        const claim = stream('claim');
        const child = event('EligibilityVerified', {
          correlationId: root.correlationId,
          causationId: root.id,
        });
        const grandchild = event('ClaimSubmitted', {
          correlationId: root.correlationId,
          causationId: child.id,
        });
        await store.append(patient, [root, child], { expectedVersion: 'no_stream' });
        await store.append(stream(), events(2), { expectedVersion: 'no_stream' });
        await store.append(claim, [grandchild], { expectedVersion: 'no_stream' });
        const journey = await store.readByCorrelation(root.correlationId);
        expect(journey.map((e) => e.type)).toEqual([
          'AppointmentScheduled',
          'EligibilityVerified',
          'ClaimSubmitted',
        ]);
        expect(journey.map((e) => e.causationId)).toEqual([root.id, root.id, child.id]);
      });
    });

    describe('aggregates and snapshots', () => {
      const evolve = (calls: { n: number }) => (state: { count: number }, _e: unknown) => {
        calls.n += 1;
        return { count: state.count + 1 };
      };

      it('folds a stream into state', async () => {
        const s = stream();
        await store.append(s, events(7), { expectedVersion: 'no_stream' });
        const calls = { n: 0 };
        const loaded = await store.aggregate(s, {
          initialState: () => ({ count: 0 }),
          evolve: evolve(calls),
        });
        expect(loaded).toEqual({ state: { count: 7 }, version: 7 });
      });

      it('writes a snapshot every N events and folds only the tail after it', async () => {
        const s = stream();
        await store.append(s, events(12), { expectedVersion: 'no_stream' });
        const snapshot = { schemaVersion: 1, every: 10 };
        const first = { n: 0 };
        await store.aggregate(s, {
          initialState: () => ({ count: 0 }),
          evolve: evolve(first),
          snapshot,
        });
        expect(first.n).toBe(12);
        await store.append(s, events(3), { expectedVersion: 12 });
        const second = { n: 0 };
        const loaded = await store.aggregate(s, {
          initialState: () => ({ count: 0 }),
          evolve: evolve(second),
          snapshot,
        });
        expect(loaded).toEqual({ state: { count: 15 }, version: 15 });
        expect(second.n).toBe(3);
      });

      it('ignores a snapshot taken with another state schema version', async () => {
        const s = stream();
        await store.append(s, events(5), { expectedVersion: 'no_stream' });
        const calls = { n: 0 };
        const options = { initialState: () => ({ count: 0 }), evolve: evolve(calls) };
        await store.aggregate(s, { ...options, snapshot: { schemaVersion: 1, every: 1 } });
        calls.n = 0;
        const loaded = await store.aggregate(s, {
          ...options,
          snapshot: { schemaVersion: 2, every: 100 },
        });
        expect(calls.n).toBe(5);
        expect(loaded.state).toEqual({ count: 5 });
      });

      it('follows a custom snapshot policy', async () => {
        const s = stream();
        await store.append(s, events(4), { expectedVersion: 'no_stream' });
        const calls = { n: 0 };
        const options = {
          initialState: () => ({ count: 0 }),
          evolve: evolve(calls),
          snapshot: {
            schemaVersion: 1,
            shouldSnapshot: ({ version }: { version: number }) => version % 2 === 0,
          },
        };
        await store.aggregate(s, options);
        calls.n = 0;
        await store.aggregate(s, options);
        expect(calls.n).toBe(0);
      });
    });

    describe('handle', () => {
      const options = {
        initialState: () => ({ lines: 0 }),
        evolve: (state: { lines: number }) => ({ lines: state.lines + 1 }),
      };

      it('loads, decides and appends at the loaded version', async () => {
        const s = stream();
        const result = await store.handle(
          s,
          (state) => (state.lines < 2 ? events(2) : []),
          options,
        );
        expect(result.decidedOn).toEqual({ state: { lines: 0 }, version: 0 });
        expect(result.appended.nextExpectedVersion).toBe(2);
        const none = await store.handle(s, (state) => (state.lines < 2 ? events(2) : []), options);
        expect(none.events).toEqual([]);
        expect(await store.streamVersion(s)).toBe(2);
      });

      it('reloads and decides again when another writer wins the race', async () => {
        const s = stream();
        await store.append(s, events(1), { expectedVersion: 'no_stream' });
        const seen: number[] = [];
        const result = await store.handle(
          s,
          async (_state, { version, attempt }) => {
            seen.push(version);
            if (attempt === 1) await store.append(s, events(1), { expectedVersion: version });
            return events(1);
          },
          options,
        );
        expect(seen).toEqual([1, 2]);
        expect(result.appended.nextExpectedVersion).toBe(3);
      });

      it('gives up with ConcurrencyError when every retry loses', async () => {
        const s = stream();
        await store.append(s, events(1), { expectedVersion: 'no_stream' });
        let attempts = 0;
        const error = await rejection(
          store.handle(
            s,
            async (_state, { version }) => {
              attempts += 1;
              await store.append(s, events(1), { expectedVersion: version });
              return events(1);
            },
            { ...options, retries: 2 },
          ),
        );
        expect(isConcurrencyError(error)).toBe(true);
        expect(attempts).toBe(3);
      });

      it('does not retry an error that is not a lost race', async () => {
        let attempts = 0;
        const error = await rejection(
          store.handle(
            stream(),
            () => {
              attempts += 1;
              return [event('X', { data: { n: Number.NaN } })];
            },
            options,
          ),
        );
        expect(isEvidentError(error, 'PAYLOAD_MALFORMED')).toBe(true);
        expect(attempts).toBe(1);
      });
    });

    describe('limits and bad input', () => {
      it('refuses an oversized event before writing anything', async () => {
        const s = stream();
        const big = event('ClinicalNoteAdded', { data: { text: 'x'.repeat(70 * 1024) } });
        await expect(
          store.append(s, [event(), big], { expectedVersion: 'no_stream' }),
        ).rejects.toMatchObject({ code: 'EVENT_TOO_LARGE' });
        expect(await store.streamVersion(s)).toBe(0);
      });

      it('refuses a batch with too many events', async () => {
        const s = stream();
        await expect(
          store.append(s, events(201), { expectedVersion: 'no_stream' }),
        ).rejects.toMatchObject({ code: 'BATCH_TOO_LARGE' });
        expect(await store.streamVersion(s)).toBe(0);
      });

      it('refuses payloads that are not plain JSON or nest too deep', async () => {
        let deep: unknown = 1;
        for (let i = 0; i < 100; i++) deep = [deep];
        for (const data of [{ when: new Date() }, { n: Number.POSITIVE_INFINITY }, deep]) {
          const error = await rejection(
            store.append(stream(), [event('X', { data })], { expectedVersion: 'any' }),
          );
          expect(isEvidentError(error, 'PAYLOAD_MALFORMED', 'PAYLOAD_TOO_DEEP')).toBe(true);
        }
      });

      it('rejects stream names outside the allow-list without echoing them', async () => {
        const bad = [
          { type: 'claim', id: "c-1'; drop table events; --" },
          { type: 'claim"', id: 'c-1' },
          { type: 'claim', id: 'c;1' },
          { type: 'claim', id: 'x'.repeat(129) },
          { type: 'c'.repeat(64), id: 'c-1' },
          { type: 'claim', id: 'с-1' }, // Cyrillic es, looks like a Latin c
          { type: 'claim', id: 'c\u200d1' },
          { type: '', id: 'c-1' },
          { type: 'claim', id: '' },
          { type: 'Claim', id: 'c-1' },
          { type: 'claim', id: 42 },
        ];
        for (const s of bad) {
          const error = await rejection(
            store.append(s as never, events(1), { expectedVersion: 'any' }),
          );
          expect(isEvidentError(error, 'INVALID_ARGUMENT')).toBe(true);
          for (const part of [s.type, s.id]) {
            if (typeof part === 'string' && part.length > 3 && part !== 'c-1' && part !== 'claim') {
              expect((error as Error).message).not.toContain(part);
            }
          }
        }
      });
    });

    describe('append-only history', () => {
      it('refuses UPDATE, DELETE and TRUNCATE on events even for the owner', async () => {
        const s = stream();
        await store.append(s, events(1), { expectedVersion: 'no_stream' });
        const table = `"${store.schema}".events`;
        for (const statement of [
          `update ${table} set event_type = 'Tampered'`,
          `delete from ${table}`,
          `truncate ${table}`,
        ]) {
          await expect(store.database.query(statement)).rejects.toThrow(/append-only/);
        }
        expect(await store.readStream(s)).toHaveLength(1);
      });
    });
  });
}
