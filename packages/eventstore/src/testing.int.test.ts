import { createEnvelope, type Envelope } from '@evident/envelope';
import { describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { createTestStore, given } from './testing.js';

const actor = { id: 'u-17', role: 'billing-clerk' };
const submitted = createEnvelope({
  type: 'ClaimSubmitted',
  data: { billed: 175 },
  source: 'billing',
  actor,
});

interface Claim {
  status: 'none' | 'submitted' | 'adjudicated';
  billed: number;
}
const claimRules = {
  initialState: (): Claim => ({ status: 'none', billed: 0 }),
  evolve: (state: Claim, e: { type: string; data: unknown }): Claim =>
    e.type === 'ClaimSubmitted'
      ? { status: 'submitted', billed: (e.data as { billed: number }).billed }
      : e.type === 'ClaimAdjudicated'
        ? { ...state, status: 'adjudicated' }
        : state,
};
function adjudicate(state: Claim, paid: number): Envelope[] {
  if (state.status !== 'submitted') {
    throw Object.assign(new Error('not submitted'), { code: 'CLAIM_NOT_SUBMITTED' });
  }
  return [
    createEnvelope({
      type: 'ClaimAdjudicated',
      data: { paid, denied: state.billed - paid },
      source: 'billing',
      actor,
    }),
  ];
}

describe('the testing kit', () => {
  it('specifies a decision with given/when/then, data compared by the fields named', async () => {
    await given([submitted], claimRules)
      .when((state) => adjudicate(state, 140))
      .then([{ type: 'ClaimAdjudicated', data: { paid: 140 } }]);
    await given([], claimRules)
      .when((state) => adjudicate(state, 1))
      .thenThrows('CLAIM_NOT_SUBMITTED');
  });

  it('fails a specification that does not hold, saying what was decided', async () => {
    await expect(
      given([submitted], claimRules)
        .when((state) => adjudicate(state, 140))
        .then([{ type: 'ClaimAdjudicated', data: { paid: 100 } }]),
    ).rejects.toMatchObject({
      code: 'SPECIFICATION_FAILED',
      message: expect.stringContaining('"paid":140'),
    });
    await expect(
      given([submitted], claimRules)
        .when((state) => adjudicate(state, 1))
        .thenThrows('CLAIM_NOT_SUBMITTED'),
    ).rejects.toMatchObject({ code: 'SPECIFICATION_FAILED' });
  });

  it('gives a migrated store in a throwaway schema on PGlite, removed afterwards', async () => {
    let schema = '';
    {
      await using test = await createTestStore();
      schema = test.store.schema;
      await test.store.append({ type: 'claim', id: 'c-1' }, [submitted], {
        expectedVersion: 'no_stream',
      });
      expect(await test.store.readStream({ type: 'claim', id: 'c-1' })).toHaveLength(1);
    }
    expect(schema).toMatch(/^test_/);
  });

  it.skipIf(!postgresUrl)(
    'gives the same on PostgreSQL, dropping the schema and its roles',
    async () => {
      const test = await createTestStore({ connectionString: postgresUrl! });
      const schema = test.store.schema;
      await test.store.append({ type: 'claim', id: 'c-2' }, [submitted], {
        expectedVersion: 'no_stream',
      });
      await test.cleanup();
      const check = await createTestStore({ connectionString: postgresUrl! });
      const rows = await check.store.database.query<{ n: string }>(
        `select (select count(*) from pg_namespace where nspname = $1) + (select count(*) from pg_roles where rolname like $2) as n`,
        [schema, `${schema}_%`],
      );
      expect(Number(rows[0]!.n)).toBe(0);
      await check.cleanup();
    },
  );

  it.skipIf(!postgresUrl)(
    'takes the store options it is given, such as the pool size',
    async () => {
      await using small = await createTestStore({ connectionString: postgresUrl! });
      await using large = await createTestStore({ connectionString: postgresUrl!, poolSize: 9 });
      expect(small.store.database.pool?.options.max).toBe(4);
      expect(large.store.database.pool?.options.max).toBe(9);
    },
  );
});
