import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { dropSchema } from '@evident/devkit/postgres';
import { createEnvelope, type Envelope } from '@evident/envelope';
import {
  type Checkpoint,
  createEventStore,
  type EventStore,
  type EventStoreOptions,
} from '../src/index.js';

/** A store in a fresh schema, and how to remove every trace of it. */
export interface StoreFixture {
  readonly store: EventStore;
  readonly cleanup: () => Promise<void>;
}

export type StoreFactory = (
  options?: Omit<EventStoreOptions, 'pool' | 'connectionString' | 'pglite' | 'schema'>,
) => Promise<StoreFixture>;

export const uniqueSchema = (prefix = 't') => `${prefix}_${randomBytes(5).toString('hex')}`;

/** Drop a schema and the roles its migrations created. */
export { dropSchema };

export function postgresFactory(url: string): StoreFactory {
  return async (options = {}) => {
    const schema = uniqueSchema();
    const store = createEventStore({ ...options, connectionString: url, schema, poolSize: 8 });
    await store.migrate();
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dropSchema(url, schema);
      },
    };
  };
}

/** The same factory with `defaults` under every store's own options (e.g. group commit on). */
export const withDefaults =
  (factory: StoreFactory, defaults: Parameters<StoreFactory>[0]): StoreFactory =>
  (options = {}) =>
    factory({ ...defaults, ...options });

export function pgliteFactory(): StoreFactory {
  return async (options = {}) => {
    const db = new PGlite();
    const store = createEventStore({ ...options, pglite: db, schema: uniqueSchema() });
    await store.migrate();
    return {
      store,
      cleanup: async () => {
        await store.close();
        await db.close();
      },
    };
  };
}

let counter = 0;

/** A valid envelope for tests; `data` defaults to a counter so events differ. */
export function event(
  type = 'ClaimSubmitted',
  overrides: Partial<Parameters<typeof createEnvelope>[0]> = {},
): Envelope {
  counter += 1;
  return createEnvelope({
    type,
    data: { n: counter },
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
    ...overrides,
  });
}

export const events = (count: number, type = 'ClaimSubmitted') =>
  Array.from({ length: count }, () => event(type));

export const stream = (type = 'claim') => ({ type, id: `c-${randomBytes(6).toString('hex')}` });

/**
 * Wait until the global log is readable through `checkpoint`. The log's horizon is the oldest
 * transaction still running anywhere on the server, so when other suites run beside this one, a
 * test's own committed append can take a few milliseconds to become readable. Tests that assert
 * exact log contents settle first instead of sleeping.
 */
export async function settled(store: EventStore, checkpoint: Checkpoint | null): Promise<void> {
  if (checkpoint === null) return;
  const deadline = Date.now() + 10_000;
  for (;;) {
    // Any page that ends past `checkpoint` (an event after it, or the horizon) proves it readable.
    const page = await store.readAll({ after: checkpoint, limit: 1 });
    if (page.checkpoint > checkpoint) return;
    if (Date.now() > deadline) throw new Error('the log did not reach the checkpoint in 10 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}
