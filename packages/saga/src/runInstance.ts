import {
  type Actor,
  assertJson,
  createEnvelope,
  type Envelope,
  isEvidentError,
  type Logger,
  newEventId,
} from '@evident/envelope';
import { type EventStore, isConcurrencyError, type RecordedEvent } from '@evident/eventstore';
import { context } from '@opentelemetry/api';
import pRetry from 'p-retry';
import { type SagaClock, sleepReal } from './clock.js';
import { decide, type PlannedEvent, type RunItem, runKey, sagaContext } from './decide.js';
import type {
  AnySagaDefinition,
  CompensationContext,
  NormalizedRetry,
  StepContext,
  StepNode,
} from './defineSaga.js';
import { stepNodes } from './defineSaga.js';
import {
  IllegalCompensationError,
  isSagaTimeoutError,
  recordError,
  SagaError,
  SagaTimeoutError,
} from './errors.js';
import {
  type DeadLetterContext,
  type FailurePoint,
  foreignEventTypes,
  type ParticipantState,
  type SagaEventData,
  type SagaEventType,
  sagaStreamType,
} from './events.js';
import { deterministicId, isTransientDatabaseError } from './ids.js';
import { stateMatches } from './participant.js';
import {
  applyEvent,
  applyStarted,
  compensationsRun,
  type FoldEvent,
  finalStatuses,
  foldHistory,
  type InstanceState,
  type SagaStatus,
  toIso,
} from './state.js';
import { sagaMetrics, tracedAttempt, traceOfStart } from './telemetry.js';

/** What a run needs from the runtime around it. */
export interface RunEnvironment {
  readonly store: EventStore;
  readonly clock: SagaClock;
  /** Database time (estimated from the last query that read `now()`), or the virtual time. */
  now(): number;
  readonly actor: Actor;
  readonly source: string;
  /** Longest back-off a worker waits out holding the instance; longer ones park it. */
  readonly holdMs: number;
  readonly logger: Logger;
}

/** How a run ended for this worker. */
export interface RunOutcome {
  /** `final`: completed, compensated, dead-lettered; `parked`: sleeping or waiting; `lost`: another worker has it, or this one stopped. */
  readonly kind: 'final' | 'parked' | 'lost';
  readonly status: SagaStatus;
  /** When a parked instance is due again (null: only a signal wakes it). */
  readonly wakeAt: number | null;
}

/** A read-back event: what the fold needs, and the metadata that carries the trace context. */
interface ReadBackEvent extends FoldEvent {
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** Read-back events as the fold sees them. */
export function toFoldEvent(e: RecordedEvent): FoldEvent {
  const event: ReadBackEvent = {
    id: e.id,
    type: e.type,
    data: e.data,
    recordedAt: Date.parse(e.recordedAt),
    correlationId: e.correlationId,
    tenantId: e.tenantId,
    metadata: e.metadata,
  };
  return event;
}

class Lost extends Error {}
/** Reason given to an attempt's timer when the attempt is over (no DOMException each time). */
const attemptOver = new Error('attempt over');
class FinalFailure extends Error {}
class Parked extends Error {}
class AttemptFailure extends Error {
  constructor(readonly original: unknown) {
    super('attempt failed');
  }
}

type Outcome =
  | {
      readonly kind: 'ok';
      readonly item: RunItem;
      readonly attempt: number;
      readonly result: unknown;
    }
  | { readonly kind: 'failed' | 'parked'; readonly item: RunItem }
  | { readonly kind: 'lost' };

function nonRetryable(policy: NormalizedRetry, error: unknown): boolean {
  if (
    isEvidentError(error, 'SAGA_DEFINITION_INVALID', 'COMPENSATION_ILLEGAL', 'HISTORY_INCOMPATIBLE')
  ) {
    return true;
  }
  if (isSagaTimeoutError(error) && error.scope === 'step') return true;
  const e = error as { name?: unknown; code?: unknown } | null;
  return policy.nonRetryable.some((n) =>
    typeof n === 'string' ? e?.name === n || e?.code === n : error instanceof n,
  );
}

/** The back-off before attempt `used + 1` (attempt `used` just failed). */
export function backoffMs(policy: NormalizedRetry, used: number): number {
  return Math.min(
    Math.round(policy.initialMs * policy.coefficient ** Math.max(0, used - 1)),
    policy.maximumMs,
  );
}

/**
 * Drive one instance from its history until it is final, parks, or this worker loses it. Every
 * decision is appended to the instance's stream before what it decides happens: a step's
 * `StepStarted` (with its compensation intent) before its side effect, its outcome together with
 * the next step's start, all with the stream version as the fencing token.
 */
export function runInstance(
  env: RunEnvironment,
  definition: AnySagaDefinition,
  id: string,
  history: readonly FoldEvent[],
  signal: AbortSignal,
  options: RunOptions = {},
): Promise<RunOutcome> {
  // The run continues the trace the instance was started in, whichever worker runs it: its
  // appends and its steps' spans join that trace.
  const started = history.find((e) => e.type === 'SagaStarted') as ReadBackEvent | undefined;
  return context.with(traceOfStart(started?.metadata), () =>
    run(env, definition, id, history, signal, options),
  );
}

interface RunOptions {
  /** The stream's version (the history may be shorter when a migration dropped events). */
  readonly streamVersion?: number;
  /** The instance's version, when this definition takes it over through migrations. */
  readonly migratedFrom?: number;
  /**
   * The instance's `SagaStarted`, when this run appends it (an instance its own process has just
   * started): it is the history's only event, not stored yet, and the first step's start rides on
   * it as a step's start rides on its predecessor's success — one row fewer per saga.
   */
  readonly start?: Envelope;
}

async function run(
  env: RunEnvironment,
  definition: AnySagaDefinition,
  id: string,
  history: readonly FoldEvent[],
  signal: AbortSignal,
  options: RunOptions,
): Promise<RunOutcome> {
  const stream = { type: sagaStreamType, id };
  const virtual = env.clock.kind === 'virtual';
  const start = options.start;
  const confirmed: FoldEvent[] = start ? [] : [...history];
  let confirmedVersion = start ? 0 : (options.streamVersion ?? history.length);
  // One listener for the whole run: it ends every wait once this worker loses the instance.
  const lost = new Promise<Outcome>((resolve) => {
    if (signal.aborted) resolve({ kind: 'lost' });
    else signal.addEventListener('abort', () => resolve({ kind: 'lost' }), { once: true });
  });
  const lostRejection = lost.then(() => Promise.reject(signal.reason));
  lostRejection.catch(() => {});
  /** Events decided but not yet appended; envelopes are made when they are sent. */
  let pending: Pending[] = [];
  /** How many of `pending` an append in progress is sending (they can no longer change). */
  let sealed = 0;
  const state0 = foldHistory(id, history);
  if (start) {
    pending.push({
      type: 'SagaStarted',
      data: start.data,
      causationId: start.causationId,
      occurredAt: new Date(start.occurredAt),
      fold: history[0]!,
    });
  }
  let state: InstanceState = state0;
  const inFlight = new Map<string, Promise<Outcome>>();
  let flushChain: Promise<unknown> = Promise.resolve();

  const plan = (event: PlannedEvent) => {
    const last = pending[pending.length - 1];
    const t = env.now();
    if (
      event.type === 'StepStarted' &&
      last &&
      pending.length > sealed &&
      (last.type === 'StepSucceeded' || last.type === 'SagaStarted')
    ) {
      // The next step's start rides on the previous step's success (or the first step's on the
      // saga's start): one event, one row, per step boundary (the start is still recorded
      // before the step's side effect).
      const started = event.data as SagaEventData['StepStarted'];
      const data = last.data as SagaEventData['StepSucceeded' | 'SagaStarted'];
      last.data = { ...data, next: [...(data.next ?? []), started] };
      last.fold = { ...last.fold, data: last.data };
      applyStarted(state, started, t);
      return;
    }
    const fold: FoldEvent = {
      id: newEventId(),
      type: event.type,
      data: event.data,
      recordedAt: t,
      correlationId: state.correlationId,
      tenantId: state.tenantId,
    };
    pending.push({
      type: event.type,
      data: event.data,
      causationId: state.lastEventId,
      occurredAt: new Date(env.clock.now()),
      fold,
    });
    applyEvent(state, fold);
  };

  const envelopeOf = (p: Pending): Envelope =>
    p.type === 'SagaStarted' && start
      ? // The start as the starter made it (its id, actor, trace), with the steps it starts.
        createEnvelope({ ...start, data: p.data })
      : createEnvelope({
          id: p.fold.id,
          type: p.type,
          data: p.data,
          source: env.source,
          actor: env.actor,
          correlationId: state.correlationId,
          ...(p.causationId ? { causationId: p.causationId } : {}),
          occurredAt: p.occurredAt,
        });

  /** Append what is pending, as one statement at the confirmed version. */
  const appendPending = async (): Promise<'ok' | 'merged'> => {
    let merged = false;
    for (let attempt = 0; ; attempt++) {
      if (pending.length === 0) return merged ? 'merged' : 'ok';
      const batch = pending.slice();
      sealed = batch.length;
      // The same ids on every retry of this batch: see the transient case below.
      const envelopes = batch.map((p) => (p.envelope ??= envelopeOf(p)));
      try {
        const result = await env.store.append(stream, envelopes, {
          expectedVersion: confirmedVersion,
        });
        pending.splice(0, batch.length);
        sealed = 0;
        confirmed.push(...batch.map((p) => p.fold));
        confirmedVersion = result.nextExpectedVersion;
        return merged ? 'merged' : 'ok';
      } catch (error) {
        sealed = 0;
        if (isConcurrencyError(error)) {
          const newer = await env.store.readStream(stream, { fromVersion: confirmedVersion + 1 });
          if (newer.length === 0 || newer.some((e) => !foreignEventTypes.has(e.type))) {
            // Another worker took the instance over (our lease had expired), or an operator acted.
            throw new Lost();
          }
          // Signals arrived meanwhile: they go before our events. A park decided without them is
          // no longer right; the run decides again.
          confirmed.push(...newer.map(toFoldEvent));
          confirmedVersion += newer.length;
          pending = pending.filter((p) => p.type !== 'SagaWaiting');
          for (const p of pending) p.envelope = undefined;
          state = foldHistory(id, [...confirmed, ...pending.map((p) => p.fold)]);
          merged = true;
          continue;
        }
        if (isTransientDatabaseError(error) && !signal.aborted) {
          // The same events again (same ids): if the lost attempt had committed, the store
          // returns its result instead of appending twice.
          await sleepReal(Math.min(50 * 2 ** attempt, 2000), signal).catch(() => {});
          if (signal.aborted) throw new Lost();
          continue;
        }
        throw error;
      }
    }
  };
  const flush = (): Promise<'ok' | 'merged'> => {
    const next = flushChain.then(appendPending, appendPending);
    flushChain = next.catch(() => {});
    return next;
  };

  const attemptsOf = (item: RunItem) => {
    const s = state.steps.get(item.node.id);
    return item.kind === 'step' ? s : s?.comp;
  };

  /** One attempt, with its timeouts, aborted when this worker loses the instance. */
  const runAttempt = async (item: RunItem, attempt: number): Promise<unknown> => {
    const node = item.node;
    const comp = item.kind === 'compensation' ? node.compensate! : null;
    const attemptTimeoutMs = comp ? comp.attemptTimeoutMs : node.attemptTimeoutMs;
    const stepTimeoutMs = comp ? comp.stepTimeoutMs : node.stepTimeoutMs;
    const first = attemptsOf(item)?.firstStartedAt ?? env.now();
    const stepLeft =
      stepTimeoutMs === null ? Number.POSITIVE_INFINITY : first + stepTimeoutMs - env.now();
    const name = comp ? `compensation of ${node.id}` : node.id;
    if (stepLeft <= 0) throw new SagaTimeoutError('step', name, stepTimeoutMs!);
    const limit = Math.min(attemptTimeoutMs ?? Number.POSITIVE_INFINITY, stepLeft);

    // Without a time limit the attempt's signal is the run's own (aborted when the instance is
    // lost); with one, a signal of its own that the timer aborts too.
    const controller = Number.isFinite(limit) ? new AbortController() : null;
    const timer = controller ? new AbortController() : null;
    const onLost = () => controller?.abort(signal.reason);
    if (controller) signal.addEventListener('abort', onLost, { once: true });
    const s = state.steps.get(node.id)!;
    const base: StepContext = {
      ...sagaContext(state),
      results: { ...state.results },
      step: node.id,
      attempt,
      idempotencyKey: comp ? `${s.idempotencyKey}/compensate` : s.idempotencyKey,
      signal: controller ? controller.signal : signal,
    };
    try {
      const work = Promise.resolve().then(() =>
        comp
          ? compensate(item, { ...base, result: s.result, failure: state.failure?.error ?? null })
          : node.run(base),
      );
      const racers: Promise<unknown>[] = [work, lostRejection];
      if (controller && timer) {
        racers.push(
          env.clock.sleep(limit, timer.signal).then(() => {
            const error =
              limit === attemptTimeoutMs
                ? new SagaTimeoutError('attempt', name, attemptTimeoutMs)
                : new SagaTimeoutError('step', name, stepTimeoutMs!);
            controller.abort(error);
            throw error;
          }),
        );
      }
      const result = (await Promise.race(racers)) ?? null;
      try {
        assertJson(result);
      } catch (error) {
        throw new SagaError(
          'SAGA_DEFINITION_INVALID',
          `${name} returned a value that is not plain JSON (${(error as Error).message})`,
        );
      }
      return result;
    } finally {
      if (timer) {
        timer.abort(attemptOver);
        signal.removeEventListener('abort', onLost);
      }
    }
  };

  /** An attempt in its span, its duration recorded (names and counts only, never values). */
  const observedAttempt = async (item: RunItem, attempt: number): Promise<unknown> => {
    const phase = item.kind === 'compensation' ? 'compensation' : 'step';
    const startedAt = performance.now();
    let outcome = 'error';
    try {
      const result = await tracedAttempt(
        phase === 'step' ? 'evident.saga.step' : 'evident.saga.compensation',
        {
          'evident.saga': definition.name,
          'evident.saga.version': definition.version,
          'evident.saga.step': item.node.id,
          'evident.saga.attempt': attempt,
          'evident.correlation_id': state.correlationId,
        },
        () => runAttempt(item, attempt),
      );
      outcome = 'ok';
      return result;
    } finally {
      sagaMetrics().stepDuration.record(performance.now() - startedAt, {
        'evident.saga': definition.name,
        'evident.saga.step': item.node.id,
        'evident.saga.phase': phase,
        'evident.saga.outcome': outcome,
      });
    }
  };

  /** Carry out a compensation: the saga's function, or a checked transition of a machine. */
  const compensate = async (item: RunItem, ctx: CompensationContext): Promise<unknown> => {
    const c = item.node.compensate!;
    if (c.run) return c.run(ctx);
    const machine = c.machine!;
    const entityId = c.entityId!(ctx);
    const candidates = c.events as readonly never[] | undefined;
    const planned = await machine.planTransitionTo(
      entityId,
      c.to as never,
      candidates ? { events: candidates } : undefined,
    );
    if (!planned.legal) {
      // A previous attempt (on a worker that then died) may already have moved it there.
      if (stateMatches(planned.from, c.to)) return { entityId, state: planned.from, already: true };
      throw new IllegalCompensationError(item.node.id, planned.from, c.to);
    }
    const moved = await machine.transitionTo(entityId, c.to as never, {
      actor: env.actor,
      correlationId: state.correlationId,
      ...(state.lastEventId ? { causationId: state.lastEventId } : {}),
      id: deterministicId('saga-compensation', ctx.idempotencyKey),
      ...(candidates ? { events: candidates } : {}),
    });
    return { entityId, from: planned.from, state: moved.to, version: moved.version };
  };

  /** All attempts of a run item (p-retry drives them; each failure is recorded first). */
  const execute = async (item: RunItem): Promise<Outcome> => {
    const compensation = item.kind === 'compensation';
    const policy = compensation ? item.node.compensate!.retry : item.node.retry;
    const base = attemptsOf(item)?.attemptBase ?? 0;
    let attempt = item.attempt;
    const attemptNumber = async (n: number) => {
      if (n > 1) {
        attempt += 1;
        plan({
          type: item.started.type,
          data: { ...item.started.data, attempt },
        } as PlannedEvent);
        await flush();
      }
      try {
        return await observedAttempt(item, attempt);
      } catch (error) {
        throw new AttemptFailure(error);
      }
    };
    /** Record a failed attempt; throws when there is no next attempt (final, parked, lost). */
    const failed = async (error: unknown) => {
      if (!(error instanceof AttemptFailure)) throw error;
      const original = error.original;
      if (signal.aborted) throw new Lost();
      const used = attempt - base;
      const final = used >= policy.attempts || nonRetryable(policy, original);
      const failure = { step: item.node.id, attempt, error: recordError(original), final };
      plan(
        compensation
          ? { type: 'CompensationFailed', data: failure }
          : { type: 'StepFailed', data: failure },
      );
      if (final) {
        await flush();
        throw new FinalFailure();
      }
      const delayMs = backoffMs(policy, used);
      sagaMetrics().retries.add(1, {
        'evident.saga': definition.name,
        'evident.saga.step': item.node.id,
        'evident.saga.phase': compensation ? 'compensation' : 'step',
      });
      plan({
        type: 'StepRetryScheduled',
        data: {
          step: item.node.id,
          phase: compensation ? 'compensation' : 'step',
          attempt: attempt + 1,
          delayMs,
          until: virtual ? toIso(env.now() + delayMs) : null,
        },
      });
      // A long back-off parks the instance (its row sleeps until then); a short one is
      // waited out here, the failure recorded first.
      if (delayMs > env.holdMs) throw new Parked();
      await flush();
      await env.clock.sleep(delayMs, signal);
    };
    try {
      if (signal.aborted) return { kind: 'lost' };
      let result: unknown;
      try {
        // The first attempt runs on its own: most steps succeed at once, and p-retry's setup
        // (7 µs a call, measured) would be paid on every step of every saga.
        result = await attemptNumber(1);
      } catch (error) {
        await failed(error);
        // Attempts after a failure: p-retry drives them (each failure recorded by `failed`).
        result = await pRetry((n) => attemptNumber(n + 1), {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: 0,
          factor: 1,
          signal,
          onFailedAttempt: ({ error }) => failed(error),
        });
      }
      return { kind: 'ok', item, attempt, result };
    } catch (error) {
      if (error instanceof FinalFailure) return { kind: 'failed', item };
      if (error instanceof Parked) return { kind: 'parked', item };
      if (error instanceof Lost || signal.aborted) return { kind: 'lost' };
      throw error;
    }
  };

  /** Everything an operator needs to understand a dead letter. */
  const deadLetterContext = async (point: FailurePoint): Promise<DeadLetterContext> => {
    const participants: ParticipantState[] = [];
    for (const node of stepNodes(definition.nodes)) {
      const s = state.steps.get(node.id);
      if (!s) continue;
      const status: ParticipantState['status'] =
        s.comp?.status === 'succeeded'
          ? 'compensated'
          : s.comp?.status === 'failed'
            ? 'compensation-failed'
            : s.status === 'succeeded'
              ? s.compensation
                ? 'completed'
                : 'not-compensable'
              : s.status === 'failed'
                ? 'failed'
                : 'interrupted';
      let machineState: unknown;
      const c = node.compensate;
      if (c?.machine && c.entityId && s.status === 'succeeded') {
        try {
          const entityId = c.entityId({
            ...sagaContext(state),
            step: node.id,
            attempt: s.comp?.attempt ?? 0,
            idempotencyKey: `${s.idempotencyKey}/compensate`,
            signal,
            result: s.result,
            failure: state.failure?.error ?? null,
          });
          machineState = (await c.machine.load(entityId))?.value ?? null;
        } catch (error) {
          env.logger.warn?.(
            { saga: definition.name, step: node.id, error: recordError(error).name },
            'could not read a participant state for a dead letter',
          );
        }
      }
      participants.push({
        step: node.id,
        participant: c?.participant ?? node.participant,
        status,
        ...(machineState !== undefined ? { machineState } : {}),
      });
    }
    return {
      failurePoint: point,
      error: point.error,
      originalFailure:
        point.phase === 'compensation' && state.failure && state.failure !== point
          ? state.failure
          : null,
      participants,
      compensationsRun: compensationsRun(state),
    };
  };

  const handle = (outcome: Outcome) => {
    if (outcome.kind === 'lost') throw new Lost();
    if (outcome.kind === 'ok') {
      const data = { step: outcome.item.node.id, attempt: outcome.attempt, result: outcome.result };
      plan(
        outcome.item.kind === 'step'
          ? { type: 'StepSucceeded', data }
          : { type: 'CompensationSucceeded', data },
      );
    }
  };

  const outcome = (kind: RunOutcome['kind'], wakeAt: number | null = null): RunOutcome => ({
    kind,
    status: state.status,
    wakeAt,
  });

  try {
    if (options.migratedFrom !== undefined) {
      plan({ type: 'SagaMigrated', data: { from: options.migratedFrom, to: definition.version } });
    }
    for (let rounds = 0; ; rounds++) {
      if (signal.aborted) return outcome('lost');
      // Yield now and then: with PGlite, a loop of in-process awaits would starve timers.
      if (rounds % 64 === 63) await new Promise((r) => setImmediate(r));
      let decision = decide(definition, state, {
        now: env.now(),
        inFlight: new Set(inFlight.keys()),
        virtual,
      });
      for (let settle = 0; decision.record.length > 0; settle++) {
        if (settle > 10_000) throw new Error(`saga ${definition.name} does not settle`);
        for (const event of decision.record) plan(event);
        decision = decide(definition, state, {
          now: env.now(),
          inFlight: new Set(inFlight.keys()),
          virtual,
        });
      }
      if (decision.deadLetter && inFlight.size === 0) {
        plan({ type: 'SagaDeadLettered', data: await deadLetterContext(decision.deadLetter) });
        await flush();
        sagaMetrics().deadLetters.add(1, { 'evident.saga': definition.name });
        return outcome('final');
      }
      if (decision.start.length > 0 && !decision.deadLetter) {
        for (const item of decision.start) plan(item.started);
        await flush();
        for (const item of decision.start) {
          const key = runKey(item.kind, item.node.id);
          // Removed from the in-flight set only when its outcome is handled: two attempts that
          // end together are both recorded, one per turn of this loop.
          inFlight.set(key, execute(item));
        }
        continue;
      }
      if (finalStatuses.has(state.status)) {
        await flush();
        return outcome('final');
      }
      if (inFlight.size > 0) {
        // Only a timed wait needs a controller, aborted with a shared reason (abort() without one
        // builds a DOMException with a stack, on every step).
        const stopWaiting = decision.wakeAt !== null ? new AbortController() : null;
        const racers: Promise<Outcome | null>[] = [...inFlight.values()];
        if (stopWaiting && decision.wakeAt !== null) {
          racers.push(
            env.clock.sleep(Math.max(0, decision.wakeAt - env.now()), stopWaiting.signal).then(
              () => null,
              () => null,
            ),
          );
        }
        racers.push(lost);
        const next = await Promise.race(racers);
        stopWaiting?.abort(attemptOver);
        if (next && next.kind !== 'lost')
          inFlight.delete(runKey(next.item.kind, next.item.node.id));
        if (next) handle(next);
        continue;
      }
      if (decision.park) {
        const park = decision.park;
        // A wake-up decided in this very batch is relative to the batch's database time (the
        // trigger adds it to recorded_at); an earlier one is an absolute time.
        const fresh = pending.find(
          (p) =>
            (p.type === 'TimerScheduled' ||
              p.type === 'WaitStarted' ||
              p.type === 'StepRetryScheduled') &&
            relativeWake(p) !== null &&
            p.fold.recordedAt + relativeWake(p)! === park.wakeAt,
        );
        plan({
          type: 'SagaWaiting',
          data: {
            status: park.status,
            step: park.step,
            waitingFor: park.waitingFor,
            waitKey: park.waitKey,
            until: fresh || park.wakeAt === null ? null : toIso(park.wakeAt),
            delayMs: fresh ? relativeWake(fresh) : null,
          },
        });
        if ((await flush()) === 'merged') continue;
        return outcome('parked', park.wakeAt);
      }
      throw new Error(`saga ${definition.name} has nothing to do but is not final`);
    }
  } catch (error) {
    if (error instanceof Lost || signal.aborted) return outcome('lost');
    throw error;
  }
}

/** An event decided by a run and not yet appended. */
interface Pending {
  readonly type: SagaEventType;
  data: unknown;
  readonly causationId: string | null;
  readonly occurredAt: Date;
  fold: FoldEvent;
  /** Made once, when first sent, so a retried append sends the very same events. */
  envelope?: Envelope | undefined;
}

/** The delay (from its own recorded-at) of an event that schedules a database-time wake-up. */
function relativeWake(p: Pending): number | null {
  const d = p.data as { delayMs?: number | null; timeoutMs?: number | null; until?: string | null };
  if (d.until) return null;
  if (p.type === 'WaitStarted') return d.timeoutMs ?? null;
  return d.delayMs ?? null;
}

/** @internal Exposed for the property tests: the step nodes a history refers to. */
export type { StepNode };
