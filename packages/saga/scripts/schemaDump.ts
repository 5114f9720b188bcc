/**
 * The part of a migrated schema this package owns, as text comparable across runs and schema
 * names: the work table (pg_dump), and the trigger that keeps it, on the store's events table.
 * The store's own objects are left out, so a change to the store does not show up here.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';

export async function dumpOwnSchema(url: string, schema: string): Promise<string> {
  const { stdout } = await promisify(execFile)('pg_dump', [
    '--schema-only',
    '--no-owner',
    '--no-privileges',
    `--table=${schema}.saga_instances`,
    url,
  ]);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const fn = await client.query<{ def: string }>(
      `select pg_get_functiondef(p.oid) as def from pg_proc p
         join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = $1 and p.proname = 'saga_progress'`,
      [schema],
    );
    const trigger = await client.query<{ def: string }>(
      `select pg_get_triggerdef(t.oid) as def from pg_trigger t
         join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and t.tgname = 'saga_progress'`,
      [schema],
    );
    const body = [
      stdout,
      `${fn.rows[0]?.def ?? '-- missing function saga_progress'};`,
      `${trigger.rows[0]?.def ?? '-- missing trigger saga_progress'};`,
    ]
      .join('\n')
      .split('\n')
      .filter((line) => !/^--( Dumped| PostgreSQL database dump)/.test(line))
      .filter((line) => !/^\\(un)?restrict /.test(line))
      .filter((line) => !/^SET |^SELECT pg_catalog\.set_config/.test(line))
      .join('\n')
      // Schema names are [a-z0-9_] (checked by the store), safe inside a pattern.
      .replace(new RegExp(`"?\\b${schema}\\b"?`, 'g'), 'evident')
      .replace(/\n{3,}/g, '\n\n')
      .trim();
    return `-- What this package's migrations add to the store's schema (normalized).\n-- Regenerate with: pnpm --filter @evident/saga schema:dump\n\n${body}\n`;
  } finally {
    await client.end();
  }
}
