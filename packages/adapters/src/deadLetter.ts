import type { Envelope } from '@evident/envelope';

/**
 * Why a message was dead-lettered:
 * - `handler_failed`: the handler threw on the last allowed attempt (`error` is what it threw);
 * - `malformed_message`: the body is not a valid envelope (`error.code` says why, e.g.
 *   `PAYLOAD_MALFORMED`, `PAYLOAD_TOO_DEEP`, `INVALID_ARGUMENT`); the handler never saw it;
 * - `delivery_limit`: delivered more often than allowed without an outcome, e.g. its consumer
 *   crashed every time, so the broker (or the adapter) moved it without running the handler.
 */
export type DeadLetterReason = 'handler_failed' | 'malformed_message' | 'delivery_limit';

/** An error as stored with a dead letter: enough to triage, never a payload value. */
export interface FailureInfo {
  /** The error's `name`, e.g. `EligibilityError`. */
  readonly name: string;
  /** The error's `code` when it has a string one (Evident errors, Node system errors). */
  readonly code?: string;
  /** The error's message, cut to 1,000 characters. */
  readonly message: string;
}

/** A message that ended in a subscription's dead-letter queue, as {@link Broker.deadLetters} reads it. */
export interface DeadLetter {
  /** The subscription queue it was dead-lettered from. */
  readonly queue: string;
  /** The broker's message id. */
  readonly messageId: string;
  readonly topic: string;
  readonly reason: DeadLetterReason;
  readonly error: FailureInfo;
  /** Attempts made, the failing one included. */
  readonly attempts: number;
  /** When it was dead-lettered (ISO 8601), where known. */
  readonly deadLetteredAt?: string;
  /** The decoded envelope; absent when the body is malformed. */
  readonly envelope?: Envelope;
  /** The message body as received, for malformed messages. */
  readonly body: string;
}

const maxMessage = 1000;

/**
 * Describe a thrown value for a dead letter: name, code and message, nothing else (no stack, no
 * properties that could carry payload values).
 *
 * @example
 * ```ts
 * describeFailure(new TypeError('boom')); // { name: 'TypeError', message: 'boom' }
 * ```
 */
export function describeFailure(error: unknown): FailureInfo {
  if (
    error instanceof Error ||
    (typeof error === 'object' && error !== null && 'message' in error)
  ) {
    const e = error as { name?: unknown; code?: unknown; message?: unknown };
    const name = typeof e.name === 'string' && e.name ? e.name : 'Error';
    const message = typeof e.message === 'string' ? e.message.slice(0, maxMessage) : '';
    return typeof e.code === 'string' ? { name, code: e.code, message } : { name, message };
  }
  // A thrown string or number: keep its type, not its value, which may be anything.
  return { name: 'NonErrorThrown', message: `a ${typeof error} was thrown` };
}
