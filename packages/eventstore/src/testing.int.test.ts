import { createEnvelope, type Envelope, newEventId } from '@evident/envelope';
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
    'connects as the application role: it appends and reads, row-level security applies, it cannot rewrite history',
    async () => {
      await using test = await createTestStore({ connectionString: postgresUrl! });
      const practice = (tenant: string) => ({ ...submitted, id: newEventId(), tenantId: tenant });
      await test.store
        .forTenant('practice-7')
        .append({ type: 'claim', id: 'c-7' }, [practice('practice-7')], {
          expectedVersion: 'no_stream',
        });
      const service = await test.connectAs('application', { tenant: 'practice-42' });
      await service.append({ type: 'claim', id: 'c-42' }, [practice('practice-42')], {
        expectedVersion: 'no_stream',
      });
      expect((await service.readAll()).events.map((e) => e.stream.id)).toEqual(['c-42']);
      await expect(
        service.database.query(`delete from "${test.store.schema}".events`),
      ).rejects.toMatchObject({ code: '42501' });
      const [me] = await service.database.query<{ user: string }>('select current_user as user');
      expect(me!.user).toMatch(new RegExp(`^${test.store.schema}_login`));
    },
  );

  it.skipIf(!postgresUrl)(
    'connects as the auditor role: it reads every tenant and cannot append',
    async () => {
      await using test = await createTestStore({ connectionString: postgresUrl! });
      for (const tenant of ['practice-7', 'practice-42']) {
        const event = { ...submitted, id: newEventId(), tenantId: tenant };
        await test.store
          .forTenant(tenant)
          .append({ type: 'claim', id: `c-${tenant}` }, [event], { expectedVersion: 'no_stream' });
      }
      const auditor = await test.connectAs('auditor');
      expect((await auditor.readAll()).events).toHaveLength(2);
      await expect(
        auditor.append({ type: 'claim', id: 'c-x' }, [{ ...submitted, id: newEventId() }], {
          expectedVersion: 'no_stream',
        }),
      ).rejects.toMatchObject({ code: '42501' });
    },
  );

  it.skipIf(!postgresUrl)('drops the logins it made with the test store', async () => {
    const test = await createTestStore({ connectionString: postgresUrl! });
    const schema = test.store.schema;
    const service = await test.connectAs('application');
    await test.connectAs('auditor');
    await service.close(); // closed by the test already: cleanup closes it again without error
    await test.cleanup();
    await using check = await createTestStore({ connectionString: postgresUrl! });
    const rows = await check.store.database.query<{ n: string }>(
      'select count(*) as n from pg_roles where rolname like $1',
      [`${schema}_%`],
    );
    expect(Number(rows[0]!.n)).toBe(0);
  });

  it('refuses to connect as a role on PGlite, which has one session', async () => {
    await using test = await createTestStore();
    await expect(test.connectAs('application')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

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
