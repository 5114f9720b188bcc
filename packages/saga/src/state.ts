import type { RecordedError } from './errors.js';
import type {
  CompensationIntent,
  CompensationRun,
  DeadLetterContext,
  FailurePoint,
  SagaEventData,
  SagaEventType,
} from './events.js';

/**
 * Where an instance is. `running`, `sleeping` (a timer), `waiting` (a signal), `retrying` (a
 * step's back-off) and `compensating` are in progress; `completed`, `compensated`,
 * `dead_lettered` and `resolved` (a dead letter an operator closed) are where it stops.
 */
export type SagaStatus =
  | 'running'
  | 'sleeping'
  | 'waiting'
  | 'retrying'
  | 'compensating'
  | 'completed'
  | 'compensated'
  | 'dead_lettered'
  | 'resolved';

/** Statuses in which nothing more happens unless an operator acts. */
export const finalStatuses: ReadonlySet<SagaStatus> = new Set([
  'completed',
  'compensated',
  'dead_lettered',
  'resolved',
]);

/** One event of a saga stream, as the fold reads it. */
export interface FoldEvent {
  readonly id: string;
  readonly type: string;
  readonly data: unknown;
  /** Database time (ms since the epoch); for events not yet read back, the runtime's estimate. */
  readonly recordedAt: number;
  readonly correlationId: string;
  readonly tenantId?: string | undefined;
}

/** Progress of one attempt sequence: a step's, or its compensation's. */
export interface AttemptsState {
  status: 'started' | 'succeeded' | 'failed' | 'retrying';
  attempt: number;
  /** Attempts made before the last operator retry (the budget restarts there). */
  attemptBase: number;
  /** When the current attempt sequence began (database time), for the step's total timeout. */
  firstStartedAt: number | null;
  idempotencyKey: string;
  retryAt: number | null;
  error: RecordedError | null;
  result: unknown;
}

/** A step's state, with its compensation's. */
export interface StepState extends AttemptsState {
  readonly name: string;
  compensation: CompensationIntent | null;
  comp: (AttemptsState & { transition: string }) | null;
}

/** A received signal, consumed or not. */
export interface SignalState {
  readonly eventId: string;
  readonly type: string;
  readonly data: unknown;
  readonly occurredAt: string;
  readonly source: string;
  readonly correlationId: string;
  consumed: boolean;
}

/** Everything the stream of one instance says, folded. */
export interface InstanceState {
  readonly id: string;
  saga: string;
  version: number;
  correlationId: string;
  tenantId: string | undefined;
  input: unknown;
  status: SagaStatus;
  /** Version of the last folded event. */
  streamVersion: number;
  lastEventId: string | null;
  startedAt: number;
  updatedAt: number;
  readonly steps: Map<string, StepState>;
  /** Steps in the order they succeeded: compensation runs the reverse. */
  readonly completed: string[];
  readonly results: Record<string, unknown>;
  readonly conditions: Map<string, boolean>;
  readonly timers: Map<string, { readonly wakeAt: number; fired: boolean }>;
  readonly waits: Map<
    string,
    {
      readonly eventType: string;
      readonly key: string;
      readonly until: number | null;
      readonly timeoutMs: number | null;
      done: boolean;
    }
  >;
  readonly signals: SignalState[];
  /** The forward failure the instance is handling, if any. */
  failure: FailurePoint | null;
  /** Compensation has begun (after a failure, or because an operator asked). */
  compensating: boolean;
  /** Compensations that succeeded, in order. */
  readonly compensated: string[];
  deadLetter: DeadLetterContext | null;
  resolution: { readonly operator: unknown; readonly reason: string } | null;
}

/** An empty instance, before its `SagaStarted`. */
export function emptyState(id: string): InstanceState {
  return {
    id,
    saga: '',
    version: 0,
    correlationId: '',
    tenantId: undefined,
    input: undefined,
    status: 'running',
    streamVersion: 0,
    lastEventId: null,
    startedAt: 0,
    updatedAt: 0,
    steps: new Map(),
    completed: [],
    results: {},
    conditions: new Map(),
    timers: new Map(),
    waits: new Map(),
    signals: [],
    failure: null,
    compensating: false,
    compensated: [],
    deadLetter: null,
    resolution: null,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
const at = (until: string | null, base: number, delayMs: number | null) =>
  until !== null ? Date.parse(until) : base + (delayMs ?? 0);

function step(state: InstanceState, name: string): StepState {
  let s = state.steps.get(name);
  if (!s) {
    s = {
      name,
      status: 'started',
      attempt: 0,
      attemptBase: 0,
      firstStartedAt: null,
      idempotencyKey: '',
      retryAt: null,
      error: null,
      result: undefined,
      compensation: null,
      comp: null,
    };
    state.steps.set(name, s);
  }
  return s;
}

/** A step's start (a `StepStarted`, or one carried by the previous step's `StepSucceeded`). */
export function applyStarted(
  state: InstanceState,
  d: SagaEventData['StepStarted'],
  recordedAt: number,
): void {
  const s = step(state, d.step);
  s.status = 'started';
  s.attempt = d.attempt;
  s.idempotencyKey = d.idempotencyKey;
  s.compensation = d.compensation;
  s.firstStartedAt ??= recordedAt;
  s.retryAt = null;
  state.status = 'running';
}

/**
 * Apply one event to the state, in place. The same function folds a stream read back from the
 * store and the events a worker appends, so both agree by construction; the work table's trigger
 * (sql/0001_init.sql) maps the same events to the same statuses.
 */
export function applyEvent(state: InstanceState, event: FoldEvent): void {
  const type = event.type as SagaEventType;
  const t = event.recordedAt;
  state.streamVersion += 1;
  state.lastEventId = event.id;
  state.updatedAt = t;
  switch (type) {
    case 'SagaStarted': {
      const d = event.data as SagaEventData['SagaStarted'];
      state.saga = d.saga;
      state.version = d.version;
      state.input = d.input;
      state.correlationId = event.correlationId;
      state.tenantId = event.tenantId;
      state.startedAt = t;
      state.status = 'running';
      for (const next of d.next ?? []) applyStarted(state, next, t);
      return;
    }
    case 'SagaMigrated':
      state.version = (event.data as SagaEventData['SagaMigrated']).to;
      return;
    case 'StepStarted':
      applyStarted(state, event.data as SagaEventData['StepStarted'], t);
      return;
    case 'StepSucceeded': {
      const d = event.data as SagaEventData['StepSucceeded'];
      const s = step(state, d.step);
      s.status = 'succeeded';
      s.result = d.result;
      s.error = null;
      state.results[d.step] = d.result;
      state.completed.push(d.step);
      for (const next of d.next ?? []) applyStarted(state, next, t);
      return;
    }
    case 'StepFailed': {
      const d = event.data as SagaEventData['StepFailed'];
      const s = step(state, d.step);
      s.error = d.error;
      s.attempt = Math.max(s.attempt, d.attempt);
      if (d.final) {
        s.status = 'failed';
        state.failure ??= { phase: 'step', step: d.step, attempt: d.attempt, error: d.error };
      } else {
        s.status = 'retrying';
        s.retryAt = t;
      }
      return;
    }
    case 'StepRetryScheduled': {
      const d = event.data as SagaEventData['StepRetryScheduled'];
      const s = step(state, d.step);
      const target = d.phase === 'compensation' ? s.comp : s;
      if (target) {
        target.status = 'retrying';
        target.retryAt = at(d.until, t, d.delayMs);
      }
      return;
    }
    case 'ConditionEvaluated': {
      const d = event.data as SagaEventData['ConditionEvaluated'];
      state.conditions.set(d.node, d.value);
      return;
    }
    case 'TimerScheduled': {
      const d = event.data as SagaEventData['TimerScheduled'];
      state.timers.set(d.timer, { wakeAt: at(d.until, t, d.delayMs), fired: false });
      return;
    }
    case 'TimerFired': {
      const timer = state.timers.get((event.data as SagaEventData['TimerFired']).timer);
      if (timer) timer.fired = true;
      if (state.status !== 'compensating') state.status = 'running';
      return;
    }
    case 'WaitStarted': {
      const d = event.data as SagaEventData['WaitStarted'];
      state.waits.set(d.wait, {
        eventType: d.eventType,
        key: d.key,
        until:
          d.until !== null ? Date.parse(d.until) : d.timeoutMs !== null ? t + d.timeoutMs : null,
        timeoutMs: d.timeoutMs,
        done: false,
      });
      return;
    }
    case 'SignalReceived': {
      const d = event.data as SagaEventData['SignalReceived'];
      if (state.signals.some((s) => s.eventId === d.eventId)) return;
      state.signals.push({
        eventId: d.eventId,
        type: d.type,
        data: d.data,
        occurredAt: d.occurredAt,
        source: d.source,
        correlationId: d.correlationId,
        consumed: false,
      });
      return;
    }
    case 'WaitCompleted': {
      const d = event.data as SagaEventData['WaitCompleted'];
      const wait = state.waits.get(d.wait);
      if (wait) wait.done = true;
      const signal = state.signals.find((s) => s.eventId === d.signalId);
      if (signal) {
        signal.consumed = true;
        state.results[d.wait] = {
          id: signal.eventId,
          type: signal.type,
          data: signal.data,
          occurredAt: signal.occurredAt,
          source: signal.source,
          correlationId: signal.correlationId,
        };
      }
      if (state.status !== 'compensating') state.status = 'running';
      return;
    }
    case 'WaitTimedOut': {
      const d = event.data as SagaEventData['WaitTimedOut'];
      const wait = state.waits.get(d.wait);
      if (wait) wait.done = true;
      if (d.continued) {
        state.results[d.wait] = null;
      } else {
        state.failure ??= {
          phase: 'step',
          step: d.wait,
          attempt: 1,
          error: {
            name: 'SagaTimeoutError',
            code: 'SAGA_TIMEOUT',
            message: `wait ${d.wait} timed out after ${wait?.timeoutMs ?? 0} ms`,
          },
        };
      }
      if (state.status !== 'compensating') state.status = 'running';
      return;
    }
    case 'SagaWaiting':
      state.status = (event.data as SagaEventData['SagaWaiting']).status;
      return;
    case 'CompensationStarted': {
      const d = event.data as SagaEventData['CompensationStarted'];
      const s = step(state, d.step);
      const previous = s.comp;
      s.comp = {
        status: 'started',
        attempt: d.attempt,
        attemptBase: previous?.attemptBase ?? 0,
        firstStartedAt: previous?.firstStartedAt ?? t,
        idempotencyKey: d.idempotencyKey,
        retryAt: null,
        error: previous?.error ?? null,
        result: undefined,
        transition: d.transition,
      };
      state.compensating = true;
      state.status = 'compensating';
      return;
    }
    case 'CompensationSucceeded': {
      const d = event.data as SagaEventData['CompensationSucceeded'];
      const c = step(state, d.step).comp;
      if (c) {
        c.status = 'succeeded';
        c.result = d.result;
      }
      state.compensated.push(d.step);
      return;
    }
    case 'CompensationFailed': {
      const d = event.data as SagaEventData['CompensationFailed'];
      const c = step(state, d.step).comp;
      if (c) {
        c.error = d.error;
        c.attempt = Math.max(c.attempt, d.attempt);
        c.status = d.final ? 'failed' : 'retrying';
        c.retryAt = d.final ? null : t;
      }
      return;
    }
    case 'SagaCompleted':
      state.status = 'completed';
      return;
    case 'SagaCompensated':
      state.status = 'compensated';
      state.compensating = true;
      return;
    case 'SagaDeadLettered':
      state.status = 'dead_lettered';
      state.deadLetter = event.data as DeadLetterContext;
      return;
    case 'ManuallyResolved': {
      const d = event.data as SagaEventData['ManuallyResolved'];
      state.status = 'resolved';
      state.resolution = { operator: d.operator, reason: d.reason };
      return;
    }
    case 'SagaResumed': {
      const d = event.data as SagaEventData['SagaResumed'];
      const point = state.deadLetter?.failurePoint ?? state.failure;
      state.deadLetter = null;
      state.status = d.status;
      // The attempt budget restarts at the failure point; nothing recorded before is undone.
      const reset = (a: AttemptsState) => {
        a.status = 'retrying';
        a.retryAt = t;
        a.attemptBase = a.attempt;
        a.firstStartedAt = null;
      };
      if (point?.phase === 'compensation') {
        const c = state.steps.get(point.step)?.comp;
        if (c && c.status === 'failed') reset(c);
        state.compensating = true;
      } else if (d.mode === 'retry' && point) {
        const s = state.steps.get(point.step);
        if (s && s.status === 'failed') reset(s);
        state.failure = null;
      } else {
        state.compensating = true;
      }
      return;
    }
    default:
      return;
  }
}

/**
 * Fold a saga stream into its state: the instance exactly as its events say, whatever worker or
 * process reads it.
 *
 * @example
 * ```ts
 * const state = foldHistory(events.map(toFoldEvent));
 * state.status; // 'compensated'
 * ```
 */
export function foldHistory(id: string, events: readonly FoldEvent[]): InstanceState {
  const state = emptyState(id);
  for (const e of events) applyEvent(state, e);
  return state;
}

/** Compensations that ran (or were attempted), in the order they started. */
export function compensationsRun(state: InstanceState): CompensationRun[] {
  const order = [...state.completed].reverse();
  const runs: CompensationRun[] = [];
  for (const name of order) {
    const c = state.steps.get(name)?.comp;
    if (!c || c.status === 'started') continue;
    if (c.status === 'succeeded' || c.status === 'failed') {
      runs.push({
        step: name,
        transition: c.transition,
        outcome: c.status,
        attempts: c.attempt,
      });
    }
  }
  return runs;
}

/** @internal ISO string of a time, for event data. */
export const toIso = iso;
