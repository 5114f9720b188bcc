/**
 * Regenerate sql/schema.sql: migrate a scratch schema, pg_dump it, normalize, write.
 * Usage: POSTGRES_URL=postgres://... pnpm --filter @evident/eventstore schema:dump
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { createEventStore } from '../src/index.js';
import { normalizeSchemaDump } from './schemaDump.js';

const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
const schema = `dump_${process.pid}`;
const store = createEventStore({ connectionString: url, schema });
try {
  await store.migrate();
  const { stdout } = await promisify(execFile)('pg_dump', [
    '--schema-only',
    '--no-owner',
    '--no-privileges',
    `--schema=${schema}`,
    url,
  ]);
  const target = fileURLToPath(new URL('../sql/schema.sql', import.meta.url));
  await writeFile(target, normalizeSchemaDump(stdout, schema));
  console.log(`wrote ${target}`);
} finally {
  await store.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`drop schema if exists "${schema}" cascade`);
  await client.end();
}
