import { createHash } from 'node:crypto';
import {
  type Actor,
  createEnvelope,
  type Envelope,
  InvalidArgumentError,
  markSpanFailed,
} from '@evident/envelope';
import {
  assertStreamId,
  type Checkpoint,
  ConcurrencyError,
  type EventStore,
  isConcurrencyError,
  type RecordedEvent,
  type StreamId,
} from '@evident/eventstore';
import { trace } from '@opentelemetry/api';
import type {
  AnyMachineSnapshot,
  AnyStateMachine,
  ContextFrom,
  EventFromLogic,
  EventObject,
  StateValue,
} from 'xstate';
import {
  applyActions,
  decide,
  decideInitial,
  hasEffects,
  persist,
  restore,
  withRecordedGuards,
} from './decide.js';
import {
  IllegalTransitionError,
  isTransitionRejectedError,
  StateMachineError,
  TransitionRejectedError,
} from './errors.js';
import {
  type ActionHandler,
  type ActionJob,
  type ClaimedTimer,
  createJobRunner,
  createTimerStore,
  type JobOutcome,
  type JobRecord,
  type StepInfo,
  type TimerRecord,
  type TransactionalActionHandler,
} from './jobs.js';
import { Lru } from './lru.js';
import { inspectMachine } from './machineShape.js';
import {
  type DurableState,
  type GuardEvaluation,
  type HistoryEntry,
  type MachineRecordData,
  type MachineVersion,
  type PendingTimer,
  type PersistedMachineSnapshot,
  persistedSchemaVersion,
  type RejectionReason,
  type ScheduledAction,
  type SnapshotMigration,
  type StateTransitionedData,
  stateTransitionedType,
  type TransitionRejectedData,
  transitionRejectedType,
  upgradeSnapshot,
} from './persistedState.js';
import { planTransition, type TransitionPlan } from './planTransition.js';
import { statementName } from './statementName.js';

/** Options of {@link createDurableMachine}. */
export interface DurableMachineOptions<TMachine extends AnyStateMachine> {
  /** The event store holding the machine's streams; run `migrateStateMachines(store)` first. */
  readonly store: EventStore;
  /** Stream type of the entities, e.g. `claim`: each entity is the stream `{ streamType, id }`. */
  readonly streamType: string;
  /**
   * Version of this machine's shape. Raise it when states or context change, and register a
   * migration from the previous version when persisted instances need mapping.
   * @defaultValue 1
   */
  readonly version?: number;
  /**
   * `migrations[n]` maps a snapshot persisted by version `n` to version `n + 1`. Applied in order
   * on load; a version without one is taken as compatible (then every state it names must still
   * exist, or loading throws `UnknownStateError`).
   * @defaultValue {}
   */
  readonly migrations?: Readonly<Record<number, SnapshotMigration>>;
  /**
   * Handlers of the machine's named actions, run after commit as durable jobs. An action without
   * one here runs its implementation from `setup({ actions })` (called with `context`, `event`
   * and `params`; no `self` or `system`).
   * @defaultValue {}
   */
  readonly actions?: Readonly<
    Record<
      string,
      ActionHandler<ContextFrom<TMachine>> | TransactionalActionHandler<ContextFrom<TMachine>>
    >
  >;
  /** `source` of the events appended. @defaultValue 'evident.statemachines' */
  readonly source?: string;
  /** Times a send decides again after losing a race for the entity. @defaultValue 10 */
  readonly retries?: number;
  /** Entities whose latest state is kept in memory (0 to always read). @defaultValue 1000 */
  readonly cacheSize?: number;
  /** Append a `TransitionRejected` event when an event is rejected. @defaultValue true */
  readonly recordRejections?: boolean;
  /**
   * `inline`: a send runs its step's actions after commit, before it resolves (a worker still
   * picks up any that fail or are cut short). `worker`: only workers run them.
   * @defaultValue 'inline'
   */
  readonly runActions?: 'inline' | 'worker';
  /** Attempts of an action before its job is marked `failed`. @defaultValue 5 */
  readonly maxActionAttempts?: number;
  /** How long a claimed job or timer belongs to its worker before another may take it. @defaultValue 30000 */
  readonly leaseMs?: number;
}

/** Options of a send: who sends, and the audit context of the record it appends. */
export interface SendOptions {
  readonly actor: Actor;
  /**
   * Fail with `ConcurrencyError` unless the entity is at exactly this version (0: does not exist),
   * instead of deciding again on fresh state after a lost race.
   * @defaultValue undefined (decide again after a lost race, up to `retries` times)
   */
  readonly expectedVersion?: number;
  /** Workflow the step belongs to. @defaultValue a new workflow, rooted at the entity's first record */
  readonly correlationId?: string;
  /** What caused the step (an event or command id). @defaultValue the record's own id */
  readonly causationId?: string;
  /** The organisation whose data this is. @defaultValue none */
  readonly tenantId?: string;
  /** Non-PHI context (trace headers…). @defaultValue {} */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /**
   * Id of the record this send appends (transition or rejection). Sending again with the same id
   * returns the first outcome instead of stepping twice: safe client retries.
   * @defaultValue a fresh UUIDv7
   */
  readonly id?: string;
  /** Machine input, used only when the send creates the entity. @defaultValue undefined */
  readonly input?: unknown;
}

/** What a successful send, create or transitionTo returns. */
export interface SendResult<Context = unknown> {
  /** Stream version of the step. */
  readonly version: number;
  /** Whether this send created the entity (its creation step is `version - 1`). */
  readonly created: boolean;
  readonly from: StateValue | null;
  readonly to: StateValue;
  readonly event: EventObject;
  readonly guards: readonly GuardEvaluation[];
  readonly actions: readonly ScheduledAction[];
  /** The entity after the step (its `recordedAt` is the database's: see `load` or `history`). */
  readonly state: Omit<DurableState<Context>, 'recordedAt'>;
  /** Log checkpoint of the step; null when it was a replay of an earlier send with the same id. */
  readonly checkpoint: Checkpoint | null;
  /** Outcome of each action run inline (empty with `runActions: 'worker'`). */
  readonly actionOutcomes: readonly { readonly type: string; readonly outcome: JobOutcome }[];
}

/** The result of {@link DurableMachine.check}: what a send would do now, without doing it. */
export interface TransitionCheck {
  readonly accepted: boolean;
  /** Current version (0: the entity does not exist yet; the check ran on its initial state). */
  readonly version: number;
  readonly from: StateValue;
  /** The state it would reach (equal to `from` when rejected). */
  readonly to: StateValue;
  readonly guards: readonly GuardEvaluation[];
  readonly actions: readonly string[];
  readonly reason?: RejectionReason;
}

/** Options of {@link DurableMachine.runDue}. */
export interface RunDueOptions {
  /** Most jobs and most timers handled in this pass. @defaultValue 32 */
  readonly limit?: number;
  /** Only this entity's jobs and timers. @defaultValue every entity of the stream type */
  readonly entityId?: string;
}

/** Options of {@link DurableMachine.startWorker}. */
export interface WorkerOptions extends RunDueOptions {
  /** Longest sleep between passes when nothing is due. @defaultValue 1000 */
  readonly pollInterval?: number;
  /** Stops the worker when aborted. @defaultValue none: stop it with `stop()` */
  readonly signal?: AbortSignal;
  /**
   * Called when a pass fails (the database is unreachable…). The worker keeps going.
   * @defaultValue a `console.warn` naming the error's class and code, never its message
   */
  readonly onError?: (error: unknown) => void;
}

/** A running worker; `stop()` resolves once its current pass is over. */
export interface Worker {
  stop(): Promise<void>;
}

/** An XState machine made durable on the event store. Create it with {@link createDurableMachine}. */
export interface DurableMachine<TMachine extends AnyStateMachine> {
  readonly machine: TMachine;
  /** The store the entities live in. */
  readonly store: EventStore;
  readonly streamType: string;
  readonly version: MachineVersion;
  /**
   * Decide the step `event` causes with XState's pure `transition()`, append it as one
   * `StateTransitioned` event carrying the snapshot (optimistic concurrency on the entity's
   * version), then run its actions as durable jobs. An entity that does not exist is created first
   * (its creation step is appended in the same statement).
   *
   * @throws TransitionRejectedError when the current state does not accept the event (recorded
   * as `TransitionRejected` unless `recordRejections: false`).
   * @throws ConcurrencyError when `expectedVersion` does not hold, or every retry lost its race.
   * @throws UnknownStateError when the stored state no longer exists and no migration maps it.
   */
  send(
    entityId: string,
    event: EventFromLogic<TMachine>,
    options: SendOptions,
  ): Promise<SendResult<ContextFrom<TMachine>>>;
  /**
   * Create the entity in its initial state (XState's `initialTransition`, entry actions as jobs).
   *
   * @throws ConcurrencyError when it already exists.
   */
  create(entityId: string, options: SendOptions): Promise<SendResult<ContextFrom<TMachine>>>;
  /** The entity's current state, migrated to this machine version; undefined if it does not exist. */
  load(entityId: string): Promise<DurableState<ContextFrom<TMachine>> | undefined>;
  /** What `send(entityId, event)` would do now; writes nothing and runs nothing. */
  check(entityId: string, event: EventFromLogic<TMachine>): Promise<TransitionCheck>;
  /**
   * Find the event that takes the entity from its current state to `target` in one legal step
   * (guards evaluated on its current context). Writes nothing.
   */
  planTransitionTo(
    entityId: string,
    target: StateValue,
    options?: { readonly events?: readonly EventFromLogic<TMachine>[] },
  ): Promise<TransitionPlan>;
  /**
   * Take the entity to `target` with the one legal step that leads there (as planned by
   * `planTransitionTo`, again on fresh state after a lost race).
   *
   * @throws IllegalTransitionError when no accepted event leads there; nothing is written.
   */
  transitionTo(
    entityId: string,
    target: StateValue,
    options: SendOptions & { readonly events?: readonly EventFromLogic<TMachine>[] },
  ): Promise<SendResult<ContextFrom<TMachine>>>;
  /**
   * The entity as it was at `at` (database time, to the millisecond): the last record at or
   * before it, with the step that produced it. Undefined before the entity existed.
   */
  stateAt(
    entityId: string,
    at: Date | string,
  ): Promise<HistoryEntry<ContextFrom<TMachine>> | undefined>;
  /** Every recorded step of the entity, oldest first. */
  history(entityId: string): Promise<HistoryEntry<ContextFrom<TMachine>>[]>;
  /** Run the jobs and fire the timers that are due now, once. */
  runDue(options?: RunDueOptions): Promise<{ readonly actions: number; readonly timers: number }>;
  /** Run due jobs and timers until stopped, sleeping until the next one is due. */
  startWorker(options?: WorkerOptions): Worker;
  /** The entity's action jobs, for operators and tests. */
  jobs(entityId: string): Promise<JobRecord[]>;
  /** The entity's timers, for operators and tests. */
  timers(entityId: string): Promise<TimerRecord[]>;
}

/** An entity's latest state as held between sends. */
interface Current {
  readonly version: number;
  readonly snapshot: AnyMachineSnapshot;
  readonly persisted: PersistedMachineSnapshot;
  readonly timers: readonly PendingTimer[];
}

/** A record of a step, before it becomes an envelope. */
type PlannedRecord =
  | { readonly type: typeof stateTransitionedType; readonly data: StateTransitionedData }
  | { readonly type: typeof transitionRejectedType; readonly data: TransitionRejectedData };

/** A step ready to append. */
interface Plan {
  readonly envelopes: Envelope[];
  readonly records: PlannedRecord[];
  readonly after: Current;
  readonly created: boolean;
  readonly rejection?: { readonly reason: RejectionReason; readonly guards: GuardEvaluation[] };
  /** A timer the entity no longer has pending: nothing to append. */
  readonly stale?: boolean;
}

/** A step committed, its actions not yet run. */
interface Committed {
  readonly result: SendResult<never>;
  readonly runActions: () => Promise<{ type: string; outcome: JobOutcome }[]>;
}

/** How a step chooses its event: given, planned toward a target, or fired by a timer. */
type EventChoice =
  | { readonly kind: 'event'; readonly event: EventObject }
  | {
      readonly kind: 'target';
      readonly target: StateValue;
      readonly events?: readonly EventObject[];
    }
  | {
      readonly kind: 'timer';
      readonly id: string;
      readonly version: number;
      readonly event: EventObject;
    };

/** Spans of transitions, through the OpenTelemetry API only (no-ops without an SDK). */
const tracer = trace.getTracer('@evident/statemachines', '0.1.0');

const defaultSource = 'evident.statemachines';
const timerActor: Actor = { id: 'timer', role: 'system' };
const initEventType = 'xstate.init';

/** A UUID derived from another id, so a retried creation carries the same ids as the first try. */
function derivedId(id: string, purpose: string): string {
  const h = createHash('sha256').update(`${purpose}:${id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function checkNonNegativeInteger(name: string, value: unknown, min = 0): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < min)) {
    throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  }
}

function checkEvent(event: unknown): EventObject {
  if (
    typeof event !== 'object' ||
    event === null ||
    typeof (event as { type?: unknown }).type !== 'string' ||
    (event as { type: string }).type.length === 0 ||
    (event as { type: string }).type.length > 200
  ) {
    throw new InvalidArgumentError('event must be an object with a type of 1-200 characters');
  }
  if ((event as { type: string }).type.startsWith('xstate.')) {
    throw new InvalidArgumentError(
      'xstate.* events are the machine runtime’s own; send domain events',
    );
  }
  return event as EventObject;
}

function toDurableState<Context>(
  entityId: string,
  recorded: RecordedEvent,
  data: MachineRecordData,
): DurableState<Context> {
  return {
    entityId,
    version: recorded.streamVersion,
    recordedAt: recorded.recordedAt,
    value: data.snapshot.value,
    context: data.snapshot.context as Context,
    status: data.snapshot.status,
    machine: data.machine,
    timers: data.timers,
    snapshot: data.snapshot,
  };
}

function toHistoryEntry<Context>(entityId: string, recorded: RecordedEvent): HistoryEntry<Context> {
  const data = recorded.data as MachineRecordData;
  const common = {
    version: recorded.streamVersion,
    recordedAt: recorded.recordedAt,
    eventId: recorded.id,
    event: data.event,
    guards: data.guards,
    actor: recorded.actor,
    correlationId: recorded.correlationId,
    causationId: recorded.causationId,
    state: toDurableState<Context>(entityId, recorded, data),
  };
  if (recorded.type === transitionRejectedType) {
    const d = data as TransitionRejectedData;
    return {
      ...common,
      kind: 'rejected',
      from: d.state,
      to: d.state,
      actions: [],
      reason: d.reason,
    };
  }
  const d = data as StateTransitionedData;
  return { ...common, kind: 'transitioned', from: d.from, to: d.to, actions: d.actions };
}

function assertRecord(recorded: RecordedEvent): void {
  if (recorded.type !== stateTransitionedType && recorded.type !== transitionRejectedType) {
    throw new StateMachineError(
      'MACHINE_VERSION_MISMATCH',
      `the stream holds a ${recorded.type} event at version ${recorded.streamVersion}; a machine's stream holds only its own records`,
    );
  }
}

/**
 * Make an XState v5 machine durable on the event store: every step an event with its snapshot,
 * guards recorded, rejections recorded, actions as durable jobs, delayed transitions as durable
 * timers, any past state one query away.
 *
 * @example
 * ```ts
 * const reviews = createDurableMachine(documentReview, { store, streamType: 'document' });
 * await reviews.send('doc-1', { type: 'SUBMIT' }, { actor: { id: 'u-7', role: 'author' } });
 * const { value } = (await reviews.load('doc-1'))!;
 * ```
 * @throws InvalidArgumentError when the machine cannot be made durable (inline guards or actions,
 * invoked actors, an action without implementation) or an option is malformed.
 */
export function createDurableMachine<TMachine extends AnyStateMachine>(
  machine: TMachine,
  options: DurableMachineOptions<TMachine>,
): DurableMachine<TMachine> {
  const { store, streamType } = options;
  assertStreamId({ type: streamType, id: 'x' });
  checkNonNegativeInteger('version', options.version, 1);
  checkNonNegativeInteger('retries', options.retries);
  checkNonNegativeInteger('cacheSize', options.cacheSize);
  checkNonNegativeInteger('maxActionAttempts', options.maxActionAttempts, 1);
  checkNonNegativeInteger('leaseMs', options.leaseMs, 1);
  const current: MachineVersion = { id: machine.id, version: options.version ?? 1 };
  const migrations = options.migrations ?? {};
  const handlers = options.actions ?? {};
  const source = options.source ?? defaultSource;
  const retries = options.retries ?? 10;
  const recordRejections = options.recordRejections ?? true;
  const runInline = (options.runActions ?? 'inline') === 'inline';
  const leaseMs = options.leaseMs ?? 30_000;

  const shape = inspectMachine(machine);
  const implementations = machine.implementations.actions as Record<string, unknown>;
  for (const name of shape.actions) {
    if (!(name in handlers) && typeof implementations[name] !== 'function') {
      throw new InvalidArgumentError(
        `action ${name} has no implementation: pass it in options.actions or setup({ actions })`,
      );
    }
  }
  const deciding = withRecordedGuards(machine);

  const cache = new Lru<string, Current>(options.cacheSize ?? 1000);
  // Sends to one entity from this process queue up rather than race each other; races with other
  // processes are settled by the expected-version check.
  const queues = new Map<string, Promise<unknown>>();
  const serialize = <T>(entityId: string, fn: () => Promise<T>): Promise<T> => {
    const previous = queues.get(entityId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    queues.set(entityId, settled);
    void settled.then(() => {
      if (queues.get(entityId) === settled) queues.delete(entityId);
    });
    return run;
  };

  const streamOf = (entityId: string): StreamId =>
    assertStreamId({ type: streamType, id: entityId });

  function fromRecord(recorded: RecordedEvent): Current {
    assertRecord(recorded);
    const data = recorded.data as MachineRecordData;
    const persisted = upgradeSnapshot(machine, current, data.machine, data.snapshot, migrations);
    return {
      version: recorded.streamVersion,
      snapshot: restore(deciding, persisted),
      persisted,
      timers: data.timers,
    };
  }

  async function read(entityId: string): Promise<Current | null> {
    const [last] = await store.readStream(streamOf(entityId), { direction: 'backwards', limit: 1 });
    if (!last) return null;
    const loaded = fromRecord(last);
    cache.set(entityId, loaded);
    return loaded;
  }

  async function readVersion(entityId: string, version: number): Promise<RecordedEvent> {
    const [recorded] = await store.readStream(streamOf(entityId), {
      fromVersion: version,
      toVersion: version,
    });
    if (!recorded) {
      throw new StateMachineError(
        'MACHINE_VERSION_MISMATCH',
        `the ${streamType} stream has no record at version ${version}`,
      );
    }
    assertRecord(recorded);
    return recorded;
  }

  /** Pure: the creation step, XState's initial transition. */
  function planCreation(send: SendOptions): { record: PlannedRecord; after: Current } {
    const init = decideInitial(deciding, send.input);
    const outcome = applyActions(init.executable, [], 1, null);
    const persisted = persist(deciding, init.next);
    const data: StateTransitionedData = {
      machine: current,
      from: null,
      to: init.next.value,
      event: (send.input === undefined
        ? { type: initEventType }
        : { type: initEventType, input: send.input }) as EventObject,
      guards: init.guards,
      actions: outcome.actions,
      snapshot: persisted,
      timers: outcome.timers,
      ...(hasEffects(outcome.effects) ? { effects: outcome.effects } : {}),
    };
    return {
      record: { type: stateTransitionedType, data },
      after: {
        version: 1,
        snapshot: restore(deciding, persisted),
        persisted,
        timers: outcome.timers,
      },
    };
  }

  /** Pure: the envelopes of planned records, sharing one workflow. */
  function envelopesOf(records: readonly PlannedRecord[], send: SendOptions): Envelope[] {
    const last = records.length - 1;
    // With a caller's id, a creation appended along with the step gets an id derived from it, so
    // a retried send carries the same ids and the store recognises the retry.
    const ids = records.map((_, i) =>
      send.id === undefined ? undefined : i === last ? send.id : derivedId(send.id, `record-${i}`),
    );
    let correlationId = send.correlationId;
    return records.map((record, i) => {
      const envelope = createEnvelope({
        type: record.type,
        schemaVersion: persistedSchemaVersion,
        data: record.data,
        source,
        actor: send.actor,
        ...(ids[i] ? { id: ids[i] } : {}),
        ...(correlationId ? { correlationId } : {}),
        ...(send.causationId ? { causationId: send.causationId } : {}),
        ...(send.tenantId ? { tenantId: send.tenantId } : {}),
        ...(send.metadata ? { metadata: send.metadata } : {}),
      });
      // A creation and the step appended with it belong to one workflow.
      correlationId ??= envelope.correlationId;
      return envelope;
    });
  }

  /** Pure: the records a step appends, from the entity's current state. */
  function plan(
    loaded: Current | null,
    choice: EventChoice,
    send: SendOptions,
  ): Plan | IllegalTransitionError {
    const records: PlannedRecord[] = [];
    let state = loaded;
    if (!state) {
      const creation = planCreation(send);
      records.push(creation.record);
      state = creation.after;
    }
    const { snapshot, persisted, timers } = state;
    if (choice.kind === 'target') {
      const planned = planTransition(deciding, snapshot, choice.target, {
        ...(choice.events ? { events: choice.events } : {}),
      });
      if (!planned.legal) {
        return new IllegalTransitionError(snapshot.value, choice.target, planned.tried);
      }
      choice = { kind: 'event', event: planned.event };
    }
    const fired = choice.kind === 'timer' ? { id: choice.id, version: choice.version } : null;
    if (fired && !timers.some((t) => t.id === fired.id && t.version === fired.version)) {
      // The state that scheduled the timer was left, or the timer already fired: nothing to do.
      return { envelopes: [], records: [], after: state, created: false, stale: true };
    }
    const event = choice.event;
    const version = state.version + 1;
    const decision = decide(deciding, snapshot, event);
    let after: Current;
    let rejection: Plan['rejection'];
    if (decision.kind === 'transitioned') {
      const outcome = applyActions(decision.executable, timers, version, fired);
      const nextPersisted = persist(deciding, decision.next);
      records.push({
        type: stateTransitionedType,
        data: {
          machine: current,
          from: snapshot.value,
          to: decision.next.value,
          event,
          guards: decision.guards,
          actions: outcome.actions,
          snapshot: nextPersisted,
          timers: outcome.timers,
          ...(hasEffects(outcome.effects) ? { effects: outcome.effects } : {}),
        },
      });
      after = {
        version,
        snapshot: decision.next,
        persisted: nextPersisted,
        timers: outcome.timers,
      };
    } else {
      const remaining = fired
        ? timers.filter((t) => !(t.id === fired.id && t.version === fired.version))
        : timers;
      records.push({
        type: transitionRejectedType,
        data: {
          machine: current,
          state: snapshot.value,
          event,
          reason: decision.reason,
          guards: decision.guards,
          snapshot: persisted,
          timers: remaining,
          ...(fired ? { effects: { actions: [], schedule: [], cancel: [], fired } } : {}),
        },
      });
      rejection = { reason: decision.reason, guards: decision.guards };
      after = { version, snapshot, persisted, timers: remaining };
    }
    return {
      envelopes: envelopesOf(records, send),
      records,
      after,
      created: !loaded,
      ...(rejection ? { rejection } : {}),
    };
  }

  const sql = {
    versionAt: `select stream_version as v from "${store.schema}".events
                 where stream_type = $1 and stream_id = $2 and recorded_at <= $3::timestamptz
                 order by stream_version desc limit 1`,
  };
  const sqlNames = { versionAt: statementName(sql.versionAt) };

  const jobRunner = createJobRunner({
    db: store.database,
    schema: `"${store.schema}"`,
    streamType,
    leaseMs,
    maxAttempts: options.maxActionAttempts ?? 5,
    handlerFor(type) {
      const handler = handlers[type];
      if (handler) return handler as ActionHandler | TransactionalActionHandler;
      const implementation = implementations[type];
      if (typeof implementation === 'function') {
        // XState's own signature: ({ context, event }, params). There is no live actor to give.
        return ((job: ActionJob) =>
          (implementation as (args: unknown, params: unknown) => unknown)(
            { context: job.state.context, event: job.event },
            job.params,
          )) as ActionHandler;
      }
      throw new InvalidArgumentError(`action ${type} has no implementation`);
    },
    async readStep(entityId, version) {
      const data = (await readVersion(entityId, version)).data as MachineRecordData;
      return {
        state: { value: data.snapshot.value, context: data.snapshot.context },
        event: data.event,
      };
    },
  });
  const timerStore = createTimerStore(store.database, `"${store.schema}"`, streamType, leaseMs);

  /** Run the actions of freshly committed records, in order, after the commit. */
  async function runActionsOf(
    entityId: string,
    records: readonly PlannedRecord[],
    firstVersion: number,
  ): Promise<{ type: string; outcome: JobOutcome }[]> {
    const outcomes: { type: string; outcome: JobOutcome }[] = [];
    if (!runInline) return outcomes;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (record.type !== stateTransitionedType) continue;
      const { data } = record;
      const version = firstVersion + i;
      const info: StepInfo = {
        state: { value: data.snapshot.value, context: data.snapshot.context },
        event: data.event,
      };
      for (const action of data.actions) {
        let outcome: JobOutcome;
        try {
          outcome = await jobRunner.run(
            { entityId, version, index: action.index },
            action.type,
            info,
          );
        } catch {
          // The step is committed whatever happens here (a send that threw now would be retried
          // and step twice): the job stays due, and a worker takes it.
          outcome = 'retry';
        }
        outcomes.push({ type: action.type, outcome });
      }
    }
    return outcomes;
  }

  function resultOf(
    entityId: string,
    version: number,
    data: StateTransitionedData,
    extra: Pick<SendResult, 'created' | 'checkpoint' | 'actionOutcomes'>,
  ): SendResult<ContextFrom<TMachine>> {
    return {
      version,
      from: data.from,
      to: data.to,
      event: data.event,
      guards: data.guards,
      actions: data.actions,
      state: {
        entityId,
        version,
        value: data.snapshot.value,
        context: data.snapshot.context as ContextFrom<TMachine>,
        status: data.snapshot.status,
        machine: data.machine,
        timers: data.timers,
        snapshot: data.snapshot,
      },
      ...extra,
    };
  }

  /** The outcome of an earlier send with the same record id, as this send's answer. */
  async function replay(
    entityId: string,
    version: number,
  ): Promise<SendResult<ContextFrom<TMachine>>> {
    const recorded = await readVersion(entityId, version);
    if (recorded.type === transitionRejectedType) {
      const data = recorded.data as TransitionRejectedData;
      throw new TransitionRejectedError({
        state: data.state,
        eventType: data.event.type,
        version,
        guards: data.guards,
        recorded: true,
        reason: data.reason,
      });
    }
    return resultOf(entityId, version, recorded.data as StateTransitionedData, {
      created: false,
      checkpoint: null,
      actionOutcomes: [],
    });
  }

  /** The version of the record a send with this id appended after its expected version. */
  async function findRecord(entityId: string, send: SendOptions): Promise<number | undefined> {
    const after = await store.readStream(streamOf(entityId), {
      fromVersion: send.expectedVersion! + 1,
      limit: 1000,
    });
    return after.find((e) => e.id === send.id)?.streamVersion;
  }

  function checkSendOptions(send: SendOptions): void {
    if (!send || typeof send !== 'object' || !send.actor) {
      throw new InvalidArgumentError('send needs options { actor }');
    }
    checkNonNegativeInteger('expectedVersion', send.expectedVersion);
  }

  /**
   * Decide and append one step, deciding again on fresh state after a lost race. Returns 'stale'
   * for a timer the entity no longer has.
   */
  async function step(
    entityId: string,
    choice: EventChoice,
    send: SendOptions,
  ): Promise<SendResult<ContextFrom<TMachine>> | 'stale'> {
    const stream = streamOf(entityId);
    checkSendOptions(send);
    const committed = await serialize(entityId, () => commitStep(entityId, stream, choice, send));
    return typeof committed === 'object' && 'runActions' in committed
      ? withActions(committed)
      : committed;
  }

  /**
   * Run a committed step's actions outside the entity's queue: an action may well send the
   * entity its own outcome, which would otherwise wait for the action to finish.
   */
  async function withActions(committed: Committed): Promise<SendResult<ContextFrom<TMachine>>> {
    return { ...committed.result, actionOutcomes: await committed.runActions() };
  }

  async function commitStep(
    entityId: string,
    stream: StreamId,
    choice: EventChoice,
    send: SendOptions,
  ): Promise<Committed | SendResult<ContextFrom<TMachine>> | 'stale'> {
    const strict = send.expectedVersion !== undefined;
    for (let attempt = 0; ; attempt++) {
      // The cache is only a guess: the append's version check is what makes the step safe, and
      // nothing is refused on a cached state without reading the entity again.
      const cached = !strict && attempt === 0 ? cache.get(entityId) : undefined;
      const loaded = cached ?? (await read(entityId));
      const version = loaded?.version ?? 0;
      if (strict && version !== send.expectedVersion) {
        // A retry of a send that did commit finds the entity past its expected version: the
        // record with its id, if there, is the answer.
        const earlier = send.id === undefined ? undefined : await findRecord(entityId, send);
        if (earlier !== undefined) return replay(entityId, earlier);
        throw new ConcurrencyError(stream, send.expectedVersion!, version);
      }
      const planned = plan(loaded, choice, send);
      if (planned instanceof IllegalTransitionError) {
        if (cached) continue;
        throw planned;
      }
      if (planned.stale) {
        if (cached) continue;
        return 'stale';
      }
      const { rejection } = planned;
      // A fired timer is always recorded: its row is settled by the record.
      if (rejection && !recordRejections && choice.kind !== 'timer') {
        if (cached) continue;
        throw new TransitionRejectedError({
          state: planned.after.snapshot.value,
          eventType: (choice as { event: EventObject }).event.type,
          version,
          guards: rejection.guards,
          recorded: false,
          reason: rejection.reason,
        });
      }
      let appended: Awaited<ReturnType<EventStore['append']>>;
      try {
        appended = await store.append(stream, planned.envelopes, {
          expectedVersion: loaded ? loaded.version : 'no_stream',
        });
      } catch (error) {
        if (!isConcurrencyError(error)) throw error;
        cache.delete(entityId);
        if (strict || attempt >= retries) throw error;
        // A little jitter keeps two processes that lost to each other from colliding again.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
        continue;
      }
      const lastVersion = planned.after.version;
      if (appended.nextExpectedVersion !== lastVersion) {
        // The same record id was stored by an earlier send: answer with what that one did.
        cache.delete(entityId);
        return replay(entityId, appended.nextExpectedVersion);
      }
      cache.set(entityId, planned.after);
      const last = planned.records[planned.records.length - 1]!;
      if (last.type === transitionRejectedType) {
        throw new TransitionRejectedError({
          state: last.data.state,
          eventType: last.data.event.type,
          version: lastVersion,
          guards: last.data.guards,
          recorded: true,
          reason: last.data.reason,
        });
      }
      const firstVersion = lastVersion - planned.records.length + 1;
      return {
        result: resultOf(entityId, lastVersion, last.data, {
          created: planned.created,
          checkpoint: appended.checkpoint,
          actionOutcomes: [],
        }),
        runActions: () => runActionsOf(entityId, planned.records, firstVersion),
      };
    }
  }

  async function fireTimer(t: ClaimedTimer): Promise<void> {
    try {
      const result = await step(
        t.entityId,
        { kind: 'timer', id: t.id, version: t.version, event: t.event },
        { actor: timerActor, correlationId: t.correlationId, causationId: t.causeEventId },
      );
      if (result === 'stale') await timerStore.markStale(t);
    } catch (error) {
      // A guard refusing the delayed event is a recorded rejection, which settled the timer.
      if (isTransitionRejectedError(error)) return;
      await timerStore.release(t, error);
      throw error;
    }
  }

  async function runDue(runOptions: RunDueOptions = {}) {
    const limit = runOptions.limit ?? 32;
    checkNonNegativeInteger('limit', limit, 1);
    const entityId = runOptions.entityId === undefined ? null : streamOf(runOptions.entityId).id;
    let actions = 0;
    for (const job of await jobRunner.due(limit, entityId)) {
      const outcome = await jobRunner.run(job, job.type);
      if (outcome !== 'skipped') actions += 1;
    }
    const timers = await timerStore.claimDue(limit, entityId);
    let failure: unknown;
    for (const t of timers) {
      await fireTimer(t).catch((e) => {
        failure ??= e;
      });
    }
    if (failure !== undefined) throw failure;
    return { actions, timers: timers.length };
  }

  function stateOf(entityId: string, recorded: RecordedEvent, loaded: Current) {
    return {
      entityId,
      version: loaded.version,
      recordedAt: recorded.recordedAt,
      value: loaded.persisted.value,
      context: loaded.persisted.context as ContextFrom<TMachine>,
      status: loaded.persisted.status,
      machine: current,
      timers: loaded.timers,
      snapshot: loaded.persisted,
    };
  }

  const durable: DurableMachine<TMachine> = {
    machine,
    store,
    streamType,
    version: current,

    send(entityId, event, sendOptions) {
      return tracer.startActiveSpan(
        'evident.statemachine.send',
        {
          attributes: {
            'evident.machine': machine.id,
            'evident.machine.version': String(current),
            'evident.stream.type': streamType,
            'evident.event.type': typeof event?.type === 'string' ? event.type : 'invalid',
            ...(sendOptions?.correlationId
              ? { 'evident.correlation_id': sendOptions.correlationId }
              : {}),
          },
        },
        async (span): Promise<SendResult<ContextFrom<TMachine>>> => {
          try {
            const result = (await step(
              entityId,
              { kind: 'event', event: checkEvent(event) },
              sendOptions,
            )) as SendResult<ContextFrom<TMachine>>;
            // State names, never context: the context may hold PHI.
            span.setAttributes({
              'evident.state.from': JSON.stringify(result.from),
              'evident.state.to': JSON.stringify(result.to),
              'evident.stream.version': result.version,
            });
            return result;
          } catch (error) {
            markSpanFailed(span, error);
            throw error;
          } finally {
            span.end();
          }
        },
      );
    },

    async create(entityId, sendOptions) {
      const stream = streamOf(entityId);
      checkSendOptions(sendOptions);
      const committed = await serialize(
        entityId,
        async (): Promise<Committed | SendResult<ContextFrom<TMachine>>> => {
          const { record, after } = planCreation(sendOptions);
          const appended = await store.append(stream, envelopesOf([record], sendOptions), {
            expectedVersion: 'no_stream',
          });
          if (appended.nextExpectedVersion !== 1) {
            return replay(entityId, appended.nextExpectedVersion);
          }
          cache.set(entityId, after);
          return {
            result: resultOf(entityId, 1, record.data as StateTransitionedData, {
              created: true,
              checkpoint: appended.checkpoint,
              actionOutcomes: [],
            }),
            runActions: () => runActionsOf(entityId, [record], 1),
          };
        },
      );
      return 'runActions' in committed ? withActions(committed) : committed;
    },

    async load(entityId) {
      const stream = streamOf(entityId);
      const [last] = await store.readStream(stream, { direction: 'backwards', limit: 1 });
      if (!last) return undefined;
      const loaded = fromRecord(last);
      cache.set(entityId, loaded);
      return stateOf(entityId, last, loaded);
    },

    async check(entityId, event) {
      checkEvent(event);
      const loaded = await read(entityId);
      const snapshot = loaded?.snapshot ?? planCreation({ actor: timerActor }).after.snapshot;
      const version = loaded?.version ?? 0;
      const decision = decide(deciding, snapshot, event);
      if (decision.kind === 'rejected') {
        return {
          accepted: false,
          version,
          from: snapshot.value,
          to: snapshot.value,
          guards: decision.guards,
          actions: [],
          reason: decision.reason,
        };
      }
      return {
        accepted: true,
        version,
        from: snapshot.value,
        to: decision.next.value,
        guards: decision.guards,
        actions: applyActions(decision.executable, [], 0, null).actions.map((a) => a.type),
      };
    },

    async planTransitionTo(entityId, target, planOptions = {}) {
      const loaded = await read(entityId);
      const snapshot = loaded?.snapshot ?? planCreation({ actor: timerActor }).after.snapshot;
      return planTransition(deciding, snapshot, target, {
        ...planOptions,
        version: loaded?.version ?? 0,
      });
    },

    async transitionTo(entityId, target, sendOptions) {
      const result = await step(
        entityId,
        { kind: 'target', target, ...(sendOptions?.events ? { events: sendOptions.events } : {}) },
        sendOptions,
      );
      return result as SendResult<ContextFrom<TMachine>>;
    },

    async stateAt(entityId, at) {
      const atMs =
        at instanceof Date ? at.getTime() : typeof at === 'string' ? Date.parse(at) : Number.NaN;
      if (!Number.isFinite(atMs)) {
        throw new InvalidArgumentError('at must be a Date or an ISO 8601 timestamp');
      }
      const stream = streamOf(entityId);
      // One indexed query for the version (the events table's primary key, read backwards from
      // the newest record), one read of that record: two round trips whatever the history's size.
      const [row] = await store.database.query<{ v: string | number }>(
        sql.versionAt,
        [streamType, stream.id, new Date(atMs).toISOString()],
        sqlNames.versionAt,
      );
      const found =
        row === undefined
          ? undefined
          : (await store.readStream(stream, { fromVersion: Number(row.v), limit: 1 }))[0];
      if (!found) return undefined;
      assertRecord(found);
      return toHistoryEntry<ContextFrom<TMachine>>(entityId, found);
    },

    async history(entityId) {
      const events = await store.readStream(streamOf(entityId));
      return events.map((recorded) => {
        assertRecord(recorded);
        return toHistoryEntry<ContextFrom<TMachine>>(entityId, recorded);
      });
    },

    runDue,

    startWorker(workerOptions = {}) {
      const pollInterval = workerOptions.pollInterval ?? 1000;
      checkNonNegativeInteger('pollInterval', pollInterval, 1);
      const onError =
        workerOptions.onError ??
        ((error: unknown) => {
          // Class and code only: a message may carry what a handler put in it.
          const e = error as { name?: unknown; code?: unknown } | null;
          console.warn(
            `@evident/statemachines worker (${streamType}): a pass failed with ${String(
              e?.name ?? 'a non-Error',
            )}${typeof e?.code === 'string' ? ` ${e.code}` : ''}`,
          );
        });
      let stopped = false;
      let wake: (() => void) | undefined;
      const sleep = (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      const stop = () => {
        stopped = true;
        wake?.();
      };
      if (workerOptions.signal?.aborted) stopped = true;
      workerOptions.signal?.addEventListener('abort', stop, { once: true });
      const loop = (async () => {
        while (!stopped) {
          let busy = false;
          try {
            const done = await runDue(workerOptions);
            busy = done.actions + done.timers > 0;
          } catch (error) {
            onError(error);
          }
          if (stopped || busy) continue;
          let wait = pollInterval;
          try {
            const next = await jobRunner.nextDueInMs();
            if (next !== null) wait = Math.min(wait, Math.max(1, Math.ceil(next)));
          } catch (error) {
            onError(error);
          }
          if (!stopped) await sleep(wait);
        }
      })();
      return {
        async stop() {
          stop();
          await loop;
        },
      };
    },

    jobs: (entityId) => jobRunner.list(streamOf(entityId).id),
    timers: (entityId) => timerStore.list(streamOf(entityId).id),
  };
  return durable;
}
