import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { normalizeSchemaDump } from '../scripts/schemaDump.js';
import { dropSchema, uniqueSchema } from '../test/fixtures.js';
import { createEventStore } from './index.js';

const run = promisify(execFile);

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
    expect(applied).toEqual(['0001_init']);
    const rows = await first.database.query<{ name: string }>(
      `select name from "${first.schema}".migrations order by id`,
    );
    expect(rows.map((r) => r.name)).toEqual(['0001_init']);
    expect((await first.migrate()).applied).toEqual([]);
    await Promise.all([first, ...others].map((s) => s.close()));
  });

  it('refuses to run when an applied migration was edited', async () => {
    const store = fresh();
    await store.migrate();
    await store.database.query(
      `update "${store.schema}".migrations set checksum = 'edited' where id = 1`,
    );
    await expect(store.migrate()).rejects.toMatchObject({ code: 'MIGRATION_FAILED' });
    await store.close();
  });

  it('matches the checked-in schema dump, so every schema change shows in review', async () => {
    const store = fresh();
    await store.migrate();
    await store.close();
    const url = new URL(postgresUrl!);
    const { stdout } = await run('pg_dump', [
      '--schema-only',
      '--no-owner',
      '--no-privileges',
      `--schema=${store.schema}`,
      url.toString(),
    ]);
    const checkedIn = await readFile(
      fileURLToPath(new URL('../sql/schema.sql', import.meta.url)),
      'utf8',
    );
    expect(normalizeSchemaDump(stdout, store.schema)).toBe(checkedIn);
  });
});
