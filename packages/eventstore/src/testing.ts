/**
 * Test helpers for applications built on the store: a real store in a throwaway schema (PGlite
 * in-process, or PostgreSQL), and given/when/then specifications for decisions.
 *
 * @example
 * ```ts
 * import { createTestStore, given } from '@evident/eventstore/testing';
 *
 * await using test = await createTestStore(); // PGlite, in-process
 * await test.store.append(claim, [submitted], { expectedVersion: 'no_stream' });
 *
 * given([submitted], claimRules)
 *   .when((state) => adjudicate(state, { paid: 140 }))
 *   .then([{ type: 'ClaimAdjudicated', data: { outcome: 'paid', paid: 140 } }]);
 * ```
 */
import { randomBytes } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import { type Envelope, EvidentError, isEvidentError } from '@evident/envelope';
import pg from 'pg';
import { encodeCheckpoint } from './checkpoint.js';
import { createEventStore, type EventStore, type EventStoreOptions } from './eventStore.js';
import type { RecordedEvent } from './recordedEvent.js';

export interface TestStore extends AsyncDisposable {
  readonly store: EventStore;
  /** Close the store and remove its schema (and, on PostgreSQL, the roles its migrations made). */
  cleanup(): Promise<void>;
}

export type TestStoreOptions = Omit<
  EventStoreOptions,
  'pool' | 'connectionString' | 'pglite' | 'schema'
> & {
  /** Use PostgreSQL at this URL (with 4 connections unless `poolSize` says); without it, an in-memory PGlite. */
  readonly connectionString?: string;
};

/**
 * A migrated store in a fresh schema, removed again by `cleanup()` (or `await using`).
 * Without `connectionString` it runs on an in-memory PGlite (`@electric-sql/pglite` must be
 * installed).
 */
export async function createTestStore(options: TestStoreOptions = {}): Promise<TestStore> {
  const { connectionString, ...rest } = options;
  const schema = `test_${randomBytes(5).toString('hex')}`;
  let cleanup: () => Promise<void>;
  let store: EventStore;
  if (connectionString) {
    store = createEventStore({ poolSize: 4, ...rest, connectionString, schema });
    cleanup = async () => {
      await store.close();
      const client = new pg.Client({ connectionString });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${schema}" cascade`);
        for (const role of [`${schema}_app`, `${schema}_auditor`]) {
          const found = await client.query('select 1 from pg_roles where rolname = $1', [role]);
          if (found.rowCount) {
            await client.query(`drop owned by "${role}"`);
            await client.query(`drop role "${role}"`);
          }
        }
      } finally {
        await client.end();
      }
    };
  } else {
    const { PGlite } = (await import('@electric-sql/pglite')) as { PGlite: new () => PGlite };
    const db = new PGlite();
    store = createEventStore({ ...rest, pglite: db, schema });
    cleanup = async () => {
      await store.close();
      await db.close();
    };
  }
  await store.migrate();
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    await cleanup();
  };
  return { store, cleanup: once, [Symbol.asyncDispose]: once };
}

/** An expected event: its type, and the data fields that matter (a subset is enough). */
export interface ExpectedEvent {
  readonly type: string;
  readonly data?: unknown;
}

export interface DecisionRules<State> {
  readonly initialState: () => State;
  readonly evolve: (state: State, event: RecordedEvent) => State;
}

/** The assertion failed: what was expected, what was decided (types and data, never shown in production logs). */
export class SpecificationError extends EvidentError<'SPECIFICATION_FAILED'> {}

function matches(actual: unknown, expected: unknown): boolean {
  if (expected === undefined) return true;
  if (typeof expected !== 'object' || expected === null) return Object.is(actual, expected);
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((e, i) => matches(actual[i], e))
    );
  }
  if (typeof actual !== 'object' || actual === null) return false;
  return Object.entries(expected).every(([k, v]) =>
    matches((actual as Record<string, unknown>)[k], v),
  );
}

function asRecorded(events: readonly Envelope[]): RecordedEvent[] {
  return events.map((e, i) => ({
    ...e,
    stream: { type: 'test', id: 'given' },
    streamVersion: i + 1,
    globalPosition: i + 1,
    checkpoint: encodeCheckpoint(1n, BigInt(i + 1)),
    recordedAt: e.occurredAt,
  }));
}

/**
 * Specify a decision without a database: given these past events, when `decide` runs on the
 * state they fold into, then it returns these events (or throws an error with this code).
 */
export function given<State>(events: readonly Envelope[], rules: DecisionRules<State>) {
  const state = asRecorded(events).reduce(rules.evolve, rules.initialState());
  return {
    /** The state the given events fold into. */
    state,
    when(decide: (state: State) => readonly Envelope[] | Promise<readonly Envelope[]>) {
      const run = async () => decide(state);
      return {
        // biome-ignore lint/suspicious/noThenProperty: given/when/then reads as the specification it is; do not await the object itself.
        async then(expected: readonly ExpectedEvent[]): Promise<readonly Envelope[]> {
          const decided = await run();
          const ok =
            decided.length === expected.length &&
            expected.every(
              (e, i) => decided[i]!.type === e.type && matches(decided[i]!.data, e.data),
            );
          if (!ok) {
            throw new SpecificationError(
              'SPECIFICATION_FAILED',
              `expected ${JSON.stringify(expected)} but decide returned ${JSON.stringify(
                decided.map((e) => ({ type: e.type, data: e.data })),
              )}`,
            );
          }
          return decided;
        },
        async thenThrows(code: string): Promise<void> {
          let error: unknown;
          try {
            await run();
          } catch (caught) {
            error = caught;
          }
          if (!isEvidentError(error, code) && (error as { code?: unknown })?.code !== code) {
            throw new SpecificationError(
              'SPECIFICATION_FAILED',
              error === undefined
                ? `expected an error with code ${code} but decide returned normally`
                : `expected an error with code ${code} but got ${String((error as { code?: unknown }).code ?? (error as Error).name)}`,
            );
          }
        },
      };
    },
  };
}
