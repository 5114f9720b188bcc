import { EvidentError, isEvidentError } from '@evident/envelope';
import type { GuardEvaluation } from './persistedState.js';

/**
 * Codes thrown by @evident/statemachines. Bad arguments (a malformed entity id, a machine with an
 * inline guard) use the envelope's `INVALID_ARGUMENT`; a lost race that every retry lost is the
 * store's `CONCURRENCY_CONFLICT`.
 */
export type StateMachineErrorCode =
  | 'TRANSITION_REJECTED'
  | 'ILLEGAL_TRANSITION'
  | 'UNKNOWN_STATE'
  | 'MACHINE_VERSION_MISMATCH'
  | 'UNSUPPORTED_ACTION'
  | 'OPTIONAL_DEPENDENCY_MISSING';

/** Base class of this package's errors; branch on `code` with {@link isStateMachineError}. */
export class StateMachineError<
  Code extends StateMachineErrorCode = StateMachineErrorCode,
> extends EvidentError<Code> {}

/** Leaf paths of a state value: `{ review: { legal: 'pending' } }` → `['review.legal.pending']`. */
export function stateValuePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (value === null || typeof value !== 'object') return [prefix + String(value)];
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return [prefix.replace(/\.$/, '')];
  return entries.flatMap(([key, child]) => stateValuePaths(child, `${prefix}${key}.`));
}

/** A state value as messages show it: `review.legal.pending`, or `{a.x, b.y}` for regions. */
export function describeStateValue(value: unknown): string {
  const paths = stateValuePaths(value);
  return paths.length === 1 ? paths[0]! : `{${paths.join(', ')}}`;
}

/**
 * The entity's current state does not accept the event (no transition for it, or every guard
 * refused). Nothing changed; the rejection was recorded as a `TransitionRejected` event unless
 * `recordRejections: false`.
 *
 * The message names the state and the event type, never the entity id or the event's payload.
 */
export class TransitionRejectedError extends StateMachineError<'TRANSITION_REJECTED'> {
  /** The state the entity is (still) in. */
  readonly state: unknown;
  readonly eventType: string;
  /** Stream version of the entity after the rejection was recorded. */
  readonly version: number;
  /** The guards evaluated while looking for a transition, with their results. */
  readonly guards: readonly GuardEvaluation[];
  /** Whether a `TransitionRejected` event was appended. */
  readonly recorded: boolean;

  constructor(args: {
    state: unknown;
    eventType: string;
    version: number;
    guards: readonly GuardEvaluation[];
    recorded: boolean;
    reason: 'no-transition' | 'guards-refused' | 'machine-done';
  }) {
    const why =
      args.reason === 'machine-done'
        ? 'the machine has reached a final state'
        : args.reason === 'guards-refused'
          ? `every guard refused (${args.guards.map((g) => `${g.guard}=${g.result}`).join(', ')})`
          : 'the state has no transition for it';
    super(
      'TRANSITION_REJECTED',
      `${args.eventType} is not accepted in state ${describeStateValue(args.state)}: ${why}`,
    );
    this.state = args.state;
    this.eventType = args.eventType;
    this.version = args.version;
    this.guards = args.guards;
    this.recorded = args.recorded;
  }
}

/** `true` for a {@link TransitionRejectedError} from any copy of this package. */
export function isTransitionRejectedError(error: unknown): error is TransitionRejectedError {
  return isEvidentError(error, 'TRANSITION_REJECTED');
}

/**
 * No event accepted in the entity's current state leads to the requested target state: a
 * compensation or correction that the machine does not allow. Nothing was written.
 */
export class IllegalTransitionError extends StateMachineError<'ILLEGAL_TRANSITION'> {
  readonly from: unknown;
  readonly target: unknown;
  /** The event types that were tried. */
  readonly tried: readonly string[];

  constructor(from: unknown, target: unknown, tried: readonly string[]) {
    super(
      'ILLEGAL_TRANSITION',
      `no transition leads from ${describeStateValue(from)} to ${describeStateValue(target)} (tried ${
        tried.length === 0 ? 'no events' : tried.join(', ')
      })`,
    );
    this.from = from;
    this.target = target;
    this.tried = tried;
  }
}

/** `true` for an {@link IllegalTransitionError} from any copy of this package. */
export function isIllegalTransitionError(error: unknown): error is IllegalTransitionError {
  return isEvidentError(error, 'ILLEGAL_TRANSITION');
}

/**
 * A persisted instance is in a state the current machine does not have, and no registered
 * migration maps it to one. The message names the state and both machine versions.
 */
export class UnknownStateError extends StateMachineError<'UNKNOWN_STATE'> {
  /** Dotted path of the missing state, e.g. `review.legal.escalated`. */
  readonly state: string;
  readonly machineId: string;
  /** Machine version the instance was persisted with. */
  readonly storedVersion: number;
  /** Machine version loading it. */
  readonly currentVersion: number;

  constructor(state: string, machineId: string, storedVersion: number, currentVersion: number) {
    super(
      'UNKNOWN_STATE',
      `state '${state}' of a ${machineId} v${storedVersion} instance does not exist in ${machineId} v${currentVersion}` +
        (storedVersion === currentVersion
          ? '; the machine changed without a version bump: raise its version and register a migration'
          : `; register a migration from v${storedVersion} that maps it to an existing state`),
    );
    this.state = state;
    this.machineId = machineId;
    this.storedVersion = storedVersion;
    this.currentVersion = currentVersion;
  }
}

/** `true` for an {@link UnknownStateError} from any copy of this package. */
export function isUnknownStateError(error: unknown): error is UnknownStateError {
  return isEvidentError(error, 'UNKNOWN_STATE');
}

/** `true` for any error of this package, optionally with one of the given codes. */
export function isStateMachineError<Code extends StateMachineErrorCode>(
  error: unknown,
  ...codes: readonly Code[]
): error is StateMachineError<Code> {
  const all: readonly StateMachineErrorCode[] = [
    'TRANSITION_REJECTED',
    'ILLEGAL_TRANSITION',
    'UNKNOWN_STATE',
    'MACHINE_VERSION_MISMATCH',
    'UNSUPPORTED_ACTION',
    'OPTIONAL_DEPENDENCY_MISSING',
  ];
  return isEvidentError(error, ...(codes.length > 0 ? codes : all));
}
