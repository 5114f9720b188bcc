/**
 * The part of a migrated schema this package owns, as text comparable across runs and schema
 * names: the inbox table (pg_dump). The store's own objects are left out, so a change to the store
 * does not show up here.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export async function dumpOwnSchema(url: string, schema: string): Promise<string> {
  const { stdout } = await promisify(execFile)('pg_dump', [
    '--schema-only',
    '--no-owner',
    '--no-privileges',
    `--table=${schema}.inbox`,
    url,
  ]);
  const body = stdout
    .split('\n')
    .filter((line) => !/^--( Dumped| PostgreSQL database dump)/.test(line))
    .filter((line) => !/^\\(un)?restrict /.test(line))
    .filter((line) => !/^SET |^SELECT pg_catalog\.set_config/.test(line))
    .join('\n')
    // Schema names are [a-z0-9_] (checked by the store), safe inside a pattern.
    .replace(new RegExp(`"?\\b${schema}\\b"?`, 'g'), 'evident')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return `-- What this package's migrations add to the store's schema (normalized).\n-- Regenerate with: pnpm --filter @evident/adapters schema:dump\n\n${body}\n`;
}
