import type { AnyEventObject, AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import { createActor, initialTransition } from 'xstate';
import { StateMachineError } from './errors.js';
import type {
  GuardEvaluation,
  PendingTimer,
  PersistedMachineSnapshot,
  RejectionReason,
  ScheduledAction,
  StepEffects,
} from './persistedState.js';

/**
 * The pure core: decide a step with XState's own `transition()` / `initialTransition()` on a
 * restored snapshot, and turn the actions XState returns (it never runs them) into what the
 * durable runtime persists: jobs for named actions, timers for delayed events, cancellations.
 * Nothing here does I/O, so a decision can be retried on fresh state as often as a race needs.
 */

// Guards run synchronously inside transition(), so one slot is enough to collect them: it is set
// just before the call and cleared right after, with no await in between.
let recording: GuardEvaluation[] | null = null;

function record<T>(fn: () => T): [T, GuardEvaluation[]] {
  const previous = recording;
  const guards: GuardEvaluation[] = [];
  recording = guards;
  try {
    return [fn(), guards];
  } finally {
    recording = previous;
  }
}

const recordingMachines = new WeakSet<AnyStateMachine>();
const wrappedMachines = new WeakMap<AnyStateMachine, AnyStateMachine>();

/**
 * The same machine with every named guard wrapped to record its name, params and result. Guard
 * implementations that are themselves built-ins (`and([...])` under a name) are left alone: the
 * named guards inside them are recorded instead.
 */
export function withRecordedGuards<M extends AnyStateMachine>(machine: M): M {
  if (recordingMachines.has(machine)) return machine;
  const cached = wrappedMachines.get(machine);
  if (cached) return cached as M;
  const guards = machine.implementations.guards as Record<string, unknown>;
  const wrapped: Record<string, unknown> = {};
  for (const [name, implementation] of Object.entries(guards)) {
    if (typeof implementation !== 'function' || 'check' in implementation) continue;
    const guard = implementation as (args: unknown, params: unknown) => unknown;
    wrapped[name] = (args: unknown, params: unknown) => {
      const result = Boolean(guard(args, params));
      recording?.push(
        params === undefined ? { guard: name, result } : { guard: name, params, result },
      );
      return result;
    };
  }
  const result = machine.provide({ guards: wrapped } as never) as M;
  recordingMachines.add(result);
  wrappedMachines.set(machine, result);
  return result;
}

/** XState's executable action, as `transition()` returns it. */
interface ExecutableAction {
  readonly type: string;
  readonly params?: unknown;
}

/** The effects of a step on the entity's timers and the jobs it creates. */
export interface StepOutcome {
  readonly actions: ScheduledAction[];
  /** Timers pending after the step. */
  readonly timers: PendingTimer[];
  readonly effects: StepEffects;
}

/**
 * Turn XState's executable actions into jobs and timer changes, in order, as XState's own
 * scheduler would apply them: a delayed `raise` schedules, a `cancel` removes every pending
 * timer with that id (one scheduled earlier in the same step included).
 *
 * @throws StateMachineError `UNSUPPORTED_ACTION` for a built-in that cannot be durable (reached
 * through `enqueueActions`, which the start-up check cannot see into). Nothing is written then.
 */
export function applyActions(
  executable: readonly ExecutableAction[],
  pending: readonly PendingTimer[],
  version: number,
  fired: { readonly id: string; readonly version: number } | null,
): StepOutcome {
  let timers = fired
    ? pending.filter((t) => !(t.id === fired.id && t.version === fired.version))
    : [...pending];
  const actions: ScheduledAction[] = [];
  let schedule: PendingTimer[] = [];
  const cancel: { id: string; version: number }[] = [];
  executable.forEach((action, position) => {
    const { type } = action;
    if (type === 'xstate.raise') {
      const p = action.params as { event: EventObject; id?: string; delay?: unknown };
      if (typeof p.delay !== 'number') return; // an immediate raise was already processed
      // XState makes up a random id for a delayed raise without one; a durable id must not be.
      const timer: PendingTimer = {
        id: p.id ?? `raise.${version}.${position}`,
        version,
        event: p.event,
        delay: p.delay,
      };
      timers.push(timer);
      schedule.push(timer);
    } else if (type === 'xstate.cancel') {
      const id = (action.params as { sendId: string }).sendId;
      for (const t of timers) {
        if (t.id === id && t.version !== version) cancel.push({ id: t.id, version: t.version });
      }
      timers = timers.filter((t) => t.id !== id);
      schedule = schedule.filter((t) => t.id !== id);
    } else if (type === 'xstate.log') {
      // Logging while deciding would log again on every retry and replay; not an effect.
    } else if (type.startsWith('xstate.')) {
      throw new StateMachineError(
        'UNSUPPORTED_ACTION',
        `${type} is not durable: model it as a named action that sends its result back as an event`,
      );
    } else {
      actions.push(
        action.params === undefined
          ? { index: actions.length, type }
          : { index: actions.length, type, params: action.params },
      );
    }
  });
  return { actions, timers, effects: { actions, schedule, cancel, fired } };
}

/** Whether a step's effects need the trigger at all. */
export function hasEffects(effects: StepEffects): boolean {
  return (
    effects.actions.length > 0 ||
    effects.schedule.length > 0 ||
    effects.cancel.length > 0 ||
    effects.fired !== null
  );
}

/** What `StateMachine.transition` needs from an actor while computing a step. */
interface InertScope {
  readonly self: unknown;
  readonly system: unknown;
  readonly id: '';
  readonly sessionId: '';
  defer(): void;
  logger(): void;
  stopChild(): void;
  emit(): void;
  actionExecutor: (action: ExecutableAction) => void;
}

const scopes = new WeakMap<AnyStateMachine, InertScope>();

/**
 * XState's `transition(machine, snapshot, event)` is `machine.transition(snapshot, event, scope)`
 * with an inert scope whose actor is built anew on every call; building it (which computes the
 * machine's initial state) was 95% of a decision here (16 µs of 17). This is the same call with
 * one such scope per machine, built the same way (an actor never started) and reused: durable
 * machines spawn and invoke nothing, so nothing registers in its system between calls.
 */
function pureTransition(
  machine: AnyStateMachine,
  snapshot: AnyMachineSnapshot,
  event: AnyEventObject,
): [AnyMachineSnapshot, ExecutableAction[]] {
  let scope = scopes.get(machine);
  if (!scope) {
    const actor = createActor(machine);
    scope = {
      self: actor,
      system: actor.system,
      id: '',
      sessionId: '',
      defer() {},
      logger() {},
      stopChild() {},
      emit() {},
      actionExecutor() {},
    };
    scopes.set(machine, scope);
  }
  const actions: ExecutableAction[] = [];
  scope.actionExecutor = (action) => {
    actions.push(action);
  };
  const next = machine.transition(snapshot, event as never, scope as never) as AnyMachineSnapshot;
  return [next, actions];
}

export type Decision =
  | {
      readonly kind: 'transitioned';
      readonly next: AnyMachineSnapshot;
      readonly guards: GuardEvaluation[];
      readonly executable: ExecutableAction[];
    }
  | {
      readonly kind: 'rejected';
      readonly reason: RejectionReason;
      readonly guards: GuardEvaluation[];
    };

/**
 * Decide one step. An event is accepted when XState selects at least one transition for it (a
 * targetless transition counts: it is a step with actions and no state change).
 *
 * `machine` must come from {@link withRecordedGuards} for guards to be recorded.
 */
export function decide(
  machine: AnyStateMachine,
  snapshot: AnyMachineSnapshot,
  event: AnyEventObject,
): Decision {
  if (snapshot.status !== 'active') {
    return { kind: 'rejected', reason: 'machine-done', guards: [] };
  }
  const [enabled, selectionGuards] = record(() => machine.getTransitionData(snapshot, event));
  if (enabled.length === 0) {
    return {
      kind: 'rejected',
      reason: selectionGuards.length > 0 ? 'guards-refused' : 'no-transition',
      guards: selectionGuards,
    };
  }
  const [[next, executable], guards] = record(() => pureTransition(machine, snapshot, event));
  return { kind: 'transitioned', next, guards, executable };
}

/** The creation step: XState's initial transition, with the guards of any eventless step. */
export function decideInitial(
  machine: AnyStateMachine,
  input: unknown,
): { next: AnyMachineSnapshot; guards: GuardEvaluation[]; executable: ExecutableAction[] } {
  const [[next, executable], guards] = record(() => initialTransition(machine, input as never));
  return { next, guards, executable: executable as ExecutableAction[] };
}

/** XState's persisted form of a snapshot, as the store will hold it. */
export function persist(
  machine: AnyStateMachine,
  snapshot: AnyMachineSnapshot,
): PersistedMachineSnapshot {
  // XState keeps `output` and `error` keys even when undefined; JSON would drop them, and so do
  // we, so a snapshot decided here and one loaded from the store compare equal. Nothing else can
  // differ: the store refuses data that is not plain JSON (undefined, NaN, Dates, classes).
  const { output, error, ...rest } = machine.getPersistedSnapshot(snapshot) as Record<
    string,
    unknown
  >;
  return {
    ...rest,
    ...(output === undefined ? {} : { output }),
    ...(error === undefined ? {} : { error }),
  } as PersistedMachineSnapshot;
}

/**
 * A live snapshot from a persisted one, without running anything. `restoreSnapshot` needs an
 * actor scope only to recreate child actors, which durable machines do not have.
 */
export function restore(
  machine: AnyStateMachine,
  persisted: PersistedMachineSnapshot,
): AnyMachineSnapshot {
  return machine.restoreSnapshot(persisted as never, {} as never) as AnyMachineSnapshot;
}
