import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { createEnvelope, type Envelope } from '@evident/envelope';
import pg from 'pg';
import { createEventStore, type EventStore, type EventStoreOptions } from '../src/index.js';

/** A store in a fresh schema, and how to remove every trace of it. */
export interface StoreFixture {
  readonly store: EventStore;
  readonly cleanup: () => Promise<void>;
}

export type StoreFactory = (
  options?: Omit<EventStoreOptions, 'pool' | 'connectionString' | 'pglite' | 'schema'>,
) => Promise<StoreFixture>;

export const uniqueSchema = (prefix = 't') => `${prefix}_${randomBytes(5).toString('hex')}`;

/** Drop a schema and the application role its migrations created. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
    const role = `${schema}_app`;
    const exists = await client.query('select 1 from pg_roles where rolname = $1', [role]);
    if (exists.rowCount) {
      await client.query(`drop owned by "${role}"`);
      await client.query(`drop role "${role}"`);
    }
  } finally {
    await client.end();
  }
}

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
