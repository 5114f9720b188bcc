/**
 * Stores for the tests, each in a fresh schema with this package's tables, and how to remove every
 * trace of them. (A few lines copied from the event store's fixtures, so the packages stay
 * independent.)
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { dropSchema } from '@evident/devkit/postgres';
import { createEventStore, type EventStore } from '@evident/eventstore';
import { migrateStateMachines } from '../src/index.js';

export interface StoreFixture {
  readonly store: EventStore;
  readonly kind: 'pg' | 'pglite';
  readonly cleanup: () => Promise<void>;
}

export type StoreFactory = () => Promise<StoreFixture>;

export const uniqueSchema = (prefix = 'sm') => `${prefix}_${randomBytes(5).toString('hex')}`;

/** Drop a schema and the roles its migrations created. */
export { dropSchema };

export function postgresFactory(url: string): StoreFactory {
  return async () => {
    const schema = uniqueSchema();
    const store = createEventStore({ connectionString: url, schema, poolSize: 8 });
    await store.migrate();
    await migrateStateMachines(store);
    return {
      store,
      kind: 'pg',
      cleanup: async () => {
        await store.close();
        await dropSchema(url, schema);
      },
    };
  };
}

export function pgliteFactory(): StoreFactory {
  return async () => {
    const db = new PGlite();
    const store = createEventStore({ pglite: db, schema: uniqueSchema() });
    await store.migrate();
    await migrateStateMachines(store);
    return {
      store,
      kind: 'pglite',
      cleanup: async () => {
        await store.close();
        await db.close();
      },
    };
  };
}

export const clerk = { id: 'u-17', role: 'billing-clerk' } as const;

/** A fresh entity id. */
export const entity = (prefix = 'e') => `${prefix}-${randomBytes(6).toString('hex')}`;

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/** Wait until `check` passes or `ms` elapse. */
export async function eventually<T>(check: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
