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
import {
  type Envelope,
  EvidentError,
  InvalidArgumentError,
  isEvidentError,
} from '@evident/envelope';
import pg from 'pg';
import { encodeCheckpoint } from './checkpoint.js';
import { createEventStore, type EventStore, type EventStoreOptions } from './eventStore.js';
import { applicationRole, auditorRole } from './migrations.js';
import type { RecordedEvent } from './recordedEvent.js';

export interface TestStore extends AsyncDisposable {
  readonly store: EventStore;
  /**
   * The same schema, connected as a service or an auditor really connects: through a new login
   * role granted the application role (INSERT and SELECT only; row-level security applies, which
   * the owner's superuser connection bypasses) or the auditor role (reads every tenant). Each call
   * makes a login of its own; `cleanup()` closes these stores and drops their logins.
   *
   * @example
   * ```ts
   * const service = await test.connectAs('application', { tenant: 'practice-42' });
   * ```
   * @throws InvalidArgumentError on PGlite, which has one session and no logins.
   */
  connectAs(
    role: 'application' | 'auditor',
    options?: Omit<TestStoreOptions, 'connectionString'>,
  ): Promise<EventStore>;
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

/** Run `work` on a connection of its own to `url`. */
async function withClient(url: string, work: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}

/**
 * A migrated store in a fresh schema, removed again by `cleanup()` (or `await using`).
 * Without `connectionString` it runs on an in-memory PGlite (`@electric-sql/pglite` must be
 * installed).
 */
export async function createTestStore(options: TestStoreOptions = {}): Promise<TestStore> {
  const { connectionString, ...rest } = options;
  const schema = `test_${randomBytes(5).toString('hex')}`;
  // Stores connected through connectAs, and their logins: closed and dropped first at cleanup.
  const logins: { readonly role: string; readonly store: EventStore }[] = [];
  let cleanup: () => Promise<void>;
  let store: EventStore;
  if (connectionString) {
    store = createEventStore({ poolSize: 4, ...rest, connectionString, schema });
    cleanup = async () => {
      for (const login of logins) await login.store.close();
      await store.close();
      await withClient(connectionString, async (client) => {
        for (const { role } of logins) await client.query(`drop role if exists "${role}"`);
        await client.query(`drop schema if exists "${schema}" cascade`);
        for (const role of [applicationRole(schema), auditorRole(schema)]) {
          const found = await client.query('select 1 from pg_roles where rolname = $1', [role]);
          if (found.rowCount) {
            await client.query(`drop owned by "${role}"`);
            await client.query(`drop role "${role}"`);
          }
        }
      });
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
  return {
    store,
    async connectAs(role, loginOptions = {}) {
      if (!connectionString) {
        throw new InvalidArgumentError('connectAs needs PostgreSQL: PGlite has one session');
      }
      if (role !== 'application' && role !== 'auditor') {
        throw new InvalidArgumentError("role must be 'application' or 'auditor'");
      }
      if (done) throw new InvalidArgumentError('the test store has been cleaned up');
      const login = `${schema}_login${logins.length + 1}`;
      const group = role === 'application' ? applicationRole(schema) : auditorRole(schema);
      // A password of its own, so it logs in wherever the server asks for one (not only on trust).
      const password = randomBytes(16).toString('hex');
      await withClient(connectionString, async (client) => {
        await client.query(
          `create role "${login}" login password '${password}' in role "${group}"`,
        );
      });
      const url = new URL(connectionString);
      url.username = login;
      url.password = password;
      const connected = createEventStore({
        poolSize: 4,
        ...loginOptions,
        connectionString: url.toString(),
        schema,
      });
      logins.push({ role: login, store: connected });
      return connected;
    },
    cleanup: once,
    [Symbol.asyncDispose]: once,
  };
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
