import { EvidentError, isEvidentError } from '@evident/envelope';

/**
 * Codes thrown by @evident/saga. Bad arguments use the envelope's `INVALID_ARGUMENT`; a lost race
 * for an instance is handled inside the runtime and never reaches callers.
 *
 * @example
 * ```ts
 * const httpStatus = (code: SagaErrorCode) => (code === 'SAGA_NOT_FOUND' ? 404 : 409);
 * ```
 */
export type SagaErrorCode =
  | 'SAGA_DEFINITION_INVALID'
  | 'SAGA_NOT_REGISTERED'
  | 'SAGA_NOT_FOUND'
  | 'SAGA_ID_CONFLICT'
  | 'SAGA_TIMEOUT'
  | 'COMPENSATION_NEVER_LEGAL'
  | 'COMPENSATION_ILLEGAL'
  | 'OPERATOR_ACTION_REFUSED'
  | 'HISTORY_INCOMPATIBLE';

/**
 * Base class of the saga runtime's errors; branch on `code` with {@link isSagaError}.
 *
 * @example
 * ```ts
 * throw new SagaError('SAGA_NOT_FOUND', 'no saga instance with that id');
 * ```
 */
export class SagaError<Code extends SagaErrorCode = SagaErrorCode> extends EvidentError<Code> {}

/**
 * A step attempt, a whole step, or a wait ran out of time. A step's `run` sees it as the reason
 * of its `signal`; a wait that times out fails the saga with it (unless it continues on timeout).
 *
 * @example
 * ```ts
 * run: async ({ signal }) => {
 *   const response = await fetch(payerUrl, { signal }); // aborted after the attempt's timeout
 *   return response.json();
 * }
 * ```
 */
export class SagaTimeoutError extends SagaError<'SAGA_TIMEOUT'> {
  /** What ran out of time. */
  readonly scope: 'attempt' | 'step' | 'wait';
  /** The limit, in milliseconds. */
  readonly timeoutMs: number;

  constructor(scope: 'attempt' | 'step' | 'wait', name: string, timeoutMs: number) {
    super('SAGA_TIMEOUT', `${scope} ${name} timed out after ${timeoutMs} ms`);
    this.scope = scope;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A compensation's transition is not legal for its participant's current state (checked with the
 * participant's state machine before it runs). Nothing was sent to the participant; the instance is
 * dead-lettered with the participant's state.
 */
export class IllegalCompensationError extends SagaError<'COMPENSATION_ILLEGAL'> {
  /** The participant's state when the check was made. */
  readonly state: unknown;
  /** The state the compensation wanted it in. */
  readonly target: unknown;

  constructor(step: string, state: unknown, target: unknown) {
    super(
      'COMPENSATION_ILLEGAL',
      `compensation of ${step} cannot move its participant from ${JSON.stringify(state)} to ${JSON.stringify(target)}`,
    );
    this.state = state;
    this.target = target;
  }
}

/**
 * `true` for an error of this package, optionally with one of `codes`; compares codes, so two
 * copies of the package agree.
 *
 * @example
 * ```ts
 * if (isSagaError(error, 'SAGA_NOT_FOUND')) return reply.status(404).send();
 * ```
 */
export function isSagaError<Code extends SagaErrorCode>(
  error: unknown,
  ...codes: readonly Code[]
): error is SagaError<Code> {
  if (!isEvidentError(error)) return false;
  const code = (error as { code: string }).code;
  return codes.length > 0
    ? (codes as readonly string[]).includes(code)
    : sagaErrorCodes.has(code as SagaErrorCode);
}

const sagaErrorCodes = new Set<SagaErrorCode>([
  'SAGA_DEFINITION_INVALID',
  'SAGA_NOT_REGISTERED',
  'SAGA_NOT_FOUND',
  'SAGA_ID_CONFLICT',
  'SAGA_TIMEOUT',
  'COMPENSATION_NEVER_LEGAL',
  'COMPENSATION_ILLEGAL',
  'OPERATOR_ACTION_REFUSED',
  'HISTORY_INCOMPATIBLE',
]);

/**
 * `true` for a {@link SagaTimeoutError} from any copy of this package.
 *
 * @example
 * ```ts
 * if (isSagaTimeoutError(signal.reason)) metrics.payerTimeouts.add(1);
 * ```
 */
export function isSagaTimeoutError(error: unknown): error is SagaTimeoutError {
  return isEvidentError(error, 'SAGA_TIMEOUT');
}

/**
 * `true` for an {@link IllegalCompensationError} from any copy of this package.
 *
 * @example
 * ```ts
 * const illegal = deadLetter.error.code === 'COMPENSATION_ILLEGAL';
 * ```
 */
export function isIllegalCompensationError(error: unknown): error is IllegalCompensationError {
  return isEvidentError(error, 'COMPENSATION_ILLEGAL');
}

/** What the saga's events record of an error: never a stack, never a payload. */
export interface RecordedError {
  /** The error's class name, e.g. `PayerTimeoutError`. */
  readonly name: string;
  /** Its `code`, when it has one. */
  readonly code?: string;
  readonly message: string;
}

/**
 * The record of an error as stored in events. Messages are kept (operators need them) but cut at
 * 500 characters; write messages without PHI, as every Evident package does.
 */
export function recordError(error: unknown): RecordedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name || 'Error',
      ...(typeof code === 'string' || typeof code === 'number' ? { code: String(code) } : {}),
      message: error.message.slice(0, 500),
    };
  }
  return { name: 'NonError', message: `a non-error was thrown (${typeof error})` };
}
