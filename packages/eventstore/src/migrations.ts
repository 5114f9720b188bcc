import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Database } from './database.js';
import { EventStoreError } from './errors.js';
import { quoteIdentifier } from './streamId.js';

/**
 * Numbered SQL files (`0001_init.sql`, …), applied in order, each once, under an advisory lock so
 * that processes starting together do not race, and recorded with a checksum in
 * `<schema>.migrations`. A file whose first line starts with `--! breaking` changes the schema in a
 * way older code cannot run against.
 *
 * The store's own files live in this package's `sql/`; packages built on the store (state
 * machines, sagas) ship theirs as another component, through {@link applyMigrations}.
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

const cache = new Map<string, Promise<readonly Migration[]>>();

/** Read the numbered `.sql` files of a folder (cached per folder). */
export function loadMigrations(directory: string): Promise<readonly Migration[]> {
  let found = cache.get(directory);
  if (!found) {
    found = (async () => {
      const files = (await readdir(directory))
        .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
        .sort();
      return Promise.all(
        files.map(async (file) => {
          const sql = await readFile(`${directory.replace(/\/?$/, '/')}${file}`, 'utf8');
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
    cache.set(directory, found);
  }
  return found;
}

/**
 * Substitute the only values a migration file is parameterized by: `{{schema}}`, `{{app_role}}`
 * and `{{auditor_role}}` (quoted identifiers), and `{{app_role_literal}}` and
 * `{{auditor_role_literal}}` (quoted strings).
 */
export function renderMigration(sql: string, schema: string): string {
  const role = applicationRole(schema);
  const auditor = auditorRole(schema);
  return sql
    .replaceAll('{{schema}}', quoteIdentifier(schema))
    .replaceAll('{{app_role}}', quoteIdentifier(role))
    .replaceAll('{{app_role_literal}}', `'${role}'`)
    .replaceAll('{{auditor_role}}', quoteIdentifier(auditor))
    .replaceAll('{{auditor_role_literal}}', `'${auditor}'`);
}

/** Name of the least-privilege role the migrations create for a schema. */
export function applicationRole(schema: string): string {
  return `${schema}_app`;
}

/** Name of the read-only role that sees every tenant (integrity checks, archive, reports). */
export function auditorRole(schema: string): string {
  return `${schema}_auditor`;
}

// Works from src/ (tests, tsx) and from dist/ (published): sql/ sits beside both.
export const storeMigrations = () => fileURLToPath(new URL('../sql/', import.meta.url));

export async function migrate(
  db: Database,
  schema: string,
  component: string,
  directory: string,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const migrations = await loadMigrations(directory);
  const s = quoteIdentifier(schema);
  try {
    return await db.transaction(async (tx) => {
      // One lock per schema, held until commit: migrators of every component run one at a time.
      await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`evident:migrate:${schema}`]);
      await tx.query(`create schema if not exists ${s}`);
      await tx.query(
        `create table if not exists ${s}.migrations (
           component text not null,
           id integer not null,
           name text not null,
           checksum text not null,
           breaking boolean not null,
           applied_at timestamptz not null default now(),
           primary key (component, id)
         )`,
      );
      const rows = await tx.query<{ id: number; checksum: string }>(
        `select id, checksum from ${s}.migrations where component = $1 order by id`,
        [component],
      );
      const applied = new Map(rows.map((r) => [Number(r.id), r]));
      for (const m of migrations) {
        const done = applied.get(m.id);
        if (done && done.checksum !== m.checksum) {
          throw new EventStoreError(
            'MIGRATION_FAILED',
            `${component} migration ${m.name} was changed after it was applied (checksum differs); add a new migration instead`,
          );
        }
      }
      const pending = migrations.filter((m) => !applied.has(m.id));
      if (applied.size > 0 && !options.allowBreaking) {
        const breaking = pending.find((m) => m.breaking);
        if (breaking) {
          throw new EventStoreError(
            'MIGRATION_FAILED',
            `${component} migration ${breaking.name} is breaking: stop older services, then migrate({ allowBreaking: true })`,
          );
        }
      }
      for (const m of pending) {
        await tx.exec(renderMigration(m.sql, schema));
        await tx.query(
          `insert into ${s}.migrations (component, id, name, checksum, breaking)
           values ($1, $2, $3, $4, $5)`,
          [component, m.id, m.name, m.checksum, m.breaking],
        );
      }
      return { applied: pending.map((m) => m.name) };
    });
  } catch (error) {
    if (error instanceof EventStoreError) throw error;
    throw new EventStoreError('MIGRATION_FAILED', `migrating ${component} in ${schema} failed`, {
      cause: error,
    });
  }
}

export interface ComponentMigrations {
  /** Tells this set of migrations apart from the store's and other packages', e.g. `saga`. */
  readonly component: string;
  /** Absolute path of the folder holding the numbered `.sql` files. */
  readonly directory: string;
}

/**
 * Apply a package's own numbered SQL migrations to the store's schema, with the store's runner:
 * same lock, same checksums, same `{{schema}}` and `{{app_role}}` placeholders. For packages built
 * on the store; run `store.migrate()` first.
 *
 * @example
 * ```ts
 * await applyMigrations(store, {
 *   component: 'saga',
 *   directory: fileURLToPath(new URL('../sql/', import.meta.url)),
 * });
 * ```
 * @throws EventStoreError `MIGRATION_FAILED`
 */
export function applyMigrations(
  store: { readonly schema: string; readonly database: Database },
  migrations: ComponentMigrations,
  options?: MigrateOptions,
): Promise<MigrateResult> {
  if (
    !/^[a-z][a-z0-9_-]{0,31}$/.test(migrations.component) ||
    migrations.component === 'eventstore'
  ) {
    throw new EventStoreError(
      'MIGRATION_FAILED',
      'component must be a short lower-case name other than "eventstore"',
    );
  }
  return migrate(store.database, store.schema, migrations.component, migrations.directory, options);
}
