/**
 * The checked-in `sql/schema.sql` of each package: a pg_dump of what its migrations create,
 * normalized so it compares across runs and schema names. Reviewers see every schema change in a
 * diff; each package's schema test fails when the dump is stale.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { dropSchema } from './postgres.js';

export interface SchemaDumpOptions {
  /** Connection string of the database holding the migrated scratch schema. */
  readonly url: string;
  /** The scratch schema's name; replaced by `evident` (and its roles by `evident_app`, …). */
  readonly schema: string;
  /** The package whose `schema:dump` script regenerates the file (named in its header). */
  readonly packageName: string;
  /**
   * What the package owns when it adds to the store's schema: its tables, and the functions and
   * triggers it puts on the store's tables. Without it, the whole schema (the store itself).
   */
  readonly owns?: {
    readonly tables: readonly string[];
    readonly functions?: readonly string[];
    readonly triggers?: readonly string[];
  };
}

/** Make a pg_dump of a migrated schema comparable across runs and schema names. */
export function normalizeSchemaDump(dump: string, schema: string): string {
  return (
    dump
      .split('\n')
      .filter((line) => !/^--( Dumped| PostgreSQL database dump)/.test(line))
      .filter((line) => !/^\\(un)?restrict /.test(line))
      .filter((line) => !/^SET |^SELECT pg_catalog\.set_config/.test(line))
      .join('\n')
      // Role names derived from the schema first, then the schema. Names are [a-z0-9_] (checked
      // by the store), safe inside a pattern.
      .replace(new RegExp(`"?\\b${schema}_(app|auditor)\\b"?`, 'g'), 'evident_$1')
      .replace(new RegExp(`"?\\b${schema}\\b"?`, 'g'), 'evident')
      .replace(/\n{3,}/g, '\n\n')
      .trim()
  );
}

/** The normalized dump, with the header of the package's `sql/schema.sql`. */
export async function dumpSchema(options: SchemaDumpOptions): Promise<string> {
  const { url, schema, owns } = options;
  const { stdout } = await promisify(execFile)('pg_dump', [
    '--schema-only',
    '--no-owner',
    '--no-privileges',
    ...(owns ? owns.tables.map((t) => `--table=${schema}.${t}`) : [`--schema=${schema}`]),
    url,
  ]);
  const parts = [stdout];
  if (owns && (owns.functions?.length || owns.triggers?.length)) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const name of owns.functions ?? []) {
        const { rows } = await client.query<{ def: string }>(
          `select pg_get_functiondef(p.oid) as def from pg_proc p
             join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = $1 and p.proname = $2`,
          [schema, name],
        );
        parts.push(`${rows[0]?.def ?? `-- missing function ${name}`};`);
      }
      for (const name of owns.triggers ?? []) {
        const { rows } = await client.query<{ def: string }>(
          `select pg_get_triggerdef(t.oid) as def from pg_trigger t
             join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = $1 and t.tgname = $2`,
          [schema, name],
        );
        parts.push(`${rows[0]?.def ?? `-- missing trigger ${name}`};`);
      }
    } finally {
      await client.end();
    }
  }
  const header = owns
    ? "-- What this package's migrations add to the store's schema (normalized)."
    : '-- The schema the migrations in this folder produce (pg_dump --schema-only, normalized).';
  return `${header}\n-- Regenerate with: pnpm --filter ${options.packageName} schema:dump\n\n${normalizeSchemaDump(parts.join('\n'), schema)}\n`;
}

/**
 * A package's `schema:dump` script: migrate a scratch schema (`migrate`), dump it (`dump`), write
 * the dump to `target`, and drop the scratch schema and its roles, whatever happened. PostgreSQL
 * from `POSTGRES_URL`, else the local test database. Returns the path written.
 */
export async function writeSchemaDump(options: {
  readonly target: URL;
  readonly migrate: (url: string, schema: string) => Promise<void>;
  readonly dump: (url: string, schema: string) => Promise<string>;
}): Promise<string> {
  const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
  const schema = `dump_${process.pid}`;
  try {
    await options.migrate(url, schema);
    const path = fileURLToPath(options.target);
    await writeFile(path, await options.dump(url, schema));
    return path;
  } finally {
    await dropSchema(url, schema);
  }
}
