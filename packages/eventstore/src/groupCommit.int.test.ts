import { isEvidentError } from '@evident/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import {
  event,
  events,
  pgliteFactory,
  postgresFactory,
  type StoreFactory,
  type StoreFixture,
  stream,
} from '../test/fixtures.js';
import { decodeCheckpoint } from './checkpoint.js';
import {
  type AppendResult,
  ConcurrencyError,
  createEventStore,
  DuplicateEventError,
  type EventStore,
  verifyStream,
} from './index.js';
import { createTestStore } from './testing.js';

const transactionOf = (r: AppendResult) => decodeCheckpoint(r.checkpoint).transactionId;
const distinct = (results: readonly AppendResult[]) => new Set(results.map(transactionOf)).size;

function groupCommitContract(name: string, factory: StoreFactory): void {
  describe(`group commit: ${name}`, () => {
    let fixture: StoreFixture;
    let store: EventStore;

    beforeAll(async () => {
      // One group statement at a time: while the first append is written, the next ones wait
      // and go together — the order these tests rely on to know which appends share a group.
      fixture = await factory({ groupCommit: { statements: 1 } });
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.cleanup();
    });

    it('appends that arrive while a group is written go together, in one transaction', async () => {
      const first = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const streams = Array.from({ length: 10 }, () => stream());
      const rest = streams.map((s) => store.append(s, [event()], { expectedVersion: 'no_stream' }));
      const results = await Promise.all(rest);
      await first;
      expect(distinct(results)).toBe(1);
      for (const [i, s] of streams.entries()) {
        const read = await store.readStream(s);
        expect(read.map((e) => e.streamVersion)).toEqual([1]);
        expect(read[0]!.checkpoint).toBe(results[i]!.checkpoint);
        expect(results[i]!.nextExpectedVersion).toBe(1);
      }
    });

    it('each append keeps its own expectation: a stale one is refused, the others written', async () => {
      const streams = Array.from({ length: 5 }, () => stream());
      for (const s of streams) await store.append(s, events(2), { expectedVersion: 'no_stream' });
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const outcomes = await Promise.allSettled(
        streams.map((s, i) => store.append(s, [event()], { expectedVersion: i === 2 ? 1 : 2 })),
      );
      await blocker;
      const stale = outcomes[2]!;
      expect(stale.status).toBe('rejected');
      const error = (stale as PromiseRejectedResult).reason as ConcurrencyError;
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error.actual).toBe(2);
      expect(await store.streamVersion(streams[2]!)).toBe(2);
      const written = outcomes.filter((_, i) => i !== 2) as PromiseFulfilledResult<AppendResult>[];
      expect(written.map((o) => o.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'fulfilled',
      ]);
      expect(distinct(written.map((o) => o.value))).toBe(1);
      for (const [i, s] of streams.entries()) {
        expect(await store.streamVersion(s)).toBe(i === 2 ? 2 : 3);
      }
    });

    it('an append that fails the group statement gets its own error; the others are written', async () => {
      const stored = event();
      await store.append(stream(), [stored], { expectedVersion: 'no_stream' });
      const reused = stream();
      const fresh = [stream(), stream(), stream()];
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const [refused, ...others] = await Promise.allSettled([
        // An event id stored in another stream: its insert raises inside the group's statement.
        store.append(reused, [stored], { expectedVersion: 'no_stream' }),
        ...fresh.map((s) => store.append(s, [event()], { expectedVersion: 'no_stream' })),
      ]);
      await blocker;
      expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateEventError);
      expect(await store.streamVersion(reused)).toBe(0);
      expect(others.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      for (const s of fresh) expect(await store.streamVersion(s)).toBe(1);
    });

    it('a stream that must exist and does not is refused within a group', async () => {
      const missing = stream();
      const existing = [stream(), stream()];
      for (const s of existing) await store.append(s, [event()], { expectedVersion: 'no_stream' });
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const [refused, ...others] = await Promise.allSettled([
        store.append(missing, [event()], { expectedVersion: 'exists' }),
        ...existing.map((s) => store.append(s, [event()], { expectedVersion: 'exists' })),
      ]);
      await blocker;
      expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
      expect(await store.streamVersion(missing)).toBe(0);
      expect(others.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
      for (const s of existing) expect(await store.streamVersion(s)).toBe(2);
    });

    it('a retried append already stored returns its original result from within a group', async () => {
      const s = stream();
      const batch = [event()];
      const original = await store.append(s, batch, { expectedVersion: 'no_stream' });
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const [retried, other] = await Promise.all([
        store.append(s, batch, { expectedVersion: 'no_stream' }),
        store.append(stream(), [event()], { expectedVersion: 'no_stream' }),
      ]);
      await blocker;
      expect(retried).toEqual(original);
      expect(other.nextExpectedVersion).toBe(1);
      expect(await store.streamVersion(s)).toBe(1);
    });

    it('two appends to the same stream never share a statement', async () => {
      const s = stream();
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const results = await Promise.all([
        store.append(s, [event()], { expectedVersion: 'any' }),
        store.append(s, events(2), { expectedVersion: 'any' }),
        store.append(s, [event()], { expectedVersion: 'any' }),
      ]);
      await blocker;
      expect(results.map((r) => r.nextExpectedVersion)).toEqual([1, 3, 4]);
      expect(distinct(results)).toBe(3);
      const read = await store.readStream(s);
      expect(read.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4]);
    });

    it('batches group with batches, and every grouped stream keeps an unbroken hash chain', async () => {
      const streams = Array.from({ length: 6 }, () => stream());
      for (const s of streams) await store.append(s, events(3), { expectedVersion: 'no_stream' });
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const results = await Promise.all(
        streams.map((s) => store.append(s, events(4), { expectedVersion: 3 })),
      );
      await blocker;
      expect(distinct(results)).toBe(1);
      for (const s of streams) {
        const read = await store.readStream(s);
        expect(read.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(await verifyStream(store, s)).toEqual({
          ok: true,
          streams: 1,
          events: read.length,
          broken: [],
        });
      }
    });

    it('a group holds no more events than one append may', async () => {
      const small = await factory({
        groupCommit: { statements: 1 },
        limits: { maxBatchEvents: 10 },
      });
      try {
        const blocker = small.store.append(stream(), [event()], { expectedVersion: 'no_stream' });
        const results = await Promise.all(
          [stream(), stream(), stream()].map((s) =>
            small.store.append(s, events(4), { expectedVersion: 'no_stream' }),
          ),
        );
        await blocker;
        // 4 + 4 fit in 10; the third waits for the next statement.
        expect(transactionOf(results[0]!)).toBe(transactionOf(results[1]!));
        expect(transactionOf(results[2]!)).not.toBe(transactionOf(results[0]!));
      } finally {
        await small.cleanup();
      }
    });

    it('an append of 10 events or more goes alone', async () => {
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const append = (size: number) =>
        store.append(stream(), events(size), { expectedVersion: 'no_stream' });
      const [large, small] = await Promise.all([
        Promise.all([append(10), append(10)]),
        Promise.all([append(9), append(9)]),
      ]);
      await blocker;
      expect(distinct(large)).toBe(2);
      expect(distinct(small)).toBe(1);
    });

    it('appends of different kinds wait for groups of their own kind', async () => {
      const singles = Array.from({ length: 3 }, () => stream());
      const batches = Array.from({ length: 3 }, () => stream());
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const pending = [
        ...singles.map((s) => store.append(s, [event()], { expectedVersion: 'no_stream' })),
        ...batches.map((s) => store.append(s, events(2), { expectedVersion: 'no_stream' })),
      ];
      const results = await Promise.all(pending);
      await blocker;
      expect(distinct(results.slice(0, 3))).toBe(1);
      expect(distinct(results.slice(3))).toBe(1);
      expect(transactionOf(results[0]!)).not.toBe(transactionOf(results[3]!));
    });
  });
}

groupCommitContract('PGlite', pgliteFactory());
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  groupCommitContract('PostgreSQL', postgresFactory(postgresUrl!));

  it('groups as the application role under row-level security, one tenant never reaching another', async () => {
    const test = await createTestStore({ connectionString: postgresUrl! });
    try {
      const a = await test.connectAs('application', {
        tenant: 'practice-7',
        groupCommit: { statements: 1 },
      });
      const b = await test.connectAs('application', { tenant: 'practice-8' });
      const theirs = stream();
      await b.append(theirs, [event()], { expectedVersion: 'no_stream' });
      const ours = [stream(), stream(), stream()];
      for (const s of ours) await a.append(s, [event()], { expectedVersion: 'no_stream' });
      const blocker = a.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const [refused, ...written] = await Promise.allSettled([
        // Another tenant's stream: its claim raises under row-level security, inside the group.
        a.append(theirs, [event()], { expectedVersion: 1 }),
        ...ours.map((s) => a.append(s, [event()], { expectedVersion: 1 })),
      ]);
      await blocker;
      const error = (refused as PromiseRejectedResult).reason;
      expect(isEvidentError(error, 'STREAM_NOT_ACCESSIBLE', 'CONCURRENCY_CONFLICT')).toBe(true);
      expect(written.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      expect(await b.streamVersion(theirs)).toBe(1);
      for (const s of ours) {
        expect((await a.readStream(s)).map((e) => e.tenantId)).toEqual([
          'practice-7',
          'practice-7',
        ]);
        expect(await b.readStream(s)).toEqual([]);
      }
      // And when nothing raises, the same role's appends share one statement.
      const blocker2 = a.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const grouped = await Promise.all(
        ours.map((s) => a.append(s, [event()], { expectedVersion: 2 })),
      );
      await blocker2;
      expect(distinct(grouped)).toBe(1);
    } finally {
      await test.cleanup();
    }
  });

  it('a tenant store groups its appends under its tenant', async () => {
    const fixture = await postgresFactory(postgresUrl!)({
      tenant: 'practice-7',
      groupCommit: { statements: 1 },
    });
    try {
      const store = fixture.store;
      const streams = Array.from({ length: 4 }, () => stream());
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const results = await Promise.all(
        streams.map((s) => store.append(s, events(2), { expectedVersion: 'no_stream' })),
      );
      await blocker;
      expect(distinct(results)).toBe(1);
      for (const s of streams) {
        const read = await store.readStream(s);
        expect(read.map((e) => e.tenantId)).toEqual(['practice-7', 'practice-7']);
        expect(await verifyStream(store, s)).toEqual({
          ok: true,
          streams: 1,
          events: read.length,
          broken: [],
        });
      }
    } finally {
      await fixture.cleanup();
    }
  });
});

describe('the groupCommit option', () => {
  it.each([
    ['a string', 'yes'],
    ['zero statements', { statements: 0 }],
    ['a fraction', { maxAppends: 1.5 }],
    ['too many appends a group', { maxAppends: 1000 }],
    ['an array', []],
  ])('is refused as %s, before anything connects', (_, groupCommit) => {
    expect(() =>
      createEventStore({
        connectionString: 'postgres://nobody@127.0.0.1:1/none',
        groupCommit: groupCommit as never,
      }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
