/**
 * Stores for the tests, each in a fresh schema with this package's tables (and the state
 * machines', for transition-checked compensations), and how to remove every trace of them: the
 * event store's `createTestStore`, as an application's tests would use it.
 */
import { randomBytes } from 'node:crypto';
import { dropSchema } from '@evident/devkit/postgres';
import type { EventStore } from '@evident/eventstore';
import { createTestStore, type TestStore } from '@evident/eventstore/testing';
import { migrateStateMachines } from '@evident/statemachines';
import { migrateSagas, type SagaEventData } from '../src/index.js';

export interface StoreFixture {
  readonly store: EventStore;
  readonly kind: 'pg' | 'pglite';
  readonly cleanup: () => Promise<void>;
  /** The same schema through a login in the application or auditor role (PostgreSQL only). */
  readonly connectAs: TestStore['connectAs'];
}

export type StoreFactory = (options?: { poolSize?: number }) => Promise<StoreFixture>;

/** Options of the event store every store of a factory is made with (e.g. group commit on). */
export type StoreDefaults = Pick<Parameters<typeof createTestStore>[0] & {}, 'groupCommit'>;

export const uniqueSchema = (prefix = 'sg') => `${prefix}_${randomBytes(5).toString('hex')}`;

/** Drop a schema and the roles its migrations created. */
export { dropSchema };

export function postgresFactory(url: string, defaults: StoreDefaults = {}): StoreFactory {
  return (options = {}) =>
    migrated(
      createTestStore({ ...defaults, connectionString: url, poolSize: options.poolSize ?? 6 }),
      'pg',
    );
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
  await migrateSagas(store);
  return { store, kind, cleanup, connectAs };
}

export const operator = { id: 'u-42', role: 'operations-lead' } as const;

/** A fresh instance id. */
export const sagaId = (prefix = 'onb') => `${prefix}-${randomBytes(6).toString('hex')}`;

/** An onboarding input with synthetic ids. */
export const onboardingInput = (patientId = `p-${randomBytes(4).toString('hex')}`) => ({
  patientId,
  practiceId: 'practice-9',
  payerId: 'delta-dental-ca',
  memberId: `M${randomBytes(4).toString('hex')}`,
});

/** Wait until `check` passes or `ms` elapse. */
export async function eventually<T>(check: () => Promise<T> | T, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/**
 * Every step start on a saga stream, in order: `StepStarted` events, and the starts carried by a
 * `SagaStarted` (the first step's, when the starting process runs the instance) or a
 * `StepSucceeded` (the next step's) in their `next`.
 */
export function stepStarts(
  events: readonly { readonly type: string; readonly data: unknown }[],
): SagaEventData['StepStarted'][] {
  return events.flatMap((e) =>
    e.type === 'StepStarted'
      ? [e.data as SagaEventData['StepStarted']]
      : e.type === 'SagaStarted' || e.type === 'StepSucceeded'
        ? [...((e.data as { next?: SagaEventData['StepStarted'][] }).next ?? [])]
        : [],
  );
}
