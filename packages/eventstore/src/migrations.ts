import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Database } from './database.js';
import { EventStoreError } from './errors.js';
import { quoteIdentifier } from './streamId.js';

/**
 * Numbered SQL files in the package's `sql/` folder, applied in order, each once, under an advisory
 * lock so that two processes starting together do not race. A file whose first line contains
 * `--! breaking` changes the schema in a way older code cannot run against.
 */
export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
  readonly breaking: boolean;
}

export interface MigrateOptions {
  /**
   * Apply migrations marked `--! breaking` to a database that already has some applied: stop the
   * old versions of your services first. @defaultValue false
   */
  readonly allowBreaking?: boolean;
}

export interface MigrateResult {
  /** Names of the migrations this call applied, in order (empty when up to date). */
  readonly applied: readonly string[];
}

// Works from src/ (tests, tsx) and from dist/ (published): sql/ sits beside both.
const sqlDirectory = () => fileURLToPath(new URL('../sql/', import.meta.url));

let cached: Promise<readonly Migration[]> | undefined;

/** The migrations shipped with this version of the package. */
export function loadMigrations(): Promise<readonly Migration[]> {
  cached ??= (async () => {
    const dir = sqlDirectory();
    const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
    return Promise.all(
      files.map(async (file) => {
        const sql = await readFile(`${dir}${file}`, 'utf8');
        return {
          id: Number(file.slice(0, 4)),
          name: file.replace(/\.sql$/, ''),
          sql,
          checksum: createHash('sha256').update(sql).digest('hex'),
          breaking: /^--! breaking/.test(sql),
        };
      }),
    );
  })();
  return cached;
}

/** Substitute the schema and role names, the only values a migration file is parameterized by. */
export function renderMigration(sql: string, schema: string): string {
  const role = `${schema}_app`;
  return sql
    .replaceAll('{{schema}}', quoteIdentifier(schema))
    .replaceAll('{{app_role}}', quoteIdentifier(role))
    .replaceAll('{{app_role_literal}}', `'${role}'`);
}

/** Name of the least-privilege role the migrations create for a schema. */
export function applicationRole(schema: string): string {
  return `${schema}_app`;
}

export async function migrate(
  db: Database,
  schema: string,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const migrations = await loadMigrations();
  const s = quoteIdentifier(schema);
  try {
    return await db.transaction(async (tx) => {
      // One lock per schema name, held until commit: concurrent migrators run one after another.
      await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`evident:migrate:${schema}`]);
      await tx.query(`create schema if not exists ${s}`);
      await tx.query(
        `create table if not exists ${s}.migrations (
           id integer primary key,
           name text not null,
           checksum text not null,
           breaking boolean not null,
           applied_at timestamptz not null default now()
         )`,
      );
      const rows = await tx.query<{ id: number; name: string; checksum: string }>(
        `select id, name, checksum from ${s}.migrations order by id`,
      );
      const applied = new Map(rows.map((r) => [Number(r.id), r]));
      for (const m of migrations) {
        const done = applied.get(m.id);
        if (done && done.checksum !== m.checksum) {
          throw new EventStoreError(
            'MIGRATION_FAILED',
            `migration ${m.name} was changed after it was applied (checksum differs); add a new migration instead`,
          );
        }
      }
      const pending = migrations.filter((m) => !applied.has(m.id));
      if (applied.size > 0 && !options.allowBreaking) {
        const breaking = pending.find((m) => m.breaking);
        if (breaking) {
          throw new EventStoreError(
            'MIGRATION_FAILED',
            `migration ${breaking.name} is breaking: stop older services, then migrate({ allowBreaking: true })`,
          );
        }
      }
      for (const m of pending) {
        await tx.exec(renderMigration(m.sql, schema));
        await tx.query(
          `insert into ${s}.migrations (id, name, checksum, breaking) values ($1, $2, $3, $4)`,
          [m.id, m.name, m.checksum, m.breaking],
        );
      }
      return { applied: pending.map((m) => m.name) };
    });
  } catch (error) {
    if (error instanceof EventStoreError) throw error;
    throw new EventStoreError('MIGRATION_FAILED', `migrating schema ${schema} failed`, {
      cause: error,
    });
  }
}
