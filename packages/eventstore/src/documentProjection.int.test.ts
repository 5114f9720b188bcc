import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import {
  event,
  pgliteFactory,
  postgresFactory,
  type StoreFactory,
  type StoreFixture,
  stream,
} from '../test/fixtures.js';
import {
  defineDocumentProjection,
  type EventStore,
  groupDocuments,
  queryDocuments,
  runProjection,
} from './index.js';

/** The seed's claims dashboard: filter by status, search by payer and procedure, totals per payer. */
interface ClaimRow extends Record<string, unknown> {
  payer: string;
  status: string;
  billed: number;
  paid: number;
  codes: string[];
}

const claimsDashboard = defineDocumentProjection<ClaimRow>({
  name: 'claims_dashboard',
  version: 1,
  streamTypes: ['claim'],
  documentId: (e) => e.stream.id,
  apply: {
    ClaimSubmitted: (_, e) => {
      const d = e.data as { payer: string; lines: { code: string; fee: number }[] };
      return {
        payer: d.payer,
        status: 'submitted',
        billed: d.lines.reduce((sum, l) => sum + l.fee, 0),
        paid: 0,
        codes: d.lines.map((l) => l.code),
      };
    },
    ClaimAdjudicated: (doc, e) => {
      const d = e.data as { outcome: 'paid' | 'denied'; paid: number };
      return { ...doc!, status: d.outcome, paid: d.paid };
    },
  },
  searchText: (doc) => `${doc.payer} ${doc.codes.join(' ')} ${doc.status}`,
});

function dashboardTests(name: string, factory: StoreFactory) {
  describe(`claims dashboard on ${name}`, () => {
    let fixture: StoreFixture;
    let store: EventStore;
    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
      const claims: Array<[string, Array<[string, number]>, 'paid' | 'denied' | null, number]> = [
        [
          'delta-dental',
          [
            ['D0120', 65],
            ['D1110', 110],
          ],
          'paid',
          140,
        ],
        ['delta-dental', [['D8080', 5200]], 'denied', 0],
        ['aetna', [['D1110', 110]], null, 0],
        [
          'cigna',
          [
            ['D0274', 85.5],
            ['D1110', 110],
          ],
          'paid',
          195.5,
        ],
      ];
      let last = null as string | null;
      for (const [payer, lines, outcome, paid] of claims) {
        const s = stream('claim');
        const events = [
          event('ClaimSubmitted', {
            data: { payer, lines: lines.map(([code, fee]) => ({ code, fee })) },
          }),
          ...(outcome ? [event('ClaimAdjudicated', { data: { outcome, paid } })] : []),
        ];
        last = (await store.append(s, events, { expectedVersion: 'no_stream' })).checkpoint;
      }
      const runner = runProjection(store, claimsDashboard);
      await runner.waitFor(last as never);
      await runner.live();
      await runner.stop();
    });
    afterAll(() => fixture?.cleanup());

    it('filters by status through the jsonb index', async () => {
      const { documents, total } = await queryDocuments(store, claimsDashboard, {
        where: { status: 'paid' },
      });
      expect(total).toBe(2);
      expect(documents.map((d) => d.doc.payer).sort()).toEqual(['cigna', 'delta-dental']);
    });

    it('finds claims by payer and procedure code with full-text search', async () => {
      const prophylaxis = await queryDocuments(store, claimsDashboard, { text: 'D1110' });
      expect(prophylaxis.total).toBe(3);
      const both = await queryDocuments(store, claimsDashboard, { text: 'delta D8080' });
      expect(both.documents.map((d) => d.doc.status)).toEqual(['denied']);
      const either = await queryDocuments(store, claimsDashboard, { text: 'aetna or cigna' });
      expect(either.total).toBe(2);
      const combined = await queryDocuments(store, claimsDashboard, {
        text: 'D1110',
        where: { payer: 'delta-dental' },
      });
      expect(combined.total).toBe(1);
    });

    it('aggregates per payer', async () => {
      expect(
        await groupDocuments(store, claimsDashboard, { groupBy: 'payer', sum: 'billed' }),
      ).toEqual([
        { key: 'delta-dental', count: 2, sum: 5375 },
        { key: 'aetna', count: 1, sum: 110 },
        { key: 'cigna', count: 1, sum: 195.5 },
      ]);
      expect(
        await groupDocuments(store, claimsDashboard, {
          groupBy: 'status',
          where: { payer: 'delta-dental' },
        }),
      ).toEqual([
        { key: 'denied', count: 1 },
        { key: 'paid', count: 1 },
      ]);
    });

    it('uses the GIN indexes the projection creates', async () => {
      const indexes = await store.database.query<{ indexdef: string }>(
        `select indexdef from pg_indexes where schemaname = $1 and tablename = 'claims_dashboard_documents_v1'`,
        [store.schema],
      );
      expect(indexes.filter((i) => /USING gin/.test(i.indexdef))).toHaveLength(2);
    });

    it('refuses field names that are not identifiers', async () => {
      await expect(
        groupDocuments(store, claimsDashboard, { groupBy: "payer'; drop table x; --" }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(
        queryDocuments(store, claimsDashboard, { where: { 'a b': 1 } }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });
  });
}

dashboardTests('PGlite', pgliteFactory());
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  dashboardTests('PostgreSQL', postgresFactory(postgresUrl!));
});
