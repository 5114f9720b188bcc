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
 * Create or upgrade the tables durable machines need (action jobs, timers, and the trigger that
 * fills them) in the store's schema. Safe to call from every process at start-up; run
 * `store.migrate()` first.
 *
 * @example
 * ```ts
 * const store = createEventStore({ connectionString: process.env.DATABASE_URL! });
 * await store.migrate();
 * await migrateStateMachines(store);
 * ```
 * @throws EventStoreError `MIGRATION_FAILED`
 */
export function migrateStateMachines(
  store: Pick<EventStore, 'schema' | 'database'>,
  options?: MigrateOptions,
): Promise<MigrateResult> {
  return applyMigrations(store, { component: 'statemachines', directory: directory() }, options);
}
