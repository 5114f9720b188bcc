/**
 * Regenerate sql/schema.sql: migrate a scratch schema, dump what this package added, write it.
 * Usage: POSTGRES_URL=postgres://... pnpm --filter @evident/saga schema:dump
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createEventStore } from '@evident/eventstore';
import pg from 'pg';
import { migrateSagas } from '../src/index.js';
import { dumpOwnSchema } from './schemaDump.js';

const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
const schema = `dump_${process.pid}`;
const store = createEventStore({ connectionString: url, schema });
try {
  await store.migrate();
  await migrateSagas(store);
  const target = fileURLToPath(new URL('../sql/schema.sql', import.meta.url));
  await writeFile(target, await dumpOwnSchema(url, schema));
  console.log(`wrote ${target}`);
} finally {
  await store.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`drop schema if exists "${schema}" cascade`);
  for (const role of [`${schema}_app`, `${schema}_auditor`]) {
    if ((await client.query('select 1 from pg_roles where rolname = $1', [role])).rowCount) {
      await client.query(`drop owned by "${role}"`);
      await client.query(`drop role "${role}"`);
    }
  }
  await client.end();
}
