/**
 * Stores for the tests, each in a fresh schema with this package's tables, and how to remove every
 * trace of them: the event store's `createTestStore`, as an application's tests would use it.
 */
import { randomBytes } from 'node:crypto';
import type { EventStore } from '@evident/eventstore';
import { createTestStore, type TestStore } from '@evident/eventstore/testing';
import { migrateStateMachines } from '../src/index.js';

export interface StoreFixture {
  readonly store: EventStore;
  readonly kind: 'pg' | 'pglite';
  readonly cleanup: () => Promise<void>;
  /** The same schema through a login in the application or auditor role (PostgreSQL only). */
  readonly connectAs: TestStore['connectAs'];
}

export type StoreFactory = () => Promise<StoreFixture>;

export function postgresFactory(url: string): StoreFactory {
  return () => migrated(createTestStore({ connectionString: url, poolSize: 8 }), 'pg');
}

export function pgliteFactory(): StoreFactory {
  return () => migrated(createTestStore(), 'pglite');
}

/** A store from the event store's own test helper, with this package's migrations applied. */
async function migrated(
  made: Promise<TestStore>,
  kind: StoreFixture['kind'],
): Promise<StoreFixture> {
  const { store, cleanup, connectAs } = await made;
  await migrateStateMachines(store);
  return { store, kind, cleanup, connectAs };
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
