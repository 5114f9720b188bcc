import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  applyMigrations,
  type EventStore,
  type MigrateOptions,
  type MigrateResult,
} from '@evident/eventstore';

// Works from src/ (tests, tsx) and from dist/ (published): sql/ sits beside both.
const directory = () => fileURLToPath(new URL('../sql/', import.meta.url));

/**
 * Create or upgrade the saga work table (and the trigger that keeps it in step with the saga
 * streams) in the store's schema. Safe to call from every process at start-up; run
 * `store.migrate()` first.
 *
 * @example
 * ```ts
 * const store = createEventStore({ connectionString: process.env.DATABASE_URL! });
 * await store.migrate();
 * await migrateSagas(store);
 * ```
 * @throws EventStoreError `MIGRATION_FAILED`
 */
export function migrateSagas(
  store: Pick<EventStore, 'schema' | 'database'>,
  options?: MigrateOptions,
): Promise<MigrateResult> {
  return applyMigrations(store, { component: 'saga', directory: directory() }, options);
}

/** Names of the migrations this version ships (what `migrations.name` holds once applied). */
export async function shippedMigrations(): Promise<string[]> {
  return (await readdir(directory()))
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => f.replace(/\.sql$/, ''));
}
