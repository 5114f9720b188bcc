import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Envelope } from '@evident/envelope';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { event, events, postgresFactory, type StoreFixture, stream } from '../test/fixtures.js';
import { appendStatement } from './appendSql.js';
import {
  type Checkpoint,
  type EventStore,
  isConcurrencyError,
  type RecordedEvent,
} from './index.js';
import { verifyStream } from './integrity.js';

/**
 * Races and faults against a real PostgreSQL server, with separate connections. The transaction
 * horizon is cluster-wide, so other suites running beside this one can delay a reader by a few
 * milliseconds; reads that must eventually see something poll for it, never sleep a fixed time.
 */
describe.skipIf(!postgresUrl)('concurrency and faults on PostgreSQL', () => {
  let fixture: StoreFixture;
  let store: EventStore;

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
  });
  afterAll(() => fixture?.cleanup());

  async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: postgresUrl! });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  /** Read the whole log after `after`, repeating until `done` holds (or 10 s pass). */
  async function readUntil(
    after: Checkpoint,
    done: (events: RecordedEvent[]) => boolean,
  ): Promise<RecordedEvent[]> {
    const deadline = Date.now() + 10_000;
    const seen: RecordedEvent[] = [];
    let checkpoint = after;
    for (;;) {
      const page = await store.readAll({ after: checkpoint, limit: 1000 });
      seen.push(...page.events);
      checkpoint = page.checkpoint;
      if (done(seen) || Date.now() > deadline) return seen;
      if (page.caughtUp) await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Append in an open transaction of `client`, exactly as the store does. */
  const appendOpen = (client: pg.Client, id: string, batch: readonly Envelope[]) =>
    client.query(appendStatement(`"${store.schema}"`, 'any', 'many'), [
      'claim',
      id,
      batch.length,
      JSON.stringify(batch),
      '',
    ]);

  const headOfLog = async () => (await store.readAll({ limit: 1_000_000 })).checkpoint;

  it('lets exactly one of 32 writers win each version, contiguous and lossless', async () => {
    const s = stream();
    await store.append(s, [event()], { expectedVersion: 'no_stream' });
    const writers = 32;
    // Separate pools, so every writer has its own connection and they truly race.
    const pools = await Promise.all(
      Array.from(
        { length: 4 },
        async () => new pg.Pool({ connectionString: postgresUrl!, max: 8 }),
      ),
    );
    const { createEventStore } = await import('./index.js');
    const stores = pools.map((pool) => createEventStore({ pool, schema: store.schema }));
    try {
      for (let round = 0; round < 5; round++) {
        const version = await store.streamVersion(s);
        const attempts = await Promise.allSettled(
          Array.from({ length: writers }, (_, i) =>
            stores[i % stores.length]!.append(s, [event()], { expectedVersion: version }),
          ),
        );
        const won = attempts.filter((a) => a.status === 'fulfilled');
        const lost = attempts.filter((a) => a.status === 'rejected');
        expect(won).toHaveLength(1);
        for (const l of lost) {
          expect(isConcurrencyError((l as PromiseRejectedResult).reason)).toBe(true);
          expect((l as PromiseRejectedResult).reason).toMatchObject({ actual: version + 1 });
        }
      }
      // Now every writer insists until its own event is in: nothing may be lost.
      const mine = Array.from({ length: writers }, () => event());
      await Promise.all(
        mine.map(async (e, i) => {
          const writer = stores[i % stores.length]!;
          for (;;) {
            const version = await writer.streamVersion(s);
            try {
              await writer.append(s, [e], { expectedVersion: version });
              return;
            } catch (error) {
              if (!isConcurrencyError(error)) throw error;
            }
          }
        }),
      );
      const all = await store.readStream(s);
      expect(all.map((e) => e.streamVersion)).toEqual(all.map((_, i) => i + 1));
      expect(all).toHaveLength(1 + 5 + writers);
      const ids = new Set(all.map((e) => e.id));
      for (const e of mine) expect(ids.has(e.id)).toBe(true);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  /** Poll until `minimum` statements on this store's schema wait on a lock; returns how many do. */
  async function waitersOnLock(minimum: number): Promise<number> {
    for (let tries = 0; tries < 500; tries++) {
      // (pg_stat_activity keeps the first 1,024 bytes of a statement: the schema is among them.)
      const rows = await store.database.query<{ pid: number }>(
        `select pid from pg_stat_activity where wait_event_type = 'Lock' and query like $1`,
        [`%"${store.schema}".%`],
      );
      if (rows.length >= minimum) return rows.length;
      await new Promise((r) => setTimeout(r, 10));
    }
    return 0;
  }

  /** Append as a tenant in an open transaction of `client`, exactly as the store does. */
  const appendOpenAs = (
    client: pg.Client,
    tenant: string,
    id: string,
    batch: readonly Envelope[],
  ) =>
    client.query(appendStatement(`"${store.schema}"`, 'any', 'many', true, true), [
      'claim',
      id,
      batch.length,
      JSON.stringify(batch),
      tenant,
    ]);

  it('chains a batch right when the version it expects commits while it waits', async () => {
    // A batch with an expected version reads its chain's base (the hash of the event at that
    // version) from the log before it claims the stream. A tenant's claim is an INSERT … ON
    // CONFLICT, which waits for a stream row another transaction holds and then checks the
    // newest version of it: here the event at the expected version commits while the batch
    // waits, so the batch's read missed it, its claim takes nothing although the version
    // matches, and the store makes the append again with the base from the stream row.
    const tenant = store.forTenant('practice-a');
    const s = stream();
    await tenant.append(s, [event()], { expectedVersion: 'no_stream' });
    await withClient(async (holder) => {
      await holder.query('begin');
      await appendOpenAs(holder, 'practice-a', s.id, [event()]); // version 2, held open
      const batch = tenant.append(s, events(3), { expectedVersion: 2 });
      expect(await waitersOnLock(1)).toBe(1);
      await holder.query('commit');
      expect(await batch).toMatchObject({ nextExpectedVersion: 5 });
    });
    expect((await store.readStream(s)).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5]);
    expect(await verifyStream(store, s)).toMatchObject({ ok: true, events: 5 });
  });

  it('chains grouped batches right when the versions they expect commit while they wait', async () => {
    const { createEventStore } = await import('./index.js');
    const grouped = createEventStore({
      connectionString: postgresUrl!,
      schema: store.schema,
      groupCommit: true,
    });
    const tenant = grouped.forTenant('practice-a');
    try {
      const streams = [stream(), stream(), stream()];
      for (const s of streams) await tenant.append(s, [event()], { expectedVersion: 'no_stream' });
      await withClient(async (holder) => {
        await holder.query('begin');
        for (const s of streams) await appendOpenAs(holder, 'practice-a', s.id, [event()]);
        const batches = streams.map((s) => tenant.append(s, events(2), { expectedVersion: 2 }));
        expect(await waitersOnLock(1)).toBeGreaterThanOrEqual(1);
        await holder.query('commit');
        const results = await Promise.all(batches);
        expect(results.map((r) => r.nextExpectedVersion)).toEqual([4, 4, 4]);
      });
      for (const s of streams) {
        expect((await store.readStream(s)).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4]);
        expect(await verifyStream(store, s)).toMatchObject({ ok: true, events: 4 });
      }
    } finally {
      await grouped.close();
    }
  });

  it('never delivers a later commit before an earlier position that commits late', async () => {
    const start = await headOfLog();
    const a = stream();
    const b = stream();
    const late = event('ClaimSubmitted');
    const early = event('ClaimAdjudicated');
    await withClient(async (client) => {
      // Transaction A takes its transaction id and global position first, then stays open.
      await client.query('begin');
      await appendOpen(client, a.id, [late]);
      // B commits while A is open.
      await store.append(b, [early], { expectedVersion: 'no_stream' });
      const whileOpen = await store.readAll({ after: start });
      expect(whileOpen.events.map((e) => e.id)).not.toContain(early.id);
      expect(whileOpen.events.map((e) => e.id)).not.toContain(late.id);
      await new Promise((r) => setTimeout(r, 200));
      const stillOpen = await store.readAll({ after: whileOpen.checkpoint });
      expect(stillOpen.events.map((e) => e.id)).not.toContain(early.id);
      await client.query('commit');
      const afterCommit = await readUntil(whileOpen.checkpoint, (seen) =>
        seen.some((e) => e.id === early.id),
      );
      const ids = afterCommit.map((e) => e.id);
      expect(ids.indexOf(late.id)).toBeGreaterThanOrEqual(0);
      expect(ids.indexOf(late.id)).toBeLessThan(ids.indexOf(early.id));
      const positions = Object.fromEntries(afterCommit.map((e) => [e.id, e.globalPosition]));
      expect(positions[late.id]!).toBeLessThan(positions[early.id]!);
    });
  });

  it('moves past the hole a rolled-back transaction leaves', async () => {
    const start = await headOfLog();
    const after = event();
    await withClient(async (client) => {
      await client.query('begin');
      await appendOpen(client, stream().id, events(3));
      await client.query('rollback');
    });
    await store.append(stream(), [after], { expectedVersion: 'no_stream' });
    const seen = await readUntil(start, (s) => s.some((e) => e.id === after.id));
    expect(seen.map((e) => e.id)).toEqual([after.id]);
  });

  it('waits for a transaction held open for seconds and skips nothing', async () => {
    const start = await headOfLog();
    const held = event('EncounterOpened');
    const others = events(40);
    await withClient(async (client) => {
      await client.query('begin');
      await appendOpen(client, stream().id, [held]);
      const writes = (async () => {
        for (const e of others) {
          await store.append(stream(), [e], { expectedVersion: 'no_stream' });
        }
      })();
      const deadline = Date.now() + 2000;
      let checkpoint = start;
      while (Date.now() < deadline) {
        const page = await store.readAll({ after: checkpoint });
        expect(page.events).toEqual([]);
        checkpoint = page.checkpoint;
        await new Promise((r) => setTimeout(r, 50));
      }
      await writes;
      await client.query('commit');
    });
    const seen = await readUntil(start, (s) => s.length >= 41);
    expect(seen.map((e) => e.id)).toEqual([held.id, ...others.map((e) => e.id)]);
  });

  it('shows nothing of a writer killed with SIGKILL before COMMIT', async () => {
    const a = stream();
    const b = stream();
    const batch = events(5);
    const script = fileURLToPath(new URL('../test/killedWriter.ts', import.meta.url));
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        // Workspace packages from their sources, as in the test itself (not a stale dist/).
        '--conditions=@evident/source',
        '--import',
        'tsx',
        script,
        postgresUrl!,
        store.schema,
        a.id,
        b.id,
        JSON.stringify(batch),
        JSON.stringify(events(2)),
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    // Its inserts are done, its COMMIT never comes.
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await store.readStream(a)).toEqual([]);
    expect(await store.readStream(b)).toEqual([]);
    // The server notices the dead connection, rolls back and releases the stream locks.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await store.append(a, batch, { expectedVersion: 'no_stream' });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect((await store.readStream(a)).map((e) => e.id)).toEqual(batch.map((e) => e.id));
    expect(await store.readStream(b)).toEqual([]);
  });
});
