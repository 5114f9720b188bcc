/**
 * Projections on PostgreSQL and PGlite: built exactly once from the log, rebuilt into a shadow
 * version while the live one serves, and inline projections consistent on read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEventStore,
  defineProjection,
  type EventStore,
  isConcurrencyError,
  type Projection,
  projectionView,
  runProjection,
} from '../src/index.js';
import { event, type StoreFactory, type StoreFixture, settled, stream } from './fixtures.js';

let n = 0;
const claimType = () => `claims${++n}`;

/** A claims-per-payer total, as the billing dashboard shows it. */
function totals(name: string, version: number, factor = 1, streamTypes?: string[]): Projection {
  return defineProjection({
    name,
    version,
    ...(streamTypes ? { streamTypes } : {}),
    tables: {
      by_payer:
        'create table {{table}} (payer text primary key, claims integer not null, billed numeric not null)',
    },
    handlers: {
      ClaimSubmitted: async (e, { tx, table }) => {
        const { payer, billed } = e.data as { payer: string; billed: number };
        await tx.query(
          `insert into ${table('by_payer')} as t values ($1, 1, $2)
           on conflict (payer) do update set claims = t.claims + 1, billed = t.billed + excluded.billed`,
          [payer, billed * factor],
        );
      },
    },
  });
}

const submitted = (payer: string, billed: number) =>
  event('ClaimSubmitted', { data: { payer, billed } });

export function projectionContract(name: string, factory: StoreFactory): void {
  describe(`projections: ${name}`, () => {
    let fixture: StoreFixture;
    let store: EventStore;
    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
    });
    afterAll(() => fixture?.cleanup());

    const rows = async (projection: Projection) =>
      store.database.query<{ payer: string; claims: number; billed: string }>(
        `select payer, claims, billed::text as billed from ${projectionView(store, projection, 'by_payer')} order by payer`,
      );

    it('refuses malformed definitions', () => {
      const ok = {
        name: 'p',
        version: 1,
        tables: { t: 'create table {{table}} (x int)' },
        handlers: { X: () => {} },
      };
      expect(() => defineProjection({ ...ok, name: 'Bad-Name' })).toThrow(/name/);
      expect(() => defineProjection({ ...ok, version: 0 })).toThrow(/version/);
      expect(() => defineProjection({ ...ok, tables: { t: 'create table x (y int)' } })).toThrow(
        /{{table}}/,
      );
      expect(() => defineProjection({ ...ok, handlers: {} })).toThrow(/handler/);
    });

    it('builds a read model from the log, each event applied once', async () => {
      const type = claimType();
      const projection = totals(`totals_${n}`, 1, 1, [type]);
      await store.append(stream(type), [submitted('delta', 100), submitted('aetna', 50)], {
        expectedVersion: 'no_stream',
      });
      const runner = runProjection(store, projection);
      try {
        const last = await store.append(stream(type), [submitted('delta', 25)], {
          expectedVersion: 'no_stream',
        });
        await runner.waitFor(last.checkpoint!);
        await runner.live();
        expect(await rows(projection)).toEqual([
          { payer: 'aetna', claims: 1, billed: '50' },
          { payer: 'delta', claims: 2, billed: '125' },
        ]);
        expect(await runner.status()).toMatchObject({
          version: 1,
          liveVersion: 1,
          rebuilding: false,
        });
      } finally {
        await runner.stop();
      }
    });

    it('rebuilds a new version from the start while the old one keeps serving, then swaps', async () => {
      const type = claimType();
      const name = `totals_${n}`;
      const v1 = totals(name, 1, 1, [type]);
      const v2 = totals(name, 2, 10, [type]);
      const first = runProjection(store, v1);
      const last = await store.append(
        stream(type),
        [submitted('delta', 1), submitted('delta', 2)],
        {
          expectedVersion: 'no_stream',
        },
      );
      await first.waitFor(last.checkpoint!);
      await first.live();
      const second = runProjection(store, v2, { batchSize: 1 });
      try {
        await second.live();
        expect(await rows(v2)).toEqual([{ payer: 'delta', claims: 2, billed: '30' }]);
        expect(await second.status()).toMatchObject({
          version: 2,
          liveVersion: 2,
          rebuilding: false,
        });
        // The old version's table is still there, untouched by the swap.
        const [old] = await store.database.query<{ billed: string }>(
          `select billed::text as billed from "${store.schema}"."${name}_by_payer_v1"`,
        );
        expect(old!.billed).toBe('3');
      } finally {
        await first.stop();
        await second.stop();
      }
    });

    it('ends a rebuild under live writes equal to the live projection', async () => {
      const type = claimType();
      const name = `totals_${n}`;
      const v1 = totals(name, 1, 1, [type]);
      const v2 = totals(name, 2, 1, [type]);
      const live = runProjection(store, v1);
      const payers = ['delta', 'aetna', 'cigna', 'guardian'];
      let writing = true;
      let lastCheckpoint = '';
      const writer = (async () => {
        for (let i = 0; writing || i < 40; i++) {
          const r = await store.append(stream(type), [submitted(payers[i % 4]!, i)], {
            expectedVersion: 'no_stream',
          });
          lastCheckpoint = r.checkpoint!;
          // A writer doing real I/O yields; PGlite answers synchronously, so yield explicitly.
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      await new Promise((r) => setTimeout(r, 100));
      const rebuild = runProjection(store, v2, { batchSize: 7 });
      try {
        await rebuild.live({ timeoutMs: 30_000 });
        writing = false;
        await writer;
        await settled(store, lastCheckpoint as never);
        await live.waitFor(lastCheckpoint as never);
        await rebuild.waitFor(lastCheckpoint as never);
        const table = (v: number) =>
          store.database.query(
            `select * from "${store.schema}"."${name}_by_payer_v${v}" order by payer`,
          );
        expect(await table(2)).toEqual(await table(1));
        expect((await table(1)).length).toBe(4);
      } finally {
        writing = false;
        await writer;
        await live.stop();
        await rebuild.stop();
      }
    });

    it('keeps an inline projection consistent with the log on every read', async () => {
      const type = claimType();
      const projection = totals(`inline_${n}`, 1, 1, [type]);
      const inlineStore = createEventStore({
        ...(store.database.kind === 'pg'
          ? { pool: store.database.pool! }
          : { pglite: store.database.pglite! }),
        schema: store.schema,
        inlineProjections: [projection],
      });
      const s = stream(type);
      // Appended before the projection existed: migrate() builds it from the log.
      await store.append(s, [submitted('delta', 7)], { expectedVersion: 'no_stream' });
      await inlineStore.migrate();
      expect(await rows(projection)).toEqual([{ payer: 'delta', claims: 1, billed: '7' }]);
      await inlineStore.append(s, [submitted('delta', 3)], { expectedVersion: 1 });
      // No waiting: the projection committed with the append.
      expect(await rows(projection)).toEqual([{ payer: 'delta', claims: 2, billed: '10' }]);
      // A refused append leaves the projection untouched too.
      await expect(
        inlineStore.append(s, [submitted('delta', 1000)], { expectedVersion: 1 }),
      ).rejects.toSatisfy(isConcurrencyError);
      await inlineStore.appendMany([
        { stream: s, events: [submitted('aetna', 5)], expectedVersion: 2 },
        { stream: stream(type), events: [submitted('aetna', 5)], expectedVersion: 'no_stream' },
      ]);
      expect(await rows(projection)).toEqual([
        { payer: 'aetna', claims: 2, billed: '10' },
        { payer: 'delta', claims: 2, billed: '10' },
      ]);
    });
  });
}
