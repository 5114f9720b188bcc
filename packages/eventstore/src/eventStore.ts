import type { PGlite } from '@electric-sql/pglite';
import {
  assertEnvelope,
  assertJson,
  type Envelope,
  envelopePatterns,
  InvalidArgumentError,
  type Logger,
} from '@evident/envelope';
import type pg from 'pg';
import {
  type AggregateOptions,
  createAggregates,
  type Decide,
  type HandleOptions,
  type HandleResult,
  type LoadedAggregate,
} from './aggregate.js';
import {
  type AppendMode,
  type AppendShape,
  appendGroupStatement,
  appendMode,
  appendModes,
  appendStatement,
  oneEventParameters,
  readsBaseFromLog,
} from './appendSql.js';
import {
  type Checkpoint,
  compareCheckpoints,
  decodeCheckpoint,
  encodeCheckpoint,
  startOfLog,
} from './checkpoint.js';
import {
  type Database,
  fromConnectionString,
  fromPGlite,
  fromPool,
  nonClosing,
  type Queryable,
  scopeToTenant,
} from './database.js';
import {
  ConcurrencyError,
  DuplicateEventError,
  EventStoreError,
  isConcurrencyError,
} from './errors.js';
import { type ExpectedVersion, expectedVersionCode } from './expectedVersion.js';
import {
  createGroupQueue,
  type GroupCommitOptions,
  type GroupMember,
  groupCommitSettings,
} from './groupCommit.js';
import { type AppendedRow, createInlineProjections } from './inlineProjections.js';
import {
  loadMigrations,
  type MigrateOptions,
  type MigrateResult,
  migrate,
  storeMigrations,
} from './migrations.js';
import { createNotifier } from './notifier.js';
import { createPhiCodec, type PhiOptions } from './phi.js';
import type { Projection } from './projection.js';
import {
  type EventRow,
  eventColumns,
  isoFromEpochMs,
  type RecordedEvent,
  toRecordedEvent,
} from './recordedEvent.js';
import { statementName } from './statementName.js';
import {
  assertIdentifier,
  assertStreamId,
  quoteIdentifier,
  type StreamId,
  streamTypePattern,
} from './streamId.js';
import { createSubscriptions, type SubscribeOptions, type Subscription } from './subscription.js';
import { metricsNow, SpanKind, traced, tracedRead } from './telemetry.js';

/** Where the store keeps its tables: one of a pool, a connection string or a PGlite instance. */
export type EventStoreConnection =
  | { readonly pool: pg.Pool; readonly connectionString?: never; readonly pglite?: never }
  | { readonly connectionString: string; readonly pool?: never; readonly pglite?: never }
  | { readonly pglite: PGlite; readonly pool?: never; readonly connectionString?: never };

/** Size limits checked before anything is sent to the database. */
export interface EventStoreLimits {
  /** Largest event (envelope as JSON), in UTF-8 bytes. @defaultValue 1 MiB */
  readonly maxEventBytes?: number;
  /** Most events in one append. @defaultValue 1000 */
  readonly maxBatchEvents?: number;
  /** Largest append, in UTF-8 bytes of JSON. @defaultValue 16 MiB */
  readonly maxBatchBytes?: number;
  /** Deepest nesting of an event's data or metadata. @defaultValue 64 */
  readonly maxDepth?: number;
}

export const defaultEventStoreLimits: Required<EventStoreLimits> = {
  maxEventBytes: 1024 * 1024,
  maxBatchEvents: 1000,
  maxBatchBytes: 16 * 1024 * 1024,
  maxDepth: 64,
};

export type EventStoreOptions = EventStoreConnection & {
  /** PostgreSQL schema holding the store's tables. @defaultValue 'evident' */
  readonly schema?: string;
  readonly limits?: EventStoreLimits;
  /**
   * The tenant this store reads and writes as: every stream, event and snapshot it writes carries
   * it, and row-level security hides every other tenant's rows from it. See also `forTenant`.
   * @defaultValue none: the store sees only rows without a tenant
   */
  readonly tenant?: string;
  /**
   * Chain each stream's events with SHA-256 so tampering is detectable (`verifyStream`,
   * `verifyAll`). Turn off only for benchmarks or stores that need no tamper evidence.
   * @defaultValue true
   */
  readonly integrity?: boolean;
  /**
   * Where the store logs (pino-compatible): subscription leases, retries, parked events. Fields
   * only, never payloads. @defaultValue silent
   */
  readonly logger?: Logger;
  /**
   * Encrypt the payload fields marked `phi: true` in these schemas, per subject (patient) data
   * key wrapped by `keys`, and decrypt them on every read. A key provider that is down fails
   * PHI reads and writes closed. @defaultValue PHI fields are stored as given
   */
  readonly phi?: PhiOptions;
  /**
   * Group commit: appends to different streams that arrive while earlier ones are being written
   * go together as one statement — one round trip and one transaction — each keeping its own
   * expectation and outcome (a `ConcurrencyError` of one does not touch the others). It saves
   * the client and server work of a statement per append when many appends are in flight at
   * once (a saga worker's instances, a busy API); it costs an append the wait for a running
   * group when the groups' `statements` are busy. `true` takes the defaults.
   * @defaultValue off: every append is its own statement
   */
  readonly groupCommit?: boolean | GroupCommitOptions;
  /** Pool size when the store opens its own pool from a connection string. @defaultValue 16 */
  readonly poolSize?: number;
  /**
   * Projections applied inside the append's own transaction, for the few read models that must be
   * consistent with the log on every read. `migrate()` creates their tables and rebuilds a new
   * version while appends of its event types wait. Configure them in every process that appends.
   * @defaultValue none
   */
  readonly inlineProjections?: readonly Projection[];
  /**
   * Wake other processes' subscribers after appends with a throttled, payload-less NOTIFY sent
   * after commit: the first append after a quiet spell at once, then at most one per `throttleMs`.
   * @defaultValue { enabled: true, throttleMs: 50 }
   */
  readonly notify?: { readonly enabled?: boolean; readonly throttleMs?: number };
};

export interface StoreReadiness {
  readonly ready: boolean;
  readonly checks: {
    readonly database: { readonly ok: boolean; readonly error?: string };
    readonly migrations: { readonly ok: boolean; readonly pending: readonly string[] };
  };
}

export interface AppendOptions {
  /** What the stream must look like for the append to go ahead. */
  readonly expectedVersion: ExpectedVersion;
}

export interface AppendResult {
  /** The stream's version after the append: pass it as `expectedVersion` next time. */
  readonly nextExpectedVersion: number;
  /** Global position of the last event appended; null when nothing was appended. */
  readonly lastGlobalPosition: number | null;
  /** Log checkpoint of the last event appended; a subscription past it has seen the append. */
  readonly checkpoint: Checkpoint | null;
  /**
   * Database time of the append (ISO 8601, UTC): every event of one append has it as its
   * `recordedAt`. Null when nothing was appended.
   */
  readonly recordedAt: string | null;
}

export interface AppendRequest {
  readonly stream: StreamId;
  readonly events: readonly Envelope[];
  readonly expectedVersion: ExpectedVersion;
}

export interface ReadStreamOptions {
  /** First version to read (inclusive). @defaultValue 1 forwards, the last version backwards */
  readonly fromVersion?: number;
  /** Last version to read (inclusive). @defaultValue the last version forwards, 1 backwards */
  readonly toVersion?: number;
  /** @defaultValue 'forwards' */
  readonly direction?: 'forwards' | 'backwards';
  /** Most events to return. @defaultValue no limit */
  readonly limit?: number;
  /** Events fetched per query when iterating with `for await`. @defaultValue 500 */
  readonly pageSize?: number;
}

/**
 * The events of one stream: `await` it for an array, or iterate it with `for await` to page
 * through a long stream without holding it all in memory.
 */
export interface StreamRead extends PromiseLike<RecordedEvent[]>, AsyncIterable<RecordedEvent> {}

export interface ReadAllOptions {
  /** Read events after this checkpoint. @defaultValue the start of the log */
  readonly after?: Checkpoint;
  /** Most events to return. @defaultValue 1000 */
  readonly limit?: number;
  /** Only events of these types (the checkpoint still moves past the others). */
  readonly types?: readonly string[];
  /** Only events of streams of these types. */
  readonly streamTypes?: readonly string[];
}

export interface ReadAllResult {
  readonly events: RecordedEvent[];
  /** Pass as `after` to continue; it moves past filtered-out events too. */
  readonly checkpoint: Checkpoint;
  /** True when no committed event after `checkpoint` remains to read right now. */
  readonly caughtUp: boolean;
}

/** The append-only event store. Create it with {@link createEventStore}. */
export interface EventStore {
  /** The schema the store lives in. */
  readonly schema: string;
  /** Create or upgrade the store's tables. Safe to call from every process at start-up. */
  migrate(options?: MigrateOptions): Promise<MigrateResult>;
  append(
    stream: StreamId,
    events: readonly Envelope[],
    options: AppendOptions,
  ): Promise<AppendResult>;
  appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]>;
  readStream(stream: StreamId, options?: ReadStreamOptions): StreamRead;
  readAll(options?: ReadAllOptions): Promise<ReadAllResult>;
  readByCorrelation(
    correlationId: string,
    options?: { readonly limit?: number },
  ): Promise<RecordedEvent[]>;
  /** The stream's current version; 0 when it does not exist. */
  streamVersion(stream: StreamId): Promise<number>;
  /**
   * Fold a stream into state, starting from its latest usable snapshot.
   *
   * @example
   * ```ts
   * const { state, version } = await store.aggregate(claim, {
   *   initialState: () => ({ status: 'draft', lines: 0 }),
   *   evolve: (s, e) => (e.type === 'ServiceLineAdded' ? { ...s, lines: s.lines + 1 } : s),
   *   snapshot: { schemaVersion: 1, every: 50 },
   * });
   * ```
   */
  aggregate<State, Event extends RecordedEvent = RecordedEvent>(
    stream: StreamId,
    options: AggregateOptions<State, Event>,
  ): Promise<LoadedAggregate<State>>;
  /**
   * Load, decide, append with the loaded version; when another writer won the race, reload and
   * decide again (with backoff), up to `retries` times.
   *
   * @throws ConcurrencyError when every retry lost its race.
   */
  handle<State, Event extends RecordedEvent = RecordedEvent>(
    stream: StreamId,
    decide: Decide<State>,
    options: HandleOptions<State, Event>,
  ): Promise<HandleResult<State>>;
  /**
   * Follow the global log from a stored checkpoint: catch up, then live (woken by appends, polling
   * as a fallback). One instance per name is active; others stand by and take over when it dies.
   *
   * @example
   * ```ts
   * const sub = store.subscribe({
   *   name: 'claims-dashboard',
   *   filter: { streamTypes: ['claim'] },
   *   handler: async (event, { tx }) => {
   *     await tx.query('insert into claim_counts ... on conflict ... do update ...', [event.type]);
   *   },
   * });
   * ```
   */
  subscribe(options: SubscribeOptions): Subscription;
  /**
   * The same store, on the same connections, as `tenant`. Closing it does not close the
   * connections; close the store that opened them.
   *
   * @example
   * ```ts
   * const practice = store.forTenant('practice-9');
   * await practice.append(claim, [submitted], { expectedVersion: 'no_stream' });
   * ```
   */
  forTenant(tenant: string): EventStore;
  /**
   * For a service's readiness endpoint: the database answers and every migration this version of
   * the package ships has been applied.
   *
   * @example
   * ```ts
   * app.get('/ready', async (_, res) => {
   *   const { ready, checks } = await store.ready();
   *   res.status(ready ? 200 : 503).json(checks);
   * });
   * ```
   */
  ready(): Promise<StoreReadiness>;
  /** The tenant this store acts as, if any. */
  readonly tenant: string | undefined;
  /** Close the connections the store opened (a pool or PGlite passed in stays open). */
  close(): Promise<void>;
  /** The underlying database, for the packages built on the store (subscriptions, sagas). */
  readonly database: Database;
}

/** A batch checked and serialized, ready for one of the append statements. */
interface Encoded {
  readonly count: number;
  /** A batch of one travels as plain parameters. */
  readonly single?: {
    readonly envelope: Envelope;
    readonly data: string;
    readonly metadata: string;
  };
  /** A larger batch as one JSON array. */
  readonly json?: string;
}

function checkPositiveInteger(name: string, value: unknown): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1)) {
    throw new InvalidArgumentError(`${name} must be a positive integer`);
  }
}

function checkNames(name: string, value: readonly string[] | undefined, pattern: RegExp): void {
  if (value === undefined) return;
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.length > 100 ||
    value.some((v) => typeof v !== 'string' || v.length > 128 || !pattern.test(v))
  ) {
    throw new InvalidArgumentError(
      `${name} must be a non-empty array of at most 100 names matching ${pattern}`,
    );
  }
}

/**
 * Create an event store on PostgreSQL (node-postgres) or PGlite. Call `migrate()` once before use.
 *
 * @example
 * ```ts
 * const store = createEventStore({ connectionString: process.env.DATABASE_URL! });
 * await store.migrate();
 * await store.append({ type: 'claim', id: 'c-123' }, [submitted], { expectedVersion: 'no_stream' });
 * const events = await store.readStream({ type: 'claim', id: 'c-123' });
 * ```
 * @throws InvalidArgumentError when the schema name or limits are malformed.
 */
export function createEventStore(options: EventStoreOptions): EventStore {
  const raw: Database = options.pglite
    ? fromPGlite(options.pglite)
    : options.pool
      ? fromPool(options.pool, false)
      : typeof options.connectionString === 'string'
        ? fromConnectionString(options.connectionString, options.poolSize)
        : (() => {
            throw new InvalidArgumentError(
              'createEventStore needs one of pool, connectionString or pglite',
            );
          })();
  return createStoreOn(raw, options);
}

const tenantPattern = envelopePatterns.token;

function createStoreOn(raw: Database, options: EventStoreOptions): EventStore {
  const schema = assertIdentifier('schema', options.schema ?? 'evident');
  const limits = { ...defaultEventStoreLimits, ...options.limits };
  const tenant = options.tenant;
  if (
    tenant !== undefined &&
    (typeof tenant !== 'string' || tenant.length > 128 || !tenantPattern.test(tenant))
  ) {
    throw new InvalidArgumentError(`tenant must be 1-128 characters matching ${tenantPattern}`);
  }
  const integrity = options.integrity ?? true;
  const grouping = groupCommitSettings(options.groupCommit);
  // Everything but the append itself runs through `db`, which sets the tenant per transaction;
  // the append statement sets it on its own (see appendSql.ts).
  const db: Database = tenant === undefined ? raw : scopeToTenant(raw, tenant);
  const tenantParameter = tenant ?? '';
  const s = quoteIdentifier(schema);
  // Decrypt PHI fields for callers that configured a key provider; others read ciphertext.
  const open = (events: RecordedEvent[]) => (phi ? phi.open(events) : Promise.resolve(events));

  const sql = {
    streamVersion: `select version from ${s}.streams where stream_type = $1 and stream_id = $2`,
    readForwards: `select ${eventColumns} from ${s}.events
                   where stream_type = $1 and stream_id = $2 and stream_version between $3 and $4
                   order by stream_version asc limit $5`,
    readBackwards: `select ${eventColumns} from ${s}.events
                    where stream_type = $1 and stream_id = $2 and stream_version between $4 and $3
                    order by stream_version desc limit $5`,
    // Rows of transactions older than the oldest one still running are final: nothing can be
    // inserted among them any more. Reading only those, in (transaction, position) order, is what
    // keeps a reader from skipping a transaction that took an earlier position and commits late.
    // The page comes from log_page (sql/0007_log_page_walks_the_index.sql), which always walks
    // the log's index, however far behind the reader and however old the statistics; the
    // horizon applies after its limit, which gives the same page, since in this order every row
    // below the horizon comes before every row above it.
    readAll: `with horizon as (select pg_snapshot_xmin(pg_current_snapshot()) as xmin)
              select h.xmin::text as horizon, e.* from horizon as h
              left join lateral (
                select ${eventColumns}
                from ${s}.log_page($1::text::xid8, $2::bigint, $3::integer, $4::text[], $5::text[])
                  as ev
                where ev.transaction_id < h.xmin
              ) as e on true`,
    byCorrelation: `select ${eventColumns} from ${s}.events where correlation_id = $1
                    order by global_position limit $2`,
    byIds: `select event_id, stream_type, stream_id, stream_version, global_position,
                   transaction_id::text as transaction_id,
                   (extract(epoch from recorded_at) * 1000)::int8 as recorded_at
            from ${s}.events where event_id = any($1::uuid[])`,
  };
  const appendSql = Object.fromEntries(
    (['one', 'many'] as const).map((shape) => [
      shape,
      Object.fromEntries(
        appendModes.map((mode) => {
          const text = appendStatement(s, mode, shape, integrity, tenant !== undefined);
          return [mode, { text, name: statementName(text) }];
        }),
      ),
    ]),
  ) as Record<AppendShape, Record<AppendMode, { text: string; name: string }>>;
  // A batch with an expected version reads its chain's base from the log; when that read missed
  // an append committed while it waited, it is made again with the base from the stream row.
  const baseFromRowText = appendStatement(s, 'version', 'many', integrity, tenant !== undefined, {
    baseFromLog: false,
  });
  const baseFromRow = { text: baseFromRowText, name: statementName(baseFromRowText) };
  const names = Object.fromEntries(
    Object.entries(sql).map(([k, text]) => [k, statementName(text)]),
  ) as Record<keyof typeof sql, string>;

  /** Validate and encode a batch before anything is written. */
  function encode(events: readonly Envelope[]): Encoded {
    if (!Array.isArray(events)) {
      throw new InvalidArgumentError('events must be an array of envelopes');
    }
    if (events.length > limits.maxBatchEvents) {
      throw new EventStoreError(
        'BATCH_TOO_LARGE',
        `an append may hold at most ${limits.maxBatchEvents} events; got ${events.length}`,
      );
    }
    let total = 0;
    const docs: string[] = new Array(events.length);
    let single: Encoded['single'];
    for (let i = 0; i < events.length; i++) {
      const e = assertEnvelope(events[i]);
      if (e.tenantId !== undefined && e.tenantId !== tenant) {
        throw new InvalidArgumentError(
          tenant === undefined
            ? `event ${i} names a tenant but this store has none: create the store with { tenant } or use store.forTenant()`
            : `event ${i} names a different tenant than this store's`,
        );
      }
      assertJson(e.data, { maxDepth: limits.maxDepth });
      assertJson(e.metadata, { maxDepth: limits.maxDepth });
      const data = JSON.stringify(e.data);
      const metadata = JSON.stringify(e.metadata);
      // The envelope's own fields are bounded (a few hundred bytes); payload and metadata are not.
      const length = data.length + metadata.length + 1024;
      const bytes =
        length * 3 > limits.maxEventBytes
          ? Buffer.byteLength(data) + Buffer.byteLength(metadata) + 1024
          : length;
      if (bytes > limits.maxEventBytes) {
        throw new EventStoreError(
          'EVENT_TOO_LARGE',
          `event ${i} is about ${bytes} bytes; the limit is ${limits.maxEventBytes}`,
        );
      }
      total += bytes;
      if (total > limits.maxBatchBytes) {
        throw new EventStoreError(
          'BATCH_TOO_LARGE',
          `the append exceeds ${limits.maxBatchBytes} bytes`,
        );
      }
      if (events.length === 1) {
        single = { envelope: e, data, metadata };
      } else {
        docs[i] = JSON.stringify({
          id: e.id,
          type: e.type,
          schemaVersion: e.schemaVersion,
          occurredAt: e.occurredAt,
          correlationId: e.correlationId,
          causationId: e.causationId,
          source: e.source,
          actor: e.actor,
          tenantId: e.tenantId,
          // Spliced in as already-serialized JSON rather than stringified twice.
          data: 0,
          metadata: 0,
        }).replace(/"data":0,"metadata":0}$/, `"data":${data},"metadata":${metadata}}`);
      }
    }
    if (events.length > 1 && new Set(events.map((e) => e.id)).size !== events.length) {
      throw new InvalidArgumentError('an append may not contain the same event id twice');
    }
    return { count: events.length, single, json: single ? undefined : `[${docs.join(',')}]` };
  }

  async function appendEncoded(
    q: Queryable,
    stream: StreamId,
    encoded: Encoded,
    expectedVersion: ExpectedVersion,
    inlineEvents?: readonly Envelope[],
  ): Promise<AppendResult> {
    const shape: AppendShape = encoded.single ? 'one' : 'many';
    const statement = appendSql[shape][appendMode(expectedVersion)];
    let rows = await runAppend(q, statement, stream, encoded, expectedVersion);
    if (rows.length === 0) rows = await wroteNothing(q, stream, encoded, expectedVersion);
    if (inlineEvents) await inline.apply(q, stream, inlineEvents, rows);
    return appendResult(rows[rows.length - 1]!);
  }

  /** One append statement, with the database's refusals turned into the store's errors. */
  async function runAppend(
    q: Queryable,
    statement: { readonly text: string; readonly name: string },
    stream: StreamId,
    encoded: Encoded,
    expectedVersion: ExpectedVersion,
  ): Promise<AppendedRow[]> {
    try {
      return await q.query<AppendedRow>(
        statement.text,
        appendParameters(stream, encoded, expectedVersion),
        statement.name,
      );
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'EV409') throw new ConcurrencyError(stream, expectedVersion, 0);
      if (code === '42501' && /row-level security/.test(String((error as Error).message))) {
        throw new EventStoreError(
          'STREAM_NOT_ACCESSIBLE',
          `the ${stream.type} stream is not accessible to this store (another tenant's)`,
        );
      }
      throw error;
    }
  }

  /**
   * An append statement that wrote nothing (alone or as a member of a group): the expectation did
   * not hold, or — for a batch whose chain's base is read from the log — that read came before an
   * append that committed while the statement waited for the stream (see appendSql.ts). Then the
   * expectation did hold, and the append is made again with the base from the stream row.
   *
   * @returns the rows of that second statement
   * @throws ConcurrencyError with the stream's actual version otherwise
   */
  async function wroteNothing(
    q: Queryable,
    stream: StreamId,
    encoded: Encoded,
    expectedVersion: ExpectedVersion,
  ): Promise<AppendedRow[]> {
    // The unscoped connection runs outside any transaction: its follow-up reads go through the
    // tenant-scoped one. Inside a transaction, the transaction already has the tenant.
    const reader = q === raw ? db : q;
    const shape: AppendShape = encoded.single ? 'one' : 'many';
    const actual = await currentVersion(reader, stream);
    if (
      actual === expectedVersion &&
      readsBaseFromLog(appendMode(expectedVersion), shape, integrity)
    ) {
      const rows = await runAppend(q, baseFromRow, stream, encoded, expectedVersion);
      if (rows.length > 0) return rows;
      throw new ConcurrencyError(stream, expectedVersion, await currentVersion(reader, stream));
    }
    throw new ConcurrencyError(stream, expectedVersion, actual);
  }

  /** An append statement's parameters, in order (see appendSql.ts). */
  function appendParameters(
    stream: StreamId,
    encoded: Encoded,
    expectedVersion: ExpectedVersion,
  ): unknown[] {
    const params: unknown[] = encoded.single
      ? oneEventParameters(
          stream,
          encoded.single.envelope,
          encoded.single.data,
          encoded.single.metadata,
          tenantParameter,
        )
      : [stream.type, stream.id, encoded.count, encoded.json, tenantParameter];
    if (appendMode(expectedVersion) === 'version') params.push(expectedVersion);
    return params;
  }

  /** The result of an append from the row of its last event. */
  function appendResult(last: AppendedRow): AppendResult {
    const position = Number(last.global_position);
    return {
      nextExpectedVersion: Number(last.stream_version),
      lastGlobalPosition: position,
      checkpoint: encodeCheckpoint(last.transaction_id, position),
      recordedAt: isoFromEpochMs(last.recorded_at),
    };
  }

  /** An append waiting for its group (see `groupCommit`). */
  interface Waiting extends GroupMember {
    readonly stream: StreamId;
    readonly encoded: Encoded;
    readonly expectedVersion: ExpectedVersion;
    readonly settle: (outcome: Promise<AppendResult>) => void;
  }
  /**
   * An append of this many events goes alone even with group commit: its statement already
   * carries enough rows to pay for itself, and groups of such appends in the few group statements
   * used fewer of the server's backends than the appends would alone. Grouped beside alone, 16
   * writers, paired rounds: 4 events 1.13, 8 events 1.06–1.16, 10 events 0.92, 12 events 0.83,
   * 100 events 0.82.
   */
  const aloneFrom = 10;
  /** Group statements by kind and size, made when first needed (at most 8 × maxAppends). */
  const groupStatements = new Map<string, { text: string; name: string }>();
  const groupStatement = (mode: AppendMode, shape: AppendShape, size: number) => {
    const key = `${mode}/${shape}/${size}`;
    let statement = groupStatements.get(key);
    if (!statement) {
      const text = appendGroupStatement(s, mode, shape, size, integrity, tenant !== undefined);
      statement = { text, name: statementName(text) };
      groupStatements.set(key, statement);
    }
    return statement;
  };

  /** Write a group in one statement and settle each member with its own outcome. */
  async function appendGroup(group: Waiting[]): Promise<void> {
    const alone = (m: Waiting) => {
      const outcome = appendEncoded(raw, m.stream, m.encoded, m.expectedVersion);
      m.settle(outcome);
      return outcome.then(
        () => {},
        () => {},
      );
    };
    const size = group.length;
    if (size === 1) {
      metricsNow().appendGroupSize.record(1, { 'evident.outcome': 'ok' });
      return alone(group[0]!);
    }
    // One kind per group (see createGroupQueue): the first member's mode and shape are all's.
    const first = group[0]!;
    const statement = groupStatement(
      appendMode(first.expectedVersion),
      first.encoded.single ? 'one' : 'many',
      size,
    );
    const params: unknown[] = [];
    for (const m of group) params.push(...appendParameters(m.stream, m.encoded, m.expectedVersion));
    let rows: (AppendedRow & { member: number })[];
    try {
      rows = await raw.query(statement.text, params, statement.name);
    } catch {
      metricsNow().appendGroupSize.record(size, { 'evident.outcome': 'split' });
      // Nothing of the group was written. One by one, each member meets its own outcome (its
      // error, or success when another member's was the cause).
      await Promise.all(group.map(alone));
      return;
    }
    metricsNow().appendGroupSize.record(size, { 'evident.outcome': 'ok' });
    const last: (AppendedRow | undefined)[] = new Array(size);
    for (const row of rows) {
      const seen = last[row.member];
      if (!seen || Number(row.stream_version) > Number(seen.stream_version)) last[row.member] = row;
    }
    for (const [i, m] of group.entries()) {
      const row = last[i];
      if (row) {
        m.settle(Promise.resolve(appendResult(row)));
        continue;
      }
      m.settle(
        wroteNothing(raw, m.stream, m.encoded, m.expectedVersion).then((rows) =>
          appendResult(rows[rows.length - 1]!),
        ),
      );
    }
  }
  const enqueue = grouping
    ? createGroupQueue<Waiting>({ ...grouping, maxEvents: limits.maxBatchEvents }, appendGroup)
    : undefined;

  /** Append through the group queue when group commit is on, else as a statement of its own. */
  function appendOutsideTransaction(
    stream: StreamId,
    encoded: Encoded,
    expectedVersion: ExpectedVersion,
  ): Promise<AppendResult> {
    if (!enqueue || encoded.count >= aloneFrom) {
      return appendEncoded(raw, stream, encoded, expectedVersion);
    }
    return new Promise((resolve, reject) =>
      enqueue({
        streamKey: `${stream.type}\u0000${stream.id}`,
        kind: `${appendMode(expectedVersion)}/${encoded.single ? 'one' : 'many'}`,
        events: encoded.count,
        stream,
        encoded,
        expectedVersion,
        settle: (outcome) => outcome.then(resolve, reject),
      }),
    );
  }

  /**
   * After a refused append, decide whether it is a retry of one already stored (same ids, same
   * stream, contiguous, same order): then its original result is the answer.
   */
  async function originalResult(
    stream: StreamId,
    events: readonly Envelope[],
  ): Promise<AppendResult | 'none' | 'different'> {
    const ids = events.map((e) => e.id);
    const rows = await db.query<{
      event_id: string;
      stream_type: string;
      stream_id: string;
      stream_version: string | number;
      global_position: string | number;
      transaction_id: string;
      recorded_at: string | number;
    }>(sql.byIds, [ids], names.byIds);
    if (rows.length === 0) return 'none';
    if (rows.length !== ids.length) return 'different';
    const byId = new Map(rows.map((r) => [r.event_id, r]));
    const first = byId.get(ids[0]!)!;
    const firstVersion = Number(first.stream_version);
    let last = first;
    for (let i = 0; i < ids.length; i++) {
      const r = byId.get(ids[i]!);
      if (
        !r ||
        r.stream_type !== stream.type ||
        r.stream_id !== stream.id ||
        Number(r.stream_version) !== firstVersion + i
      ) {
        return 'different';
      }
      last = r;
    }
    return {
      nextExpectedVersion: Number(last.stream_version),
      lastGlobalPosition: Number(last.global_position),
      checkpoint: encodeCheckpoint(last.transaction_id, Number(last.global_position)),
      recordedAt: isoFromEpochMs(last.recorded_at),
    };
  }

  const isDuplicateId = (error: unknown) =>
    (error as { code?: string; constraint?: string }).code === '23505' &&
    /event_id/.test(
      String(
        (error as { constraint?: string; message?: string }).constraint ??
          (error as { message?: string }).message,
      ),
    );

  async function resolveRefusal(error: unknown, stream: StreamId, events: readonly Envelope[]) {
    if (!(error instanceof ConcurrencyError) && !isDuplicateId(error)) throw error;
    const original = await originalResult(stream, events);
    if (typeof original === 'object') return original;
    if (original === 'different' || isDuplicateId(error)) {
      const ids = events.map((e) => e.id);
      throw new DuplicateEventError(ids);
    }
    throw error;
  }

  async function currentVersion(q: Queryable, stream: StreamId): Promise<number> {
    const rows = await q.query<{ version: string | number }>(
      sql.streamVersion,
      [stream.type, stream.id],
      names.streamVersion,
    );
    return rows[0] ? Number(rows[0].version) : 0;
  }

  async function emptyAppend(
    stream: StreamId,
    expectedVersion: ExpectedVersion,
  ): Promise<AppendResult> {
    const code = expectedVersionCode(expectedVersion);
    const actual = await currentVersion(db, stream);
    const ok =
      code === -1 ||
      (code === -3 && actual > 0) ||
      ((code === -2 || code === 0) && actual === 0) ||
      (code > 0 && actual === code);
    if (!ok) throw new ConcurrencyError(stream, expectedVersion, actual);
    return {
      nextExpectedVersion: actual,
      lastGlobalPosition: null,
      checkpoint: null,
      recordedAt: null,
    };
  }

  async function appendUntraced(
    stream: StreamId,
    events: readonly Envelope[],
    appendOptions: AppendOptions,
  ): Promise<AppendResult> {
    assertStreamId(stream);
    if (!appendOptions || typeof appendOptions !== 'object') {
      throw new InvalidArgumentError('append needs options { expectedVersion }');
    }
    const { expectedVersion } = appendOptions;
    expectedVersionCode(expectedVersion);
    const encoded = encode(phi ? await phi.seal(stream, events, expectedVersion) : events);
    if (encoded.count === 0) return emptyAppend(stream, expectedVersion);
    try {
      const result = inline.handles(events)
        ? await db.transaction(async (tx) => {
            await inline.lock(tx);
            return appendEncoded(tx, stream, encoded, expectedVersion, events);
          })
        : await appendOutsideTransaction(stream, encoded, expectedVersion);
      notifier.ring();
      return result;
    } catch (error) {
      return resolveRefusal(error, stream, events);
    }
  }

  // Reads, wrapped in spans by the store's methods below.
  async function readAll(readOptions: ReadAllOptions = {}): Promise<ReadAllResult> {
    const after = readOptions.after ?? startOfLog;
    const { transactionId, position } = decodeCheckpoint(after);
    const limit = readOptions.limit ?? 1000;
    checkPositiveInteger('limit', limit);
    checkNames('types', readOptions.types, envelopePatterns.type);
    checkNames('streamTypes', readOptions.streamTypes, streamTypePattern);
    const rows = await db.query<EventRow & { horizon: string }>(
      sql.readAll,
      [transactionId, position, limit, readOptions.types ?? null, readOptions.streamTypes ?? null],
      names.readAll,
    );
    const horizon = rows[0]!.horizon;
    const events = rows[0]!.event_id === null ? [] : await open(rows.map(toRecordedEvent));
    if (events.length === limit) {
      return { events, checkpoint: events[events.length - 1]!.checkpoint, caughtUp: false };
    }
    // Fewer than asked: everything below the horizon has been seen, filtered or not, so the
    // checkpoint may move up to it.
    const horizonCheckpoint = encodeCheckpoint(horizon, 0);
    const last = events.length > 0 ? events[events.length - 1]!.checkpoint : after;
    return {
      events,
      checkpoint: compareCheckpoints(horizonCheckpoint, last) > 0 ? horizonCheckpoint : last,
      caughtUp: true,
    };
  }

  async function readByCorrelation(
    correlationId: string,
    readOptions: { readonly limit?: number } = {},
  ): Promise<RecordedEvent[]> {
    if (
      typeof correlationId !== 'string' ||
      correlationId.length === 0 ||
      correlationId.length > 128
    ) {
      throw new InvalidArgumentError('correlationId must be a string of 1-128 characters');
    }
    checkPositiveInteger('limit', readOptions.limit);
    const rows = await db.query<EventRow>(
      sql.byCorrelation,
      [correlationId, readOptions.limit ?? null],
      names.byCorrelation,
    );
    return open(rows.map(toRecordedEvent));
  }

  const store: EventStore = {
    schema,
    tenant,
    database: db,

    async migrate(migrateOptions) {
      const result = await migrate(raw, schema, 'eventstore', storeMigrations(), migrateOptions);
      await inline.prepare(db);
      return result;
    },

    append(stream, events, appendOptions) {
      const started = performance.now();
      const attributes = {
        'db.system.name': 'postgresql',
        'evident.stream.type': stream?.type,
        'evident.events': Array.isArray(events) ? events.length : 0,
        'evident.expected_version': String(
          typeof appendOptions?.expectedVersion === 'number'
            ? 'number'
            : appendOptions?.expectedVersion,
        ),
        ...(events?.[0]?.correlationId
          ? { 'evident.correlation_id': events[0].correlationId }
          : {}),
      };
      return traced('evident.append', SpanKind.PRODUCER, attributes, async (span) => {
        let outcome = 'error';
        try {
          const result = await appendUntraced(stream, events, appendOptions);
          outcome = 'ok';
          span.setAttribute('evident.stream.version', result.nextExpectedVersion);
          metricsNow().appendedEvents.add(events.length, { 'evident.stream.type': stream.type });
          return result;
        } catch (error) {
          outcome = isConcurrencyError(error) ? 'conflict' : 'error';
          throw error;
        } finally {
          metricsNow().appendDuration.record(performance.now() - started, {
            'evident.stream.type': String(stream?.type),
            'evident.outcome': outcome,
          });
        }
      });
    },

    async appendMany(requests) {
      if (!Array.isArray(requests)) throw new InvalidArgumentError('appendMany takes an array');
      const prepared = await Promise.all(
        requests.map(async (r, index) => {
          assertStreamId(r.stream);
          expectedVersionCode(r.expectedVersion);
          const sealed = phi ? await phi.seal(r.stream, r.events, r.expectedVersion) : r.events;
          return { ...r, index, encoded: encode(sealed) };
        }),
      );
      const keys = new Set(prepared.map((r) => `${r.stream.type}\u0000${r.stream.id}`));
      if (keys.size !== prepared.length) {
        throw new InvalidArgumentError('appendMany may name each stream once');
      }
      // A fixed lock order across callers: two appendMany calls over the same streams cannot
      // deadlock.
      const ordered = [...prepared].sort((a, b) =>
        a.stream.type === b.stream.type
          ? a.stream.id < b.stream.id
            ? -1
            : 1
          : a.stream.type < b.stream.type
            ? -1
            : 1,
      );
      try {
        const results = await db.transaction(async (tx) => {
          const withInline = prepared.some((r) => inline.handles(r.events));
          if (withInline) await inline.lock(tx);
          const out: AppendResult[] = new Array(prepared.length);
          for (const r of ordered) {
            out[r.index] =
              r.events.length === 0
                ? {
                    nextExpectedVersion: await currentVersion(tx, r.stream),
                    lastGlobalPosition: null,
                    checkpoint: null,
                    recordedAt: null,
                  }
                : await appendEncoded(
                    tx,
                    r.stream,
                    r.encoded,
                    r.expectedVersion,
                    withInline ? r.events : undefined,
                  );
          }
          return out;
        });
        notifier.ring();
        return results;
      } catch (error) {
        // A retried appendMany whose events are all stored returns the original results.
        if (!(error instanceof ConcurrencyError) && !isDuplicateId(error)) throw error;
        const originals: AppendResult[] = [];
        for (const r of prepared) {
          if (r.events.length === 0) {
            originals.push({
              nextExpectedVersion: await currentVersion(db, r.stream),
              lastGlobalPosition: null,
              checkpoint: null,
              recordedAt: null,
            });
            continue;
          }
          const original = await originalResult(r.stream, r.events);
          if (original === 'none') throw error;
          if (original === 'different')
            throw new DuplicateEventError(r.events.map((e: Envelope) => e.id));
          originals.push(original);
        }
        return originals;
      }
    },

    readStream(stream, readOptions = {}) {
      assertStreamId(stream);
      const { fromVersion, toVersion, limit } = readOptions;
      const direction = readOptions.direction ?? 'forwards';
      if (direction !== 'forwards' && direction !== 'backwards') {
        throw new InvalidArgumentError('direction must be "forwards" or "backwards"');
      }
      checkPositiveInteger('fromVersion', fromVersion);
      checkPositiveInteger('toVersion', toVersion);
      checkPositiveInteger('limit', limit);
      checkPositiveInteger('pageSize', readOptions.pageSize);
      const forwards = direction === 'forwards';
      const max = Number.MAX_SAFE_INTEGER;
      const from = fromVersion ?? (forwards ? 1 : max);
      const to = toVersion ?? (forwards ? max : 1);
      const text = forwards ? sql.readForwards : sql.readBackwards;
      const name = forwards ? names.readForwards : names.readBackwards;
      const page = (start: number, count: number | null) =>
        tracedRead(
          'evident.read_stream',
          { 'evident.stream.type': stream.type, 'evident.direction': direction },
          async () =>
            open(
              (
                await db.query<EventRow>(text, [stream.type, stream.id, start, to, count], name)
              ).map(toRecordedEvent),
            ),
        );

      return {
        // biome-ignore lint/suspicious/noThenProperty: a StreamRead is deliberately awaitable.
        then(onFulfilled, onRejected) {
          return page(from, limit ?? null).then(onFulfilled, onRejected);
        },
        async *[Symbol.asyncIterator]() {
          const size = readOptions.pageSize ?? 500;
          let next = from;
          let remaining = limit ?? Number.POSITIVE_INFINITY;
          while (remaining > 0) {
            const events = await page(next, Math.min(size, remaining));
            for (const e of events) yield e;
            if (events.length < Math.min(size, remaining)) return;
            remaining -= events.length;
            next = events[events.length - 1]!.streamVersion + (forwards ? 1 : -1);
            if (next < 1) return;
          }
        },
      };
    },

    readAll(readOptions = {}) {
      return tracedRead('evident.read_all', { 'evident.limit': readOptions.limit ?? 1000 }, () =>
        readAll(readOptions),
      );
    },

    readByCorrelation(correlationId, readOptions = {}) {
      return tracedRead(
        'evident.read_by_correlation',
        typeof correlationId === 'string' ? { 'evident.correlation_id': correlationId } : {},
        () => readByCorrelation(correlationId, readOptions),
      );
    },

    async streamVersion(stream) {
      assertStreamId(stream);
      return currentVersion(db, stream);
    },

    aggregate: (stream, aggregateOptions) => aggregates.aggregate(stream, aggregateOptions),
    handle: (stream, decide, handleOptions) => aggregates.handle(stream, decide, handleOptions),

    subscribe: (subscribeOptions) => subscriptions(subscribeOptions),

    async ready() {
      const shipped = (await loadMigrations(storeMigrations())).map((m) => m.name);
      try {
        const rows = await raw.query<{ name: string }>(
          `select name from ${s}.migrations where component = 'eventstore'`,
        );
        const applied = new Set(rows.map((r) => r.name));
        const pending = shipped.filter((name) => !applied.has(name));
        return {
          ready: pending.length === 0,
          checks: { database: { ok: true }, migrations: { ok: pending.length === 0, pending } },
        };
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        // 42P01: the migrations table does not exist yet.
        const reachable = code === '42P01';
        return {
          ready: false,
          checks: {
            database: reachable
              ? { ok: true }
              : { ok: false, error: typeof code === 'string' ? code : 'unreachable' },
            migrations: { ok: false, pending: shipped },
          },
        };
      }
    },

    forTenant(id) {
      return createStoreOn(nonClosing(raw), { ...options, tenant: id });
    },

    async close() {
      notifier.close();
      await raw.close();
    },
  };
  const phi = options.phi ? createPhiCodec(db, schema, options.phi) : undefined;
  const aggregates = createAggregates(store, db);
  const inline = createInlineProjections(schema, options.inlineProjections ?? []);
  const notifier = createNotifier(raw, schema, options.notify);
  const subscriptions = createSubscriptions(store, db, notifier, tenant, options.logger);
  return store;
}
