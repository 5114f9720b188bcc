import { isEvidentError } from '@evident/envelope';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import {
  event,
  events,
  postgresFactory,
  type StoreFixture,
  settled,
  stream,
} from '../test/fixtures.js';
import {
  applicationRole,
  auditorRole,
  createEventStore,
  type EventStore,
  verifyAll,
  verifyStream,
} from './index.js';

/**
 * Scenario 24 of RELIABILITY.md, through a login role granted only the application role (a
 * superuser would bypass row-level security and prove nothing).
 */
describe.skipIf(!postgresUrl)('tenant isolation on PostgreSQL', () => {
  let fixture: StoreFixture;
  let owner: EventStore;
  const pools: pg.Pool[] = [];
  let app: EventStore;
  let a: EventStore;
  let b: EventStore;
  let roles: string[] = [];

  const loginPool = (role: string, max = 4) => {
    const url = new URL(postgresUrl!);
    url.username = role;
    const pool = new pg.Pool({ connectionString: url.toString(), max });
    pools.push(pool);
    return pool;
  };

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    owner = fixture.store;
    const svc = `${owner.schema}_svc`;
    const audit = `${owner.schema}_audit`;
    roles = [svc, audit];
    await owner.database.query(
      `create role "${svc}" login in role "${applicationRole(owner.schema)}"`,
    );
    await owner.database.query(
      `create role "${audit}" login in role "${auditorRole(owner.schema)}"`,
    );
    app = createEventStore({ pool: loginPool(svc), schema: owner.schema });
    a = app.forTenant('practice-a');
    b = app.forTenant('practice-b');
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    for (const role of roles) await owner.database.query(`drop role if exists "${role}"`);
    await fixture?.cleanup();
  });

  it('keeps row-level security enabled and forced, and the app role unable to bypass it', async () => {
    const tables = await owner.database.query<{
      relname: string;
      relrowsecurity: boolean;
      relforcerowsecurity: boolean;
    }>(
      `select relname, relrowsecurity, relforcerowsecurity from pg_class
       where relnamespace = $1::regnamespace and relname in ('events', 'streams', 'snapshots') order by relname`,
      [owner.schema],
    );
    expect(tables).toEqual(
      ['events', 'snapshots', 'streams'].map((relname) => ({
        relname,
        relrowsecurity: true,
        relforcerowsecurity: true,
      })),
    );
    const [role] = await app.database.query<{
      rolsuper: boolean;
      rolbypassrls: boolean;
      owner: boolean;
    }>(
      `select rolsuper, rolbypassrls,
              pg_has_role(current_user, (select tableowner from pg_tables where schemaname = $1 and tablename = 'events'), 'USAGE') as owner
       from pg_roles where rolname = current_user`,
      [owner.schema],
    );
    expect(role).toEqual({ rolsuper: false, rolbypassrls: false, owner: false });
  });

  it('hides one tenant’s streams, log, journeys and snapshots from another', async () => {
    const claim = stream();
    const journey = event('ClaimSubmitted');
    const written = await a.append(claim, [journey, ...events(2)], {
      expectedVersion: 'no_stream',
    });
    await a.aggregate(claim, {
      initialState: () => 0,
      evolve: (n: number) => n + 1,
      snapshot: { schemaVersion: 1, every: 1 },
    });
    await settled(a, written.checkpoint);

    expect(await a.readStream(claim)).toHaveLength(3);
    expect((await a.readStream(claim))[0]!.tenantId).toBe('practice-a');
    expect(await b.readStream(claim)).toEqual([]);
    expect(await b.streamVersion(claim)).toBe(0);
    expect(await b.readByCorrelation(journey.correlationId)).toEqual([]);
    expect(
      (await b.readAll({ limit: 10_000 })).events.filter((e) => e.stream.id === claim.id),
    ).toEqual([]);
    expect(await app.readStream(claim)).toEqual([]);
    const [snapshots] = await b.database.query<{ n: string }>(
      `select count(*) as n from "${owner.schema}".snapshots`,
    );
    expect(Number(snapshots!.n)).toBe(0);
    const [ownSnapshots] = await a.database.query<{ n: string }>(
      `select count(*) as n from "${owner.schema}".snapshots`,
    );
    expect(Number(ownSnapshots!.n)).toBe(1);
  });

  it('writes a batch with an expected version in one statement, the chain read through row-level security', async () => {
    // The batch reads its chain's base (the hash of the event at the expected version) from the
    // log, after the statement has set the tenant. Were the read refused by row-level security,
    // the claim would take nothing and the store would make the append a second time.
    const s = stream();
    await a.append(s, [event()], { expectedVersion: 'no_stream' });
    const pool = pools[0]!; // the application's login pool, which every append goes through
    const sent: string[] = [];
    const query = pool.query.bind(pool);
    pool.query = ((config: string | { text: string }, ...rest: unknown[]) => {
      sent.push(typeof config === 'string' ? config : config.text);
      return (query as (...args: unknown[]) => unknown)(config, ...rest);
    }) as typeof pool.query;
    try {
      expect(await a.append(s, events(3), { expectedVersion: 1 })).toMatchObject({
        nextExpectedVersion: 4,
      });
    } finally {
      pool.query = query;
    }
    expect(sent.filter((text) => text.includes('insert into'))).toHaveLength(1);
    expect(await verifyStream(owner, s)).toMatchObject({ ok: true, events: 4 });
  });

  it('refuses an append to another tenant’s stream and writes nothing', async () => {
    const claim = stream();
    await a.append(claim, events(1), { expectedVersion: 'no_stream' });
    for (const expectedVersion of ['any', 'exists', 1] as const) {
      const error = await b.append(claim, events(1), { expectedVersion }).catch((e: unknown) => e);
      expect(isEvidentError(error, 'STREAM_NOT_ACCESSIBLE', 'CONCURRENCY_CONFLICT')).toBe(true);
    }
    const [row] = await owner.database.query<{ n: string; tenants: string[] }>(
      `select count(*) as n, array_agg(distinct tenant_id) as tenants from "${owner.schema}".events where stream_id = $1`,
      [claim.id],
    );
    expect(Number(row!.n)).toBe(1);
    expect(row!.tenants).toEqual(['practice-a']);
  });

  it('refuses a row forged for another tenant through raw SQL', async () => {
    const pool = loginPool(roles[0]!, 1);
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query("select set_config('evident.tenant_id', 'practice-a', true)");
      await expect(
        client.query(
          `insert into "${owner.schema}".streams (stream_type, stream_id, version, tenant_id) values ('claim', 'forged', 1, 'practice-b')`,
        ),
      ).rejects.toThrow(/row-level security/);
      await client.query('rollback');
    } finally {
      client.release();
    }
  });

  it('never lets a pooled connection carry the tenant into the next request', async () => {
    const pool = loginPool(roles[0]!, 1);
    const single = createEventStore({ pool, schema: owner.schema });
    const claim = stream();
    await single.forTenant('practice-a').append(claim, events(2), { expectedVersion: 'no_stream' });
    expect(await single.forTenant('practice-a').readStream(claim)).toHaveLength(2);
    // Same single connection, no tenant set: nothing of practice-a is visible.
    const [setting] = (
      await pool.query("select coalesce(current_setting('evident.tenant_id', true), '') as t")
    ).rows;
    expect(setting.t).toBe('');
    const { rows } = await pool.query(
      `select count(*)::int as n from "${owner.schema}".events where stream_id = $1`,
      [claim.id],
    );
    expect(rows[0].n).toBe(0);
  });

  it('never delivers another tenant’s events to a subscription', async () => {
    const seen: string[] = [];
    const sub = b.subscribe({
      name: 'tenant-feed',
      handler: (e) => void seen.push(e.tenantId ?? 'none'),
    });
    try {
      await a.append(stream(), events(3), { expectedVersion: 'no_stream' });
      const mine = await b.append(stream(), events(2), { expectedVersion: 'no_stream' });
      await sub.waitFor(mine.checkpoint!);
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(new Set(seen)).toEqual(new Set(['practice-b']));
    } finally {
      await sub.stop();
    }
  });

  it('refuses an envelope that names another tenant than the store’s', async () => {
    await expect(
      a.append(stream(), [event('ClaimSubmitted', { tenantId: 'practice-b' })], {
        expectedVersion: 'no_stream',
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      app.append(stream(), [event('ClaimSubmitted', { tenantId: 'practice-a' })], {
        expectedVersion: 'no_stream',
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('lets the auditor role read and verify every tenant, and nothing else write', async () => {
    const auditor = createEventStore({ pool: loginPool(roles[1]!), schema: owner.schema });
    const result = await verifyAll(auditor);
    expect(result.ok).toBe(true);
    const tenants = await auditor.database.query<{ tenant_id: string | null }>(
      `select distinct tenant_id from "${owner.schema}".events order by 1`,
    );
    expect(tenants.map((t) => t.tenant_id)).toEqual(['practice-a', 'practice-b']);
    await expect(auditor.append(stream(), events(1), { expectedVersion: 'any' })).rejects.toThrow();
  });
});
