import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { dumpStoreSchema } from '../scripts/schemaDump.js';
import { dropSchema, uniqueSchema } from '../test/fixtures.js';
import { applyMigrations, createEventStore } from './index.js';
import { loadMigrations, storeMigrations } from './migrations.js';

describe.skipIf(!postgresUrl)('migrations on PostgreSQL', () => {
  const schemas: string[] = [];
  const fresh = () => {
    const schema = uniqueSchema('m');
    schemas.push(schema);
    return createEventStore({ connectionString: postgresUrl!, schema, poolSize: 4 });
  };
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(postgresUrl!, schema);
  });

  it('applies each migration once when many processes start together', async () => {
    const first = fresh();
    const others = Array.from({ length: 5 }, () =>
      createEventStore({ connectionString: postgresUrl!, schema: first.schema, poolSize: 2 }),
    );
    const results = await Promise.all([first, ...others].map((s) => s.migrate()));
    const applied = results.flatMap((r) => r.applied);
    const shipped = (await loadMigrations(storeMigrations())).map((m) => m.name);
    expect(shipped[0]).toBe('0001_init');
    expect(applied).toEqual(shipped);
    const rows = await first.database.query<{ name: string }>(
      `select name from "${first.schema}".migrations where component = 'eventstore' order by id`,
    );
    expect(rows.map((r) => r.name)).toEqual(shipped);
    expect((await first.migrate()).applied).toEqual([]);
    await Promise.all([first, ...others].map((s) => s.close()));
  });

  it('refuses to run when an applied migration was edited', async () => {
    const store = fresh();
    await store.migrate();
    await store.database.query(
      `update "${store.schema}".migrations set checksum = 'edited' where component = 'eventstore' and id = 1`,
    );
    await expect(store.migrate()).rejects.toMatchObject({ code: 'MIGRATION_FAILED' });
    await store.close();
  });

  it("applies another package's migrations in the same schema, tracked apart", async () => {
    const store = fresh();
    await store.migrate();
    const directory = await mkdtemp(join(tmpdir(), 'evident-migrations-'));
    await writeFile(
      join(directory, '0001_widgets.sql'),
      'create table {{schema}}.widgets (id int primary key);\ngrant select on {{schema}}.widgets to {{app_role}};\n',
    );
    const first = await applyMigrations(store, { component: 'widgets', directory });
    expect(first.applied).toEqual(['0001_widgets']);
    expect((await applyMigrations(store, { component: 'widgets', directory })).applied).toEqual([]);
    expect((await store.migrate()).applied).toEqual([]);
    const rows = await store.database.query<{ component: string; name: string }>(
      `select component, name from "${store.schema}".migrations order by component, id`,
    );
    expect(rows.filter((r) => r.component === 'widgets')).toEqual([
      { component: 'widgets', name: '0001_widgets' },
    ]);
    expect(rows.filter((r) => r.component === 'eventstore').length).toBeGreaterThan(0);
    expect(() => applyMigrations(store, { component: 'eventstore', directory })).toThrow();
    await rm(directory, { recursive: true });
    await store.close();
  });

  it('matches the checked-in schema dump, so every schema change shows in review', async () => {
    const store = fresh();
    await store.migrate();
    await store.close();
    const checkedIn = await readFile(
      fileURLToPath(new URL('../sql/schema.sql', import.meta.url)),
      'utf8',
    );
    expect(await dumpStoreSchema(postgresUrl!, store.schema)).toBe(checkedIn);
  });
});
