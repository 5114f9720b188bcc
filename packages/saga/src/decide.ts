import type {
  AnySagaDefinition,
  NormalizedCompensation,
  SagaContext,
  SagaNode,
  StepNode,
} from './defineSaga.js';
import { stepNodes } from './defineSaga.js';
import { recordError, SagaError } from './errors.js';
import type { FailurePoint, SagaEventData, SagaEventType } from './events.js';
import { finalStatuses, type InstanceState, toIso } from './state.js';

/** An event the interpreter decided to record. */
export interface PlannedEvent<T extends SagaEventType = SagaEventType> {
  readonly type: T;
  readonly data: SagaEventData[T];
}

/** A step (or a compensation) to run now, with the event that records its start. */
export interface RunItem {
  readonly kind: 'step' | 'compensation';
  readonly node: StepNode;
  readonly attempt: number;
  readonly started: PlannedEvent<'StepStarted'> | PlannedEvent<'CompensationStarted'>;
}

/** How an instance describes itself when it parks. */
export type ParkInfo = Omit<SagaEventData['SagaWaiting'], 'until' | 'delayMs'> & {
  readonly wakeAt: number | null;
};

/**
 * What to do next with an instance. The runtime records `record` first (and decides again),
 * then starts `start`; when nothing is runnable or running, it parks until `park.wakeAt`.
 */
export interface Decision {
  readonly record: readonly PlannedEvent[];
  readonly start: readonly RunItem[];
  /** The earliest time something pending becomes due, while other work runs. */
  readonly wakeAt: number | null;
  readonly park: ParkInfo | null;
  /** The instance must be dead-lettered at this failure point (the runtime adds the context). */
  readonly deadLetter: FailurePoint | null;
}

/** Options of {@link decide}. */
export interface DecideOptions {
  /** Current time: database time (estimated) or the virtual clock's. */
  readonly now: number;
  /** Keys (`step:<name>`, `compensation:<name>`) of attempts running in this process. */
  readonly inFlight: ReadonlySet<string>;
  /** The clock is virtual: record absolute times instead of database-relative delays. */
  readonly virtual: boolean;
}

/** Key of a run item in the in-flight set. */
export const runKey = (kind: 'step' | 'compensation', name: string) => `${kind}:${name}`;

/** The context user functions of the saga see. */
export function sagaContext(state: InstanceState): SagaContext {
  return {
    sagaId: state.id,
    saga: state.saga,
    version: state.version,
    correlationId: state.correlationId,
    input: state.input,
    results: state.results,
  };
}

/** The idempotency key of a step: the user's, or `saga/<id>/<step>`. */
export function stepIdempotencyKey(node: StepNode, ctx: SagaContext): string {
  if (!node.idempotencyKey) return `saga/${ctx.sagaId}/${node.id}`;
  const key = node.idempotencyKey(ctx);
  if (typeof key !== 'string' || key.length === 0 || key.length > 256) {
    throw new SagaError(
      'SAGA_DEFINITION_INVALID',
      `idempotencyKey of step ${node.id} must return a string of 1-256 characters`,
    );
  }
  return key;
}

const interrupted = (attempt: number) => ({
  name: 'AttemptInterrupted',
  code: 'ATTEMPT_INTERRUPTED',
  message: `attempt ${attempt} was cut short: the worker running it stopped before it finished`,
});

type Walk = 'done' | 'pending' | 'failed';

/**
 * Decide an instance's next move from its definition and folded state. Deterministic apart from
 * the saga's own functions (conditions, correlation keys, `until`), whose results it records so
 * that they are evaluated once.
 */
export function decide(
  definition: AnySagaDefinition,
  state: InstanceState,
  options: DecideOptions,
): Decision {
  const record: PlannedEvent[] = [];
  const start: RunItem[] = [];
  let wakeAt: number | null = null;
  let park: ParkInfo | null = null;
  const { now, inFlight, virtual } = options;
  const empty: Decision = { record, start, wakeAt: null, park: null, deadLetter: null };
  if (finalStatuses.has(state.status)) return empty;

  const ctx = sagaContext(state);
  const pend = (info: ParkInfo) => {
    if (info.wakeAt !== null && (wakeAt === null || info.wakeAt < wakeAt)) wakeAt = info.wakeAt;
    // A wait for a signal describes the instance better than a timer does.
    if (!park || (info.status === 'waiting' && park.status !== 'waiting')) park = info;
    else if (park.wakeAt === null || (info.wakeAt !== null && info.wakeAt < park.wakeAt)) {
      if (park.status === info.status) park = info;
    }
  };
  const fail = (node: string, error: unknown): Walk => {
    record.push({
      type: 'StepFailed',
      data: { step: node, attempt: 1, error: recordError(error), final: true },
    });
    return 'failed';
  };

  /** Start (or resume) attempt `attempt` of a step, if its budget and deadline allow. */
  const startStep = (node: StepNode, attempt: number, base: number, first: number | null): Walk => {
    if (attempt - base > node.retry.attempts) {
      record.push({
        type: 'StepFailed',
        data: { step: node.id, attempt: attempt - 1, error: interrupted(attempt - 1), final: true },
      });
      return 'failed';
    }
    if (node.stepTimeoutMs !== null && first !== null && now >= first + node.stepTimeoutMs) {
      record.push({
        type: 'StepFailed',
        data: {
          step: node.id,
          attempt: attempt - 1,
          error: {
            name: 'SagaTimeoutError',
            code: 'SAGA_TIMEOUT',
            message: `step ${node.id} timed out after ${node.stepTimeoutMs} ms`,
          },
          final: true,
        },
      });
      return 'failed';
    }
    let idempotencyKey: string;
    try {
      idempotencyKey = stepIdempotencyKey(node, ctx);
    } catch (error) {
      return fail(node.id, error);
    }
    start.push({
      kind: 'step',
      node,
      attempt,
      started: {
        type: 'StepStarted',
        data: {
          step: node.id,
          attempt,
          idempotencyKey,
          compensation: node.compensate
            ? {
                transition: node.compensate.transition,
                participant: node.compensate.participant,
                to: node.compensate.to ?? null,
              }
            : null,
        },
      },
    });
    return 'pending';
  };

  const walkStep = (node: StepNode): Walk => {
    const s = state.steps.get(node.id);
    if (!s) return startStep(node, 1, 0, null);
    switch (s.status) {
      case 'succeeded':
        return 'done';
      case 'failed':
        return 'failed';
      case 'started':
        if (inFlight.has(runKey('step', node.id))) return 'pending';
        // Its worker stopped mid-attempt: the outcome is unknown, so record it and try again
        // with the same idempotency key.
        record.push({
          type: 'StepFailed',
          data: {
            step: node.id,
            attempt: s.attempt,
            error: interrupted(s.attempt),
            final: s.attempt - s.attemptBase >= node.retry.attempts,
          },
        });
        return 'pending';
      case 'retrying':
        if (inFlight.has(runKey('step', node.id))) return 'pending';
        if (s.retryAt !== null && now < s.retryAt) {
          pend({
            status: 'retrying',
            step: node.id,
            waitingFor: null,
            waitKey: null,
            wakeAt: s.retryAt,
          });
          return 'pending';
        }
        return startStep(node, s.attempt + 1, s.attemptBase, s.firstStartedAt);
    }
  };

  const walkNode = (node: SagaNode): Walk => {
    switch (node.kind) {
      case 'step':
        return walkStep(node);
      case 'when': {
        const value = state.conditions.get(node.id);
        if (value === undefined) {
          let holds: boolean;
          try {
            holds = node.predicate(ctx) === true;
          } catch (error) {
            return fail(node.id, error);
          }
          record.push({ type: 'ConditionEvaluated', data: { node: node.id, value: holds } });
          return 'pending';
        }
        return value ? walkSeq(node.branch) : 'done';
      }
      case 'parallel': {
        const results = node.branches.map((b) => walkSeq(b.nodes));
        if (results.includes('failed')) return 'failed';
        return results.every((r) => r === 'done') ? 'done' : 'pending';
      }
      case 'sleep': {
        const timer = state.timers.get(node.id);
        if (!timer) {
          let until: string | null = null;
          let delayMs: number | null = node.delayMs;
          try {
            if (node.until) {
              const date = new Date(node.until(ctx));
              if (Number.isNaN(date.getTime())) {
                throw new SagaError(
                  'SAGA_DEFINITION_INVALID',
                  `sleep ${node.id}: until is not a date`,
                );
              }
              until = date.toISOString();
              delayMs = null;
            } else if (virtual) {
              until = toIso(now + (delayMs ?? 0));
              delayMs = null;
            }
          } catch (error) {
            return fail(node.id, error);
          }
          record.push({ type: 'TimerScheduled', data: { timer: node.id, delayMs, until } });
          return 'pending';
        }
        if (timer.fired) return 'done';
        if (now >= timer.wakeAt) {
          record.push({ type: 'TimerFired', data: { timer: node.id } });
          return 'pending';
        }
        pend({
          status: 'sleeping',
          step: node.id,
          waitingFor: null,
          waitKey: null,
          wakeAt: timer.wakeAt,
        });
        return 'pending';
      }
      case 'wait': {
        const wait = state.waits.get(node.id);
        if (!wait) {
          let key: string;
          try {
            key = node.correlate ? node.correlate(ctx) : state.correlationId;
            if (typeof key !== 'string' || key.length === 0 || key.length > 256) {
              throw new SagaError(
                'SAGA_DEFINITION_INVALID',
                `correlate of wait ${node.id} must return a string of 1-256 characters`,
              );
            }
          } catch (error) {
            return fail(node.id, error);
          }
          record.push({
            type: 'WaitStarted',
            data: {
              wait: node.id,
              eventType: node.eventType,
              key,
              timeoutMs: node.timeoutMs,
              until: virtual && node.timeoutMs !== null ? toIso(now + node.timeoutMs) : null,
            },
          });
          return 'pending';
        }
        if (wait.done) return 'done';
        const signal = state.signals.find((s) => !s.consumed && s.type === wait.eventType);
        if (signal) {
          record.push({ type: 'WaitCompleted', data: { wait: node.id, signalId: signal.eventId } });
          return 'pending';
        }
        if (wait.until !== null && now >= wait.until) {
          record.push({
            type: 'WaitTimedOut',
            data: { wait: node.id, continued: node.onTimeout === 'continue' },
          });
          return 'pending';
        }
        pend({
          status: 'waiting',
          step: node.id,
          waitingFor: wait.eventType,
          waitKey: wait.key,
          wakeAt: wait.until,
        });
        return 'pending';
      }
    }
  };

  const walkSeq = (nodes: readonly SagaNode[]): Walk => {
    for (const node of nodes) {
      const result = walkNode(node);
      // One recorded decision at a time: the runtime applies it and decides again, so every
      // function of the saga sees the state the records before it made.
      if (record.length > 0) return 'pending';
      if (result !== 'done') return result;
    }
    return 'done';
  };

  const finish = (): Decision => {
    const d = { record, start, wakeAt, park, deadLetter: null };
    if (record.length > 0) return { ...d, start: [], park: null };
    return d;
  };

  if (state.failure === null && !state.compensating) {
    const result = walkSeq(definition.nodes);
    if (record.length > 0 || start.length > 0) return finish();
    if (result === 'done' && inFlight.size === 0) {
      record.push({ type: 'SagaCompleted', data: { steps: [...state.completed] } });
    }
    return finish();
  }

  // A failure (or an operator's request to compensate). Attempts still running finish first, and
  // attempts a crashed worker left without an outcome are resumed to learn it: compensation must
  // see every step that completed.
  const steps = stepNodes(definition.nodes);
  const byName = new Map(steps.map((n) => [n.id, n]));
  if (!state.compensating) {
    for (const s of state.steps.values()) {
      const node = byName.get(s.name);
      if (!node || inFlight.has(runKey('step', s.name))) continue;
      if (s.status === 'started') {
        walkStep(node);
        if (record.length > 0) return finish();
      } else if (s.status === 'retrying' && s.error?.code === 'ATTEMPT_INTERRUPTED') {
        // Interrupted, not failed: its effect may have happened. Run it again (same key) to know.
        startStep(node, s.attempt + 1, s.attemptBase, s.firstStartedAt);
        if (record.length > 0) return finish();
      }
    }
    if (start.length > 0) return finish();
    for (const s of state.steps.values()) {
      if (
        (s.status === 'started' || s.status === 'retrying') &&
        inFlight.has(runKey('step', s.name))
      ) {
        return finish();
      }
    }
    const failed = state.failure ? byName.get(state.failure.step) : undefined;
    if (failed?.onExhausted === 'deadLetter' && state.failure) {
      return { ...empty, deadLetter: state.failure };
    }
  }

  for (const name of [...state.completed].reverse()) {
    const s = state.steps.get(name)!;
    if (!s.compensation) continue;
    const c = s.comp;
    if (c?.status === 'succeeded') continue;
    const node = byName.get(name);
    const compensation: NormalizedCompensation | null | undefined = node?.compensate;
    if (!node || !compensation) {
      // The history promised a compensation the running code no longer has.
      return {
        ...empty,
        deadLetter: {
          phase: 'compensation',
          step: name,
          attempt: c?.attempt ?? 0,
          error: recordError(
            new SagaError(
              'HISTORY_INCOMPATIBLE',
              `step ${name} recorded a compensation (${s.compensation.transition}) that this version of ${definition.name} does not define`,
            ),
          ),
        },
      };
    }
    if (inFlight.has(runKey('compensation', name))) return finish();
    const startCompensation = (attempt: number, base: number, first: number | null): Decision => {
      if (attempt - base > compensation.retry.attempts) {
        record.push({
          type: 'CompensationFailed',
          data: { step: name, attempt: attempt - 1, error: interrupted(attempt - 1), final: true },
        });
        return finish();
      }
      if (
        compensation.stepTimeoutMs !== null &&
        first !== null &&
        now >= first + compensation.stepTimeoutMs
      ) {
        record.push({
          type: 'CompensationFailed',
          data: {
            step: name,
            attempt: attempt - 1,
            error: {
              name: 'SagaTimeoutError',
              code: 'SAGA_TIMEOUT',
              message: `compensation of ${name} timed out after ${compensation.stepTimeoutMs} ms`,
            },
            final: true,
          },
        });
        return finish();
      }
      start.push({
        kind: 'compensation',
        node,
        attempt,
        started: {
          type: 'CompensationStarted',
          data: {
            step: name,
            attempt,
            transition: compensation.transition,
            participant: compensation.participant,
            to: compensation.to ?? null,
            idempotencyKey: `${s.idempotencyKey}/compensate`,
          },
        },
      });
      return finish();
    };
    if (!c) return startCompensation(1, 0, null);
    switch (c.status) {
      case 'failed':
        return {
          ...empty,
          deadLetter: {
            phase: 'compensation',
            step: name,
            attempt: c.attempt,
            error: c.error ?? recordError(new Error('compensation failed')),
          },
        };
      case 'started':
        record.push({
          type: 'CompensationFailed',
          data: {
            step: name,
            attempt: c.attempt,
            error: interrupted(c.attempt),
            final: c.attempt - c.attemptBase >= compensation.retry.attempts,
          },
        });
        return finish();
      case 'retrying':
        if (c.retryAt !== null && now < c.retryAt) {
          pend({
            status: 'retrying',
            step: name,
            waitingFor: null,
            waitKey: null,
            wakeAt: c.retryAt,
          });
          return finish();
        }
        return startCompensation(c.attempt + 1, c.attemptBase, c.firstStartedAt);
    }
  }
  record.push({
    type: 'SagaCompensated',
    data: { failure: state.failure, compensated: [...state.compensated] },
  });
  return finish();
}
