import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { event, events, postgresFactory, type StoreFixture, stream } from '../test/fixtures.js';
import { applicationRole, createEventStore, type EventStore } from './index.js';

/** Scenarios 25 and 26 of RELIABILITY.md: hostile names, and what the application role may do. */
describe.skipIf(!postgresUrl)('least privilege and hostile names on PostgreSQL', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  let login: string;
  let appPool: pg.Pool;
  let appStore: EventStore;

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    // A service logs in with its own role and is granted the store's application role.
    login = `${store.schema}_svc`;
    await store.database.query(
      `create role "${login}" login in role "${applicationRole(store.schema)}"`,
    );
    const url = new URL(postgresUrl!);
    url.username = login;
    appPool = new pg.Pool({ connectionString: url.toString(), max: 2 });
    appStore = createEventStore({ pool: appPool, schema: store.schema });
  });
  afterAll(async () => {
    await appPool?.end();
    await store.database.query(`drop role if exists "${login}"`);
    await fixture?.cleanup();
  });

  it('lets the application role append and read', async () => {
    const s = stream();
    await appStore.append(s, events(2), { expectedVersion: 'no_stream' });
    await appStore.append(s, events(1), { expectedVersion: 2 });
    expect(await appStore.readStream(s)).toHaveLength(3);
    expect((await appStore.readAll()).events.length).toBeGreaterThanOrEqual(3);
    const loaded = await appStore.aggregate(s, {
      initialState: () => 0,
      evolve: (n: number) => n + 1,
      snapshot: { schemaVersion: 1, every: 1 },
    });
    expect(loaded.state).toBe(3);
  });

  it('denies the application role UPDATE, DELETE and TRUNCATE on events', async () => {
    const s = stream();
    await appStore.append(s, events(1), { expectedVersion: 'no_stream' });
    const table = `"${store.schema}".events`;
    for (const statement of [
      `update ${table} set data = '{}'::jsonb`,
      `delete from ${table}`,
      `truncate ${table}`,
      `alter table ${table} disable trigger events_refuse_update_delete`,
      `drop table ${table}`,
    ]) {
      await expect(appPool.query(statement)).rejects.toMatchObject({
        code: expect.stringMatching(/^42501$|^42P01$/),
      });
    }
    expect(await appStore.readStream(s)).toHaveLength(1);
  });

  it('keeps the application role from bypassing row security or owning the tables', async () => {
    const { rows } = await appPool.query<{
      rolsuper: boolean;
      rolbypassrls: boolean;
      owns: boolean;
    }>(
      `select r.rolsuper, r.rolbypassrls,
              pg_has_role(current_user, t.tableowner, 'USAGE') as owns
         from pg_roles r, pg_tables t
        where r.rolname = current_user and t.schemaname = $1 and t.tablename = 'events'`,
      [store.schema],
    );
    expect(rows[0]).toEqual({ rolsuper: false, rolbypassrls: false, owns: false });
  });

  it('never interpolates a hostile schema name into SQL', () => {
    for (const schema of [
      'evident"; drop schema public; --',
      'Evident',
      'x'.repeat(49),
      'évident',
      '',
    ]) {
      expect(() => createEventStore({ connectionString: postgresUrl!, schema })).toThrow(
        /schema must be 1-48 characters/,
      );
    }
  });

  it('stores ids with quotes or semicolons in data as plain data', async () => {
    const s = stream();
    const hostile = event('PatientNoteAdded', {
      data: {
        note: "Robert'); drop table events; --",
        emoji: '🦷',
        nul: 'a\u0000b'.replace('\u0000', ''),
      },
    });
    await store.append(s, [hostile], { expectedVersion: 'no_stream' });
    expect((await store.readStream(s))[0]!.data).toEqual(hostile.data);
  });
});
