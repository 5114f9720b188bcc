import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type Actor,
  assertEnvelope,
  createEnvelope,
  type Envelope,
  envelopePatterns,
  InvalidArgumentError,
  type Logger,
  silentLogger,
} from '@evident/envelope';
import {
  assertStreamId,
  type EventStore,
  isConcurrencyError,
  type RecordedEvent,
  type Subscription,
} from '@evident/eventstore';
import { databaseClock, type SagaClock, sleepReal } from './clock.js';
import type { AnySagaDefinition } from './defineSaga.js';
import { type Duration, toMilliseconds } from './duration.js';
import { isSagaError, type RecordedError, recordError, SagaError } from './errors.js';
import {
  type DeadLetterContext,
  type SagaEventData,
  type SagaEventType,
  sagaStreamType,
} from './events.js';
import { checkHistory, migrateHistory } from './history.js';
import { deterministicId, isTransientDatabaseError } from './ids.js';
import { shippedMigrations } from './migrations.js';
import { runInstance, toFoldEvent } from './runInstance.js';
import { finalStatuses, foldHistory, type SagaStatus } from './state.js';
import { observeSagas } from './telemetry.js';

/** How this process works on instances. */
export interface WorkerOptions {
  /** Instances this process runs at once. 0: none (a client that starts and signals). @defaultValue 16 */
  readonly concurrency?: number;
  /**
   * How long a claimed instance belongs to its worker without renewal; a crashed worker's
   * instances are taken over after this (renewed every third of it while steps run).
   * @defaultValue '30s'
   */
  readonly lease?: Duration;
  /** How often an idle worker looks for due instances (starts and signals in this process wake it at once). @defaultValue '500ms' */
  readonly pollInterval?: Duration;
  /** Retry back-offs up to this long are waited out holding the instance; longer ones park it. @defaultValue '5s' */
  readonly holdRetriesUpTo?: Duration;
}

/** Options of {@link createSagaRuntime}. */
export interface SagaRuntimeOptions {
  /** The event store (PostgreSQL or PGlite), after `store.migrate()` and `migrateSagas(store)`. */
  readonly store: EventStore;
  /** Every saga definition (and every version still running) this process starts or runs. */
  readonly sagas: readonly AnySagaDefinition[];
  /** Work on instances in this process: a concurrency, options, or `false` for none. @defaultValue { concurrency: 16 } */
  readonly workers?: number | false | WorkerOptions;
  /** Where time comes from. @defaultValue databaseClock (PostgreSQL's `now()`) */
  readonly clock?: SagaClock;
  /** Actor of the events the runtime records. @defaultValue { id: 'saga-runtime', role: 'system' } */
  readonly actor?: Actor;
  /** `source` of the events the runtime records. @defaultValue 'evident.saga' */
  readonly source?: string;
  /** Where the runtime logs (fields only, never payloads). @defaultValue silent */
  readonly logger?: Logger;
}

/** Options of {@link SagaRuntime.start}. */
export interface StartOptions {
  /** The instance's id (its stream id): a start with an id already used starts nothing. */
  readonly id: string;
  /** The workflow the saga belongs to, e.g. the patient journey's. @defaultValue a new one */
  readonly correlationId?: string;
  /** The event or command that caused the saga. @defaultValue the SagaStarted event itself */
  readonly causationId?: string;
  /** Who started it. @defaultValue the runtime's actor */
  readonly actor?: Actor;
}

/** What {@link SagaRuntime.start} returns. */
export interface StartResult {
  readonly id: string;
  readonly correlationId: string;
  /** False when an instance with this id already existed (nothing was started). */
  readonly created: boolean;
}

/** An instance as operators see it (the work table's row). */
export interface SagaInstance {
  readonly id: string;
  readonly saga: string;
  readonly version: number;
  readonly correlationId: string;
  readonly status: SagaStatus;
  /** The step, timer or wait it is at (for a dead letter: its failure point). */
  readonly currentStep: string | null;
  readonly attempt: number;
  /** Event type a waiting instance waits for, and its correlation key. */
  readonly waitingFor: string | null;
  readonly waitKey: string | null;
  /** When it is next due (database time; the lease expiry while a worker holds it). */
  readonly dueAt: string | null;
  readonly leaseOwner: string | null;
  readonly lastError: RecordedError | null;
  readonly streamVersion: number;
  readonly startedAt: string;
  readonly updatedAt: string;
}

/** Filters of {@link SagaRuntime.list} and {@link SagaRuntime.count}. */
export interface InstanceFilter {
  readonly saga?: string;
  readonly status?: SagaStatus | readonly SagaStatus[];
  readonly step?: string;
  /** Only instances started at least this long ago (database time). */
  readonly olderThan?: Duration;
  /** Only instances whose last error has this name or code. */
  readonly error?: string;
  /** Most rows (list only). @defaultValue 100 */
  readonly limit?: number;
}

/** One line of an instance's timeline. */
export interface TimelineEntry {
  readonly version: number;
  readonly recordedAt: string;
  readonly type: string;
  readonly actor: Actor;
  /** A line for people: `StepFailed verifyInsuranceEligibility (attempt 2): PayerTimeoutError`. */
  readonly summary: string;
  readonly data: unknown;
}

/** A dead-lettered instance with the context recorded when it was parked. */
export interface DeadLetter {
  readonly instance: SagaInstance;
  readonly context: DeadLetterContext;
  readonly deadLetteredAt: string;
}

/** Who performs an operator action, and why. */
export interface OperatorAction {
  /** The operator, recorded on the event. */
  readonly operator: Actor;
  /** @defaultValue none (required to resolve) */
  readonly reason?: string;
}

/** What {@link SagaRuntime.signal} returns. */
export interface SignalResult {
  readonly sagaId: string;
  /** Id of the `SignalReceived` event (the same for a duplicate delivery). */
  readonly eventId: string;
}

/** The saga runtime of one process. Create it with {@link createSagaRuntime}. */
export interface SagaRuntime {
  /** This process's worker id (the lease owner it writes). */
  readonly workerId: string;
  /**
   * Start an instance of the latest registered version of `saga`. Idempotent by id: a second
   * start with the same id starts nothing and returns `created: false`.
   *
   * @example
   * ```ts
   * await runtime.start('patient-onboarding', { patientId: 'p-81', payerId: 'delta-dental' }, { id: 'onboarding-p-81' });
   * ```
   * @throws SagaError `SAGA_NOT_REGISTERED`; `SAGA_ID_CONFLICT` when the id belongs to another saga.
   */
  start(saga: string, input: unknown, options: StartOptions): Promise<StartResult>;
  /**
   * Deliver an external event to one instance. Recorded as `SignalReceived` on its stream (kept
   * until a wait consumes it); delivering the same event again records nothing.
   *
   * @example
   * ```ts
   * await runtime.signal('claim-c-9', remittanceReceived);
   * ```
   * @throws SagaError `SAGA_NOT_FOUND`
   */
  signal(sagaId: string, event: Envelope): Promise<SignalResult>;
  /**
   * Route an external event to every unfinished instance that waits for its type with this key
   * now, or belongs to its workflow (same correlation id) and whose saga waits for its type
   * anywhere (the signal is kept on the stream until a wait consumes it, so one that arrives
   * before the wait is not lost). Returns the ids signalled.
   *
   * @example
   * ```ts
   * await runtime.deliver(remittanceReceived, { key: claimId });
   * ```
   */
  deliver(event: Envelope, options?: { readonly key?: string }): Promise<string[]>;
  /**
   * Deliver every event of the store's log whose type a registered saga waits for, through a
   * checkpointed subscription (PostgreSQL only: on PGlite call `deliver` yourself).
   *
   * @example
   * ```ts
   * const routing = runtime.routeSignals({ name: 'saga-signals', key: (e) => e.data.claimId });
   * ```
   */
  routeSignals(options: {
    readonly name: string;
    readonly key?: (event: RecordedEvent) => string | undefined;
  }): Subscription;
  /** One instance, or undefined. */
  get(sagaId: string): Promise<SagaInstance | undefined>;
  /** Instances by saga, status, current step, age, last error; oldest first. */
  list(filter?: InstanceFilter): Promise<SagaInstance[]>;
  /** How many instances match; grouped by a field when `by` is given. */
  count(filter?: InstanceFilter): Promise<number>;
  countBy(
    by: 'saga' | 'status' | 'step' | 'error',
    filter?: InstanceFilter,
  ): Promise<{ readonly key: string | null; readonly count: number }[]>;
  /** Every event of the instance, oldest first, with a line for people. */
  timeline(sagaId: string): Promise<TimelineEntry[]>;
  /** Dead letters with their recorded context. */
  deadLetters(filter?: Omit<InstanceFilter, 'status'>): Promise<DeadLetter[]>;
  /**
   * Retry a dead letter from its failure point (the failed step, or the failed compensation),
   * with a fresh attempt budget. Recorded as `SagaResumed` with the operator.
   *
   * @throws SagaError `OPERATOR_ACTION_REFUSED` when the instance is not dead-lettered.
   */
  retryFromFailure(sagaId: string, action: OperatorAction): Promise<void>;
  /**
   * Run the compensation (again): every completed step not yet compensated, in reverse order,
   * from the one that failed. Recorded as `SagaResumed` with the operator.
   *
   * @throws SagaError `OPERATOR_ACTION_REFUSED` when the instance is not dead-lettered.
   */
  compensate(sagaId: string, action: OperatorAction): Promise<void>;
  /**
   * Close an instance by hand (a dead letter someone sorted out outside the saga). Recorded as
   * `ManuallyResolved` with the operator and the reason; nothing runs any more.
   *
   * @throws SagaError `OPERATOR_ACTION_REFUSED` when the instance has already ended.
   */
  resolve(sagaId: string, action: OperatorAction & { readonly reason: string }): Promise<void>;
  /**
   * Resolve when the instance reaches a final status (completed, compensated, dead-lettered,
   * resolved), or `until` holds.
   *
   * @throws SagaError `SAGA_TIMEOUT` after `timeout`.
   */
  waitUntil(
    sagaId: string,
    options?: {
      readonly until?: (instance: SagaInstance) => boolean;
      readonly timeout?: Duration;
      readonly signal?: AbortSignal;
    },
  ): Promise<SagaInstance>;
  /**
   * Run every instance that is due now in this process until none is (for tests and scripts;
   * workers do this continuously). Returns how many runs it made.
   */
  drain(options?: { readonly limit?: number }): Promise<number>;
  /**
   * For a service's readiness endpoint: the database answers, the saga tables are migrated, and
   * (unless created with `workers: false`) the worker loop runs and its last claim succeeded.
   * Never throws.
   */
  ready(): Promise<SagaRuntimeReadiness>;
  /** Stop the workers: running instances are released for others at once. */
  stop(): Promise<void>;
}

/** What {@link SagaRuntime.ready} reports. */
export interface SagaRuntimeReadiness {
  readonly ready: boolean;
  readonly checks: {
    /** `error`: the database error's code, or `unreachable`. */
    readonly database: { readonly ok: boolean; readonly error?: string };
    readonly migrations: { readonly ok: boolean; readonly pending: readonly string[] };
    /** `running`: instances this process runs now; `concurrency` 0 for a runtime without workers. */
    readonly workers: {
      readonly ok: boolean;
      readonly running: number;
      readonly concurrency: number;
      readonly error?: string;
    };
  };
}

const statuses: readonly SagaStatus[] = [
  'running',
  'sleeping',
  'waiting',
  'retrying',
  'compensating',
  'completed',
  'compensated',
  'dead_lettered',
  'resolved',
];

interface InstanceRow {
  saga_id: string;
  saga_name: string;
  saga_version: number;
  correlation_id: string;
  status: SagaStatus;
  current_step: string | null;
  attempt: number;
  waiting_for: string | null;
  wait_key: string | null;
  due_at: string | number | null;
  lease_owner: string | null;
  last_error: RecordedError | null;
  stream_version: string | number;
  started_at: string | number;
  updated_at: string | number;
}

const ms = (v: string | number | bigint) => new Date(Number(v)).toISOString();

function toInstance(r: InstanceRow): SagaInstance {
  return {
    id: r.saga_id,
    saga: r.saga_name,
    version: Number(r.saga_version),
    correlationId: r.correlation_id,
    status: r.status,
    currentStep: r.current_step,
    attempt: Number(r.attempt),
    waitingFor: r.waiting_for,
    waitKey: r.wait_key,
    dueAt: r.due_at === null ? null : ms(r.due_at),
    leaseOwner: r.lease_owner,
    lastError: r.last_error,
    streamVersion: Number(r.stream_version),
    startedAt: ms(r.started_at),
    updatedAt: ms(r.updated_at),
  };
}

const instanceColumns = `saga_id, saga_name, saga_version, correlation_id, status, current_step,
  attempt, waiting_for, wait_key, (extract(epoch from due_at) * 1000)::int8 as due_at,
  lease_owner, last_error, stream_version,
  (extract(epoch from started_at) * 1000)::int8 as started_at,
  (extract(epoch from updated_at) * 1000)::int8 as updated_at`;

function summarize(e: RecordedEvent): string {
  const d = (e.data ?? {}) as Record<string, unknown>;
  const err = d.error as RecordedError | undefined;
  const name = d.step ?? d.timer ?? d.wait ?? d.node;
  const parts = [e.type];
  if (typeof name === 'string') parts.push(name);
  if (typeof d.attempt === 'number') parts.push(`(attempt ${d.attempt})`);
  let line = parts.join(' ');
  if (err) line += `: ${err.name}${err.code ? ` ${err.code}` : ''}`;
  if (e.type === 'SignalReceived') line += ` ${String(d.type)}`;
  if (e.type === 'SagaWaiting')
    line += ` ${String(d.status)}${d.waitingFor ? ` for ${String(d.waitingFor)}` : ''}`;
  if (e.type === 'ConditionEvaluated') line += ` = ${String(d.value)}`;
  if (e.type === 'CompensationStarted') line += ` → ${String(d.transition)}`;
  const next = (d.next ?? []) as readonly { step: string }[];
  if (next.length > 0) line += `; started ${next.map((n) => n.step).join(', ')}`;
  if (e.type === 'ManuallyResolved' || e.type === 'SagaResumed') {
    line += ` by ${e.actor.id}${d.reason ? `: ${String(d.reason)}` : ''}`;
  }
  return line;
}

/**
 * Create the saga runtime of this process: it starts and signals instances, runs them with its
 * workers (any number of processes share the instances through the work table), and answers
 * operators.
 *
 * @example
 * ```ts
 * const store = createEventStore({ connectionString: process.env.DATABASE_URL! });
 * await store.migrate();
 * await migrateSagas(store);
 * const runtime = createSagaRuntime({ store, sagas: [onboarding], workers: { concurrency: 16 } });
 * await runtime.start('patient-onboarding', input, { id: `onboarding-${input.patientId}` });
 * ```
 * @throws SagaError `SAGA_DEFINITION_INVALID` when two definitions share a name and version.
 */
export function createSagaRuntime(options: SagaRuntimeOptions): SagaRuntime {
  const { store } = options;
  if (!store || typeof store.append !== 'function') {
    throw new InvalidArgumentError('createSagaRuntime needs an event store');
  }
  const clock = options.clock ?? databaseClock;
  const virtual = clock.kind === 'virtual';
  const logger = options.logger ?? silentLogger;
  const actor = options.actor ?? { id: 'saga-runtime', role: 'system' };
  const source = options.source ?? 'evident.saga';
  const worker: Required<{ [K in keyof WorkerOptions]: number }> = (() => {
    const w = options.workers;
    const o: WorkerOptions =
      w === false ? { concurrency: 0 } : typeof w === 'number' ? { concurrency: w } : (w ?? {});
    const concurrency = o.concurrency ?? 16;
    if (!Number.isSafeInteger(concurrency) || concurrency < 0 || concurrency > 10_000) {
      throw new InvalidArgumentError('workers.concurrency must be an integer from 0 to 10000');
    }
    return {
      concurrency,
      lease: toMilliseconds(o.lease ?? 30_000, 'workers.lease'),
      pollInterval: toMilliseconds(o.pollInterval ?? 500, 'workers.pollInterval'),
      holdRetriesUpTo: toMilliseconds(o.holdRetriesUpTo ?? 5000, 'workers.holdRetriesUpTo'),
    };
  })();
  if (worker.lease < 100) throw new InvalidArgumentError('workers.lease must be at least 100 ms');

  // Definitions by name and version; the latest version starts new instances.
  const definitions = new Map<string, Map<number, AnySagaDefinition>>();
  for (const definition of options.sagas ?? []) {
    const d = definition as unknown as AnySagaDefinition;
    if (!d || typeof d.name !== 'string' || !Array.isArray(d.nodes)) {
      throw new InvalidArgumentError('sagas must be definitions made with defineSaga');
    }
    const versions = definitions.get(d.name) ?? new Map<number, AnySagaDefinition>();
    if (versions.has(d.version)) {
      throw new SagaError(
        'SAGA_DEFINITION_INVALID',
        `saga ${d.name} version ${d.version} is registered twice`,
      );
    }
    versions.set(d.version, d);
    definitions.set(d.name, versions);
  }
  const latest = (name: string) => {
    const versions = definitions.get(name);
    if (!versions) return undefined;
    return versions.get(Math.max(...versions.keys()));
  };
  /** The definition that runs instances of (name, version): its own, or a later one that migrates it. */
  const runnerOf = (name: string, version: number): AnySagaDefinition | undefined => {
    const versions = definitions.get(name);
    if (!versions) return undefined;
    const own = versions.get(version);
    if (own) return own;
    const later = [...versions.values()]
      .filter((d) => d.version > version)
      .sort((a, b) => a.version - b.version);
    return later.find((d) => {
      for (let v = version; v < d.version; v++) if (!d.migrations[v]) return false;
      return true;
    });
  };
  // (name, version) pairs this process can run: its definitions, and the versions they migrate.
  const runnable: { names: string[]; versions: number[] } = { names: [], versions: [] };
  for (const [name, versions] of definitions) {
    const max = Math.max(...versions.keys());
    for (let v = 1; v <= max; v++) {
      if (runnerOf(name, v)) {
        runnable.names.push(name);
        runnable.versions.push(v);
      }
    }
  }
  // Event types some registered saga waits for, and which sagas wait for each.
  const waitedBy = new Map<string, Set<string>>();
  const collectWaits = (name: string, nodes: AnySagaDefinition['nodes']) => {
    for (const n of nodes) {
      if (n.kind === 'wait') {
        const set = waitedBy.get(n.eventType) ?? new Set();
        set.add(name);
        waitedBy.set(n.eventType, set);
      }
      if (n.kind === 'when') collectWaits(name, n.branch);
      if (n.kind === 'parallel') for (const b of n.branches) collectWaits(name, b.nodes);
    }
  };
  for (const [name, versions] of definitions) {
    for (const d of versions.values()) collectWaits(name, d.nodes);
  }

  const db = store.database;
  // An idle pooled connection that loses its server (a restart, a failover) is reported on the
  // pool's 'error' event; with no listener Node ends the process. A worker must outlive a
  // restart: log it, the pool replaces the connection.
  const onIdleError = (error: Error) =>
    logger.warn({ error: recordError(error).name }, 'an idle database connection was lost');
  const guardedPool = db.pool && db.pool.listenerCount('error') === 0 ? db.pool : undefined;
  guardedPool?.on('error', onIdleError);
  const s = `"${store.schema}"`;
  const nowSql = 'coalesce($1::timestamptz, now())';
  const sql = {
    // The first due instances in due order, locked (sql/0004_claim_walks_the_due_index.sql:
    // always by walking the due index, so a backlog costs a claim no more than its own rows).
    claim: `with due as (
              select d.saga_id
                from ${s}.due_instances(${nowSql}, $2::text[], $3::int[], $4::int) as d(saga_id)
            )
            update ${s}.saga_instances as i
               set lease_owner = $5, due_at = ${nowSql} + $6::int * interval '1 millisecond'
              from due
             where i.saga_id = due.saga_id
            returning i.saga_id, i.saga_name, i.saga_version, i.stream_version,
                      (extract(epoch from ${nowSql}) * 1000)::int8 as db_now`,
    renew: `update ${s}.saga_instances
               set due_at = ${nowSql} + $2::int * interval '1 millisecond'
             where saga_id = any($3::text[]) and lease_owner = $4
            returning saga_id, (extract(epoch from ${nowSql}) * 1000)::int8 as db_now`,
    release: `update ${s}.saga_instances
                 set lease_owner = null, due_at = ${nowSql} + $2::int * interval '1 millisecond',
                     last_error = coalesce($3::jsonb, last_error)
               where saga_id = any($4::text[]) and lease_owner = $5`,
    get: `select ${instanceColumns} from ${s}.saga_instances where saga_id = any($1::text[])`,
    routes: `select saga_id from ${s}.saga_instances
              where status not in ('completed', 'compensated', 'dead_lettered', 'resolved')
                and saga_name = any($4::text[])
                and ((status = 'waiting' and waiting_for = $1 and wait_key = $2)
                     or correlation_id = $3)`,
  };
  const filterSql = `($2::text is null or saga_name = $2)
      and ($3::text[] is null or status = any($3::text[]))
      and ($4::text is null or current_step = $4)
      and ($5::int8 is null or started_at <= ${nowSql} - $5::int8 * interval '1 millisecond')
      and ($6::text is null or last_error ->> 'name' = $6 or last_error ->> 'code' = $6)`;

  const workerId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const nowParam = () => (virtual ? new Date(clock.now()).toISOString() : null);

  // Database time: the last `now()` a query returned, advanced by a monotonic timer since.
  let dbSample = { db: Date.now(), at: performance.now() };
  const sampleDb = (dbNow: string | number | bigint) => {
    dbSample = { db: Number(dbNow), at: performance.now() };
    databaseTime ??= Promise.resolve();
  };
  const now = () => (virtual ? clock.now() : dbSample.db + (performance.now() - dbSample.at));
  // Until the database has told us its time, the estimate is the application's clock, which may
  // be skewed by minutes: read it once before deciding anything on a locally started instance.
  let databaseTime: Promise<void> | null = null;
  const ensureDatabaseTime = () =>
    (databaseTime ??= db
      .query<{ db_now: string | number }>(
        'select (extract(epoch from now()) * 1000)::int8 as db_now',
        [],
        'evident_saga_now',
      )
      .then((rows) => sampleDb(rows[0]!.db_now))
      .catch((error) => {
        databaseTime = null;
        throw error;
      }));

  // ------------------------------------------------------------------------------------------
  // Workers.

  const running = new Map<string, AbortController>();
  /**
   * Instances this process runs whose start is not committed yet: their row does not exist, so a
   * lease renewal must neither renew nor miss them (a miss would abort the run and leave the
   * instance to wait out its lease).
   */
  const unconfirmed = new Set<string>();
  let stopping = false;
  /** The last claim filled every free slot: more may be due. */
  let saturated = false;
  let wakeUp: (() => void) | null = null;
  const wake = () => {
    const w = wakeUp;
    wakeUp = null;
    w?.();
  };
  const idle = (timeout: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wakeUp = null;
        resolve();
      }, timeout);
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const finishedWaiters = new Map<string, Set<() => void>>();
  const notifyFinished = (id: string) => {
    for (const f of finishedWaiters.get(id) ?? []) f();
  };
  const localWakes = new Set<ReturnType<typeof setTimeout>>();
  const wakeAtTime = (wakeAt: number | null) => {
    if (wakeAt === null || stopping || worker.concurrency === 0) return;
    const delay = wakeAt - now();
    if (delay > 60_000) return; // the poll finds it; no timer that long
    const timer = setTimeout(
      () => {
        localWakes.delete(timer);
        wake();
      },
      Math.max(0, delay + 1),
    );
    timer.unref?.();
    localWakes.add(timer);
  };
  const unsubscribeClock = clock.onAdvance?.(() => wake());

  const env = {
    store,
    clock,
    now,
    actor,
    source,
    holdMs: worker.holdRetriesUpTo,
    logger,
  };

  /** How a run of an instance this process has just started records the start. */
  interface LocalStart {
    /** The store the run appends through: its first append carries the start. */
    readonly store: EventStore;
    /** Append the start alone unless it is recorded (or refused) already. */
    readonly ensureStarted: () => Promise<void>;
    /** The start, which the run appends with its first events. */
    readonly started: Envelope;
  }

  interface Claimed {
    saga_id: string;
    saga_name: string;
    saga_version: number;
    stream_version: string | number;
    db_now: string | number;
  }

  const release = async (ids: string[], delayMs: number, error: RecordedError | null) => {
    if (ids.length === 0) return;
    await db.query(
      sql.release,
      [nowParam(), delayMs, error ? JSON.stringify(error) : null, ids, workerId],
      'evident_saga_release',
    );
  };

  /** Load a claimed instance (unless its history is known) and drive it; never throws. */
  const runClaimed = async (
    row: Claimed,
    controller: AbortController,
    known?: RecordedEvent[],
    local?: LocalStart,
  ): Promise<void> => {
    const id = row.saga_id;
    try {
      const definition = runnerOf(row.saga_name, Number(row.saga_version));
      if (!definition) {
        await release([id], 60_000, {
          name: 'SagaError',
          code: 'SAGA_NOT_REGISTERED',
          message: `no registered definition runs ${row.saga_name} v${row.saga_version}`,
        });
        return;
      }
      let recorded: RecordedEvent[] = known ?? [];
      for (let attempt = 0; !known; attempt++) {
        try {
          recorded = await store.readStream({ type: sagaStreamType, id });
          break;
        } catch (error) {
          if (!isTransientDatabaseError(error) || attempt > 20 || controller.signal.aborted)
            throw error;
          await sleepReal(Math.min(100 * 2 ** attempt, 2000));
        }
      }
      const started = recorded[0]?.data as SagaEventData['SagaStarted'] | undefined;
      const originalVersion = started?.version ?? Number(row.saga_version);
      const events = recorded.map(toFoldEvent);
      const history = migrateHistory(definition, originalVersion, events);
      const problems = history ? checkHistory(definition, history) : [];
      if (!history || problems.length > 0) {
        // The code running here cannot continue this history: leave it for code that can (an
        // operator sees the error), instead of taking a path its history never took.
        await release([id], 5 * 60_000, {
          name: 'SagaError',
          code: 'HISTORY_INCOMPATIBLE',
          message: history
            ? problems
                .map((p) => p.message)
                .join('; ')
                .slice(0, 500)
            : `no migration chain from v${originalVersion} to v${definition.version}`,
        });
        logger.warn(
          { saga: definition.name, version: definition.version, problems: problems.length },
          'saga history incompatible with the running code',
        );
        return;
      }
      const current = foldHistory(id, history).version;
      const runEnv = local ? { ...env, store: local.store } : env;
      const outcome = await runInstance(runEnv, definition, id, history, controller.signal, {
        streamVersion: recorded.length,
        ...(local ? { start: local.started } : {}),
        ...(current !== definition.version ? { migratedFrom: current } : {}),
      });
      if (outcome.kind === 'parked') wakeAtTime(outcome.wakeAt);
    } catch (error) {
      logger.error(
        { saga: row.saga_name, error: recordError(error).name, code: recordError(error).code },
        'saga run failed; the instance is released and retried',
      );
      try {
        await local?.ensureStarted();
        await release([id], 5000, recordError(error));
      } catch {
        // The lease expires by itself.
      }
    } finally {
      // A run that ended before its first append (stopped, or failed): the start is still
      // recorded, before the slot is freed and the lease can be released.
      await local?.ensureStarted().catch(() => {});
      if (running.get(id) === controller) running.delete(id);
      notifyFinished(id);
    }
  };

  const launch = (row: Claimed, known?: RecordedEvent[]) => {
    sampleDb(row.db_now);
    const controller = new AbortController();
    running.set(row.saga_id, controller);
    runClaimed(row, controller, known).finally(() => {
      if (running.get(row.saga_id) === controller) running.delete(row.saga_id);
      // A slot is free: claim again at once only if the last claim left due work behind.
      if (saturated) wake();
    });
  };

  /**
   * The start of an instance this process runs itself rides on the run's first append (its first
   * step's start, usually): one statement per saga fewer. The store the run gets sends
   * `SagaStarted` in front of the first events it appends, as a new stream; `start()` resolves
   * when that append has committed (or failed), as it did when it appended the start alone. If
   * the run ends before appending anything, the start is appended alone.
   */
  const startWithFirstAppend = (
    id: string,
    started: Envelope,
    controller: AbortController,
  ): { local: LocalStart; recorded: Promise<void> } => {
    let state: 'pending' | 'sending' | 'done' | 'refused' = 'pending';
    let settle!: (error?: unknown) => void;
    unconfirmed.add(id);
    const recorded = new Promise<void>((resolve, reject) => {
      settle = (error) => {
        unconfirmed.delete(id);
        if (error === undefined) resolve();
        else reject(error);
      };
    });
    // Handled by start(); never an unhandled rejection when start() has already returned.
    recorded.catch(() => {});
    const refuse = (error: unknown) => {
      state = 'refused';
      settle(error);
      // The stream is not this run's (the id was taken) or the start is invalid: the run must not
      // write anything, and ends as lost at its next await.
      controller.abort(error);
      return new SagaError('SAGA_NOT_FOUND', 'the instance was not started', { cause: error });
    };
    const append: EventStore['append'] = async (stream, events, appendOptions) => {
      if (state === 'refused')
        throw new SagaError('SAGA_NOT_FOUND', 'the instance was not started');
      if (state === 'done' || stream.type !== sagaStreamType || stream.id !== id) {
        return store.append(stream, events, appendOptions);
      }
      state = 'sending';
      try {
        // The run sends the start itself, first, carrying its first steps' starts (RunOptions
        // `start`). The same ids on a retry after a transient error: the store answers with the
        // original result if the lost attempt had committed.
        if (events[0]?.id !== started.id) {
          throw new Error('a locally started run must append its start first');
        }
        const result = await store.append(stream, events, {
          expectedVersion: 'no_stream',
        });
        state = 'done';
        settle();
        return result;
      } catch (error) {
        if (isTransientDatabaseError(error) && !controller.signal.aborted) {
          state = 'pending';
          throw error;
        }
        throw refuse(error);
      }
    };
    const ensureStarted = async () => {
      if (state !== 'pending') return;
      state = 'sending';
      try {
        await store.append({ type: sagaStreamType, id }, [started], {
          expectedVersion: 'no_stream',
        });
        state = 'done';
        settle();
      } catch (error) {
        refuse(error);
      }
    };
    return { local: { store: { ...store, append }, ensureStarted, started }, recorded };
  };

  /** Run an instance this process has just started, holding it since its first event. */
  const runLocally = (
    id: string,
    started: Envelope,
    controller: AbortController,
    local?: LocalStart,
  ) => {
    const recorded: RecordedEvent = {
      ...started,
      // As stored: plain JSON.
      data: JSON.parse(JSON.stringify(started.data)),
      stream: { type: sagaStreamType, id },
      streamVersion: 1,
      globalPosition: 0,
      checkpoint: '' as RecordedEvent['checkpoint'],
      recordedAt: new Date(now()).toISOString(),
    };
    const data = started.data as SagaEventData['SagaStarted'];
    const row: Claimed = {
      saga_id: id,
      saga_name: data.saga,
      saga_version: data.version,
      stream_version: 1,
      db_now: now(),
    };
    runClaimed(row, controller, [recorded], local).finally(() => {
      if (running.get(id) === controller) running.delete(id);
      if (saturated) wake();
    });
  };

  const claim = async (limit: number): Promise<Claimed[]> =>
    db.query<Claimed>(
      sql.claim,
      [nowParam(), runnable.names, runnable.versions, limit, workerId, worker.lease],
      'evident_saga_claim',
    );

  let lastRenewal = performance.now();
  const renew = async () => {
    const ids = [...running.keys()].filter((id) => !unconfirmed.has(id));
    if (ids.length === 0) {
      lastRenewal = performance.now();
      return;
    }
    try {
      const rows = await db.query<{ saga_id: string; db_now: string | number }>(
        sql.renew,
        [nowParam(), worker.lease, ids, workerId],
        'evident_saga_renew',
      );
      lastRenewal = performance.now();
      if (rows[0]) sampleDb(rows[0].db_now);
      const held = new Set(rows.map((r) => r.saga_id));
      for (const id of ids) {
        // Gone from our lease: parked, finished, or taken over after an expiry.
        if (!held.has(id)) running.get(id)?.abort(new Error('lease lost'));
      }
    } catch (error) {
      logger.warn({ error: recordError(error).name }, 'saga lease renewal failed');
      // Past the lease, another worker may already run them: stop before we write anything.
      if (performance.now() - lastRenewal > worker.lease * 0.9) {
        for (const c of running.values()) c.abort(new Error('lease lost'));
      }
    }
  };

  let loopDone: Promise<void> = Promise.resolve();
  /** Claims that failed in a row (the database unreachable, say). */
  let claimFailures = 0;
  let renewTimer: ReturnType<typeof setInterval> | undefined;
  if (worker.concurrency > 0) {
    renewTimer = setInterval(() => void renew(), Math.max(50, Math.floor(worker.lease / 3)));
    renewTimer.unref?.();
    loopDone = (async () => {
      while (!stopping) {
        const free = worker.concurrency - running.size;
        let claimed = 0;
        if (free > 0) {
          try {
            const rows = await claim(free);
            claimFailures = 0;
            claimed = rows.length;
            saturated = claimed === free;
            for (const row of rows) launch(row);
          } catch (error) {
            claimFailures++;
            if (!isTransientDatabaseError(error)) {
              logger.error(
                { error: recordError(error).name, message: recordError(error).message },
                'saga claim failed',
              );
            }
            await idle(Math.min(worker.pollInterval * claimFailures, 5000));
            continue;
          }
        }
        if (stopping) break;
        if (free > 0 && claimed === free) {
          await new Promise((r) => setImmediate(r));
          continue;
        }
        await idle(worker.pollInterval);
      }
    })();
  }

  // Instances by status and due timers, on each collection of a metrics SDK (none without one).
  const stopObserving = observeSagas(async () => {
    const [counts, due] = await Promise.all([
      db.query<{ saga_name: string; status: string; count: string | number }>(
        `select saga_name, status, count(*) as count from ${s}.saga_instances group by 1, 2`,
        [],
        'evident_saga_gauge_instances',
      ),
      db.query<{ count: string | number }>(
        `select count(*) as count from ${s}.saga_instances where due_at <= ${nowSql}`,
        [nowParam()],
        'evident_saga_gauge_due',
      ),
    ]);
    return {
      instances: counts.map((r) => ({
        saga: r.saga_name,
        status: r.status,
        count: Number(r.count),
      })),
      timersDue: Number(due[0]?.count ?? 0),
    };
  });

  // ------------------------------------------------------------------------------------------
  // Operators.

  // Reads of instances asked for in one turn of the event loop go as one query. Instances that
  // end in the same group-commit statement are read back together by their waiters (`waitUntil`)
  // and start their successors together, so a worker's next appends still travel as one group:
  // read one by one, each read put one waiter a round trip behind the others, and the groups
  // broke up (see docs/performance.md, "Sagas").
  let reads: {
    readonly id: string;
    readonly resolve: (instance: SagaInstance | undefined) => void;
    readonly reject: (error: unknown) => void;
  }[] = [];
  const readTogether = async () => {
    const batch = reads;
    reads = [];
    try {
      const ids = [...new Set(batch.map((r) => r.id))];
      const rows = await db.query<InstanceRow>(sql.get, [ids], 'evident_saga_get');
      const byId = new Map(rows.map((r) => [r.saga_id, toInstance(r)]));
      for (const r of batch) r.resolve(byId.get(r.id));
    } catch (error) {
      for (const r of batch) r.reject(error);
    }
  };
  const get = (sagaId: string) =>
    new Promise<SagaInstance | undefined>((resolve, reject) => {
      if (reads.length === 0) setImmediate(readTogether);
      reads.push({ id: String(sagaId), resolve, reject });
    });

  const filterParams = (filter: InstanceFilter) => {
    const status =
      filter.status === undefined
        ? null
        : Array.isArray(filter.status)
          ? filter.status
          : [filter.status];
    if (status?.some((st) => !statuses.includes(st as SagaStatus))) {
      throw new InvalidArgumentError(`status must be one of ${statuses.join(', ')}`);
    }
    return [
      nowParam(),
      filter.saga ?? null,
      status,
      filter.step ?? null,
      filter.olderThan === undefined ? null : toMilliseconds(filter.olderThan, 'olderThan'),
      filter.error ?? null,
    ];
  };

  const readInstance = async (sagaId: string) => {
    assertStreamId({ type: sagaStreamType, id: sagaId });
    const events = await store.readStream({ type: sagaStreamType, id: sagaId });
    if (events.length === 0) throw new SagaError('SAGA_NOT_FOUND', 'no saga instance with that id');
    return events;
  };

  const act = async (
    sagaId: string,
    action: OperatorAction,
    kind: 'retry' | 'compensate' | 'resolve',
  ): Promise<void> => {
    if (!action || typeof action !== 'object' || !action.operator) {
      throw new InvalidArgumentError('an operator action needs { operator: { id, role } }');
    }
    const reason = action.reason;
    if (
      reason !== undefined &&
      (typeof reason !== 'string' || reason.length === 0 || reason.length > 1000)
    ) {
      throw new InvalidArgumentError('reason must be a string of 1-1000 characters');
    }
    if (kind === 'resolve' && reason === undefined) {
      throw new InvalidArgumentError('resolving an instance needs a reason');
    }
    const events = await readInstance(sagaId);
    const state = foldHistory(sagaId, events.map(toFoldEvent));
    if (kind === 'resolve') {
      if (['completed', 'compensated', 'resolved'].includes(state.status)) {
        throw new SagaError(
          'OPERATOR_ACTION_REFUSED',
          `the instance has already ended (${state.status})`,
        );
      }
    } else if (state.status !== 'dead_lettered' || !state.deadLetter) {
      throw new SagaError(
        'OPERATOR_ACTION_REFUSED',
        `only a dead-lettered instance can be ${kind === 'retry' ? 'retried' : 'compensated'}; it is ${state.status}`,
      );
    }
    const phase = state.deadLetter?.failurePoint.phase;
    const type: SagaEventType = kind === 'resolve' ? 'ManuallyResolved' : 'SagaResumed';
    const data =
      kind === 'resolve'
        ? { operator: action.operator, reason: reason! }
        : {
            mode: kind,
            status: kind === 'retry' && phase === 'step' ? 'running' : 'compensating',
            operator: action.operator,
            reason: reason ?? null,
          };
    const envelope = createEnvelope({
      type,
      data,
      source,
      actor: action.operator,
      correlationId: state.correlationId,
      occurredAt: new Date(clock.now()),
    });
    try {
      await store.append({ type: sagaStreamType, id: sagaId }, [envelope], {
        expectedVersion: events.length,
      });
    } catch (error) {
      if (isConcurrencyError(error)) {
        throw new SagaError(
          'OPERATOR_ACTION_REFUSED',
          'the instance changed meanwhile; look again',
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    wake();
  };

  const signal = async (sagaId: string, event: Envelope): Promise<SignalResult> => {
    assertStreamId({ type: sagaStreamType, id: sagaId });
    assertEnvelope(event);
    const row = await get(sagaId);
    if (!row) throw new SagaError('SAGA_NOT_FOUND', 'no saga instance with that id');
    // Derived from the delivered event's id: a second delivery appends the very same event, which
    // the store recognizes and does not append again.
    const eventId = deterministicId('saga-signal', sagaId, event.id);
    const envelope = createEnvelope({
      id: eventId,
      type: 'SignalReceived',
      data: {
        eventId: event.id,
        type: event.type,
        data: event.data,
        occurredAt: event.occurredAt,
        source: event.source,
        correlationId: event.correlationId,
        actor: event.actor,
      } satisfies SagaEventData['SignalReceived'],
      source,
      actor: event.actor,
      correlationId: row.correlationId,
      causationId: event.id,
      occurredAt: new Date(clock.now()),
    });
    await store.append({ type: sagaStreamType, id: sagaId }, [envelope], {
      expectedVersion: 'exists',
    });
    wake();
    return { sagaId, eventId };
  };

  const deliver = async (event: Envelope, deliverOptions: { readonly key?: string } = {}) => {
    assertEnvelope(event);
    const sagas = waitedBy.get(event.type);
    if (!sagas) return [];
    const key = deliverOptions.key ?? event.correlationId;
    const rows = await db.query<{ saga_id: string }>(
      sql.routes,
      [event.type, key, event.correlationId, [...sagas]],
      'evident_saga_routes',
    );
    const ids: string[] = [];
    for (const r of rows) {
      try {
        await signal(r.saga_id, event);
        ids.push(r.saga_id);
      } catch (error) {
        if (!isSagaError(error, 'SAGA_NOT_FOUND')) throw error;
      }
    }
    return ids;
  };

  const runtime: SagaRuntime = {
    workerId,

    async start(saga, input, startOptions) {
      const definition = latest(saga);
      if (!definition) {
        throw new SagaError(
          'SAGA_NOT_REGISTERED',
          `saga ${saga} is not registered with this runtime`,
        );
      }
      if (!startOptions || typeof startOptions !== 'object') {
        throw new InvalidArgumentError('start needs options { id }');
      }
      const id = startOptions.id;
      assertStreamId({ type: sagaStreamType, id });
      if (
        startOptions.correlationId !== undefined &&
        (typeof startOptions.correlationId !== 'string' ||
          !envelopePatterns.token.test(startOptions.correlationId))
      ) {
        throw new InvalidArgumentError(`correlationId must match ${envelopePatterns.token}`);
      }
      // A process that starts an instance and has a free worker slot runs it at once, holding it
      // from its first event: no claim query, no read of the history it has just written, and the
      // start recorded with the run's first append (the starting process executes the workflow,
      // as in DBOS). Not when this process already runs an instance with this id: that start is
      // refused, and the run holding the id keeps its slot.
      const local =
        !stopping &&
        worker.concurrency > 0 &&
        running.size < worker.concurrency &&
        !running.has(id);
      const controller = new AbortController();
      if (local) {
        running.set(id, controller);
        await ensureDatabaseTime();
      }
      const envelope = createEnvelope({
        type: 'SagaStarted',
        data: {
          saga: definition.name,
          version: definition.version,
          input: input === undefined ? null : input,
          worker: local
            ? {
                id: workerId,
                leaseMs: worker.lease,
                until: virtual ? new Date(clock.now() + worker.lease).toISOString() : null,
              }
            : null,
        } satisfies SagaEventData['SagaStarted'],
        source,
        actor: startOptions.actor ?? actor,
        ...(startOptions.correlationId ? { correlationId: startOptions.correlationId } : {}),
        ...(startOptions.causationId ? { causationId: startOptions.causationId } : {}),
        occurredAt: new Date(clock.now()),
      });
      try {
        if (local) {
          const { local: start, recorded } = startWithFirstAppend(id, envelope, controller);
          runLocally(id, envelope, controller, start);
          await recorded;
        } else {
          await store.append({ type: sagaStreamType, id }, [envelope], {
            expectedVersion: 'no_stream',
          });
        }
      } catch (error) {
        if (!isConcurrencyError(error)) throw error;
        const [first] = await store.readStream({ type: sagaStreamType, id }, { limit: 1 });
        const data = first?.data as SagaEventData['SagaStarted'] | undefined;
        if (first?.type !== 'SagaStarted' || data?.saga !== saga) {
          throw new SagaError('SAGA_ID_CONFLICT', 'the id belongs to an instance of another saga');
        }
        return { id, correlationId: first.correlationId, created: false };
      }
      if (!local) wake();
      return { id, correlationId: envelope.correlationId, created: true };
    },

    signal,
    deliver,

    routeSignals(routeOptions) {
      if (db.kind === 'pglite') {
        throw new InvalidArgumentError(
          'routeSignals needs PostgreSQL (a subscription handler cannot append on PGlite); call deliver',
        );
      }
      const types = [...waitedBy.keys()];
      if (types.length === 0) {
        throw new InvalidArgumentError('no registered saga waits for any event type');
      }
      return store.subscribe({
        name: routeOptions.name,
        filter: { types },
        handler: async (event) => {
          if (event.stream.type === sagaStreamType) return;
          const key = routeOptions.key?.(event);
          await deliver(event, key === undefined ? {} : { key });
        },
      });
    },

    get(sagaId) {
      return get(sagaId);
    },

    async list(filter = {}) {
      const limit = filter.limit ?? 100;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
        throw new InvalidArgumentError('limit must be an integer from 1 to 10000');
      }
      const rows = await db.query<InstanceRow>(
        `select ${instanceColumns} from ${s}.saga_instances where ${filterSql}
          order by started_at, saga_id limit $7`,
        [...filterParams(filter), limit],
        'evident_saga_list',
      );
      return rows.map(toInstance);
    },

    async count(filter = {}) {
      const rows = await db.query<{ n: string | number }>(
        `select count(*) as n from ${s}.saga_instances where ${filterSql}`,
        filterParams(filter),
        'evident_saga_count',
      );
      return Number(rows[0]?.n ?? 0);
    },

    async countBy(by, filter = {}) {
      const column = {
        saga: 'saga_name',
        status: 'status',
        step: 'current_step',
        error: "coalesce(last_error ->> 'code', last_error ->> 'name')",
      }[by];
      if (!column) throw new InvalidArgumentError('countBy groups by saga, status, step or error');
      const rows = await db.query<{ key: string | null; n: string | number }>(
        `select ${column} as key, count(*) as n from ${s}.saga_instances where ${filterSql}
          group by 1 order by 2 desc, 1`,
        filterParams(filter),
        `evident_saga_count_by_${by}`,
      );
      return rows.map((r) => ({ key: r.key, count: Number(r.n) }));
    },

    async timeline(sagaId) {
      const events = await readInstance(sagaId);
      return events.map((e) => ({
        version: e.streamVersion,
        recordedAt: e.recordedAt,
        type: e.type,
        actor: e.actor,
        summary: summarize(e),
        data: e.data,
      }));
    },

    async deadLetters(filter = {}) {
      const instances = await runtime.list({ ...filter, status: 'dead_lettered' });
      const out: DeadLetter[] = [];
      for (const instance of instances) {
        const events = await store.readStream(
          { type: sagaStreamType, id: instance.id },
          { direction: 'backwards', limit: 50 },
        );
        const parked = events.find((e) => e.type === 'SagaDeadLettered');
        if (parked) {
          out.push({
            instance,
            context: parked.data as DeadLetterContext,
            deadLetteredAt: parked.recordedAt,
          });
        }
      }
      return out;
    },

    retryFromFailure: (sagaId, action) => act(sagaId, action, 'retry'),
    compensate: (sagaId, action) => act(sagaId, action, 'compensate'),
    resolve: (sagaId, action) => act(sagaId, action, 'resolve'),

    async waitUntil(sagaId, waitOptions = {}) {
      const until = waitOptions.until ?? ((i: SagaInstance) => finalStatuses.has(i.status));
      const timeoutMs =
        waitOptions.timeout === undefined ? 30_000 : toMilliseconds(waitOptions.timeout, 'timeout');
      const deadline = performance.now() + timeoutMs;
      let pollMs = 20;
      let instance: SagaInstance | undefined;
      for (;;) {
        waitOptions.signal?.throwIfAborted();
        // While this process runs the instance, its end is announced here: no need to ask.
        if (waitOptions.until || !running.has(sagaId)) {
          instance = await get(sagaId);
          if (instance && until(instance)) return instance;
        }
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new SagaError(
            'SAGA_TIMEOUT',
            `the instance did not reach the awaited status in ${timeoutMs} ms${instance ? ` (it is ${instance.status})` : ''}`,
          );
        }
        await new Promise<void>((resolve) => {
          const waiters = finishedWaiters.get(sagaId) ?? new Set();
          const done = () => {
            clearTimeout(timer);
            waiters.delete(done);
            if (waiters.size === 0) finishedWaiters.delete(sagaId);
            resolve();
          };
          const timer = setTimeout(done, Math.min(pollMs, left));
          waiters.add(done);
          finishedWaiters.set(sagaId, waiters);
        });
        pollMs = Math.min(pollMs * 2, 500);
      }
    },

    async drain(drainOptions = {}) {
      const limit = drainOptions.limit ?? 10_000;
      let runs = 0;
      while (runs < limit) {
        const rows = await claim(Math.min(32, limit - runs));
        if (rows.length === 0) break;
        await Promise.all(
          rows.map(async (row) => {
            sampleDb(row.db_now);
            const controller = new AbortController();
            running.set(row.saga_id, controller);
            try {
              await runClaimed(row, controller);
            } finally {
              if (running.get(row.saga_id) === controller) running.delete(row.saga_id);
            }
          }),
        );
        runs += rows.length;
        await new Promise((r) => setImmediate(r));
      }
      return runs;
    },

    async ready() {
      const workers = {
        ok: worker.concurrency === 0 || (!stopping && claimFailures === 0),
        running: running.size,
        concurrency: worker.concurrency,
        ...(stopping ? { error: 'STOPPED' } : claimFailures > 0 ? { error: 'CLAIM_FAILING' } : {}),
      };
      const shipped = await shippedMigrations();
      try {
        const rows = await db.query<{ name: string }>(
          `select name from ${s}.migrations where component = 'saga'`,
          [],
          'evident_saga_ready',
        );
        const applied = new Set(rows.map((r) => r.name));
        const pending = shipped.filter((name) => !applied.has(name));
        return {
          ready: pending.length === 0 && workers.ok,
          checks: {
            database: { ok: true },
            migrations: { ok: pending.length === 0, pending },
            workers,
          },
        };
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        // 42P01: the migrations table does not exist yet (the database answered).
        return {
          ready: false,
          checks: {
            database:
              code === '42P01'
                ? { ok: true }
                : { ok: false, error: typeof code === 'string' ? code : 'unreachable' },
            migrations: { ok: false, pending: shipped },
            workers,
          },
        };
      }
    },

    async stop() {
      if (stopping) return;
      stopping = true;
      stopObserving();
      unsubscribeClock?.();
      guardedPool?.off('error', onIdleError);
      if (renewTimer) clearInterval(renewTimer);
      for (const t of localWakes) clearTimeout(t);
      localWakes.clear();
      const ids = [...running.keys()];
      for (const c of running.values()) c.abort(new Error('the saga runtime is stopping'));
      wake();
      await loopDone;
      // Runs end at their next await once aborted; an append already sent completes first.
      const deadline = performance.now() + 10_000;
      while (running.size > 0 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      // Others may take these over at once instead of waiting for the leases to expire.
      try {
        await release(ids, 0, null);
      } catch (error) {
        logger.warn({ error: recordError(error).name }, 'could not release saga leases on stop');
      }
    },
  };
  return runtime;
}
