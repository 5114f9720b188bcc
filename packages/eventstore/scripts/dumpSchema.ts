/**
 * Regenerate sql/schema.sql: migrate a scratch schema, pg_dump it, normalize, write.
 * Usage: POSTGRES_URL=postgres://... pnpm --filter @evident/eventstore schema:dump
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createEventStore } from '../src/index.js';
import { dumpStoreSchema } from './schemaDump.js';

const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
const schema = `dump_${process.pid}`;
const store = createEventStore({ connectionString: url, schema });
try {
  await store.migrate();
  const target = fileURLToPath(new URL('../sql/schema.sql', import.meta.url));
  await writeFile(target, await dumpStoreSchema(url, schema));
  console.log(`wrote ${target}`);
} finally {
  await store.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`drop schema if exists "${schema}" cascade`);
  await client.end();
}
