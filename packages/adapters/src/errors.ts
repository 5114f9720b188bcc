import { EvidentError, isEvidentError } from '@evident/envelope';

/**
 * Codes thrown by @evident/adapters. Bad arguments use the envelope's `INVALID_ARGUMENT`, payloads
 * over a broker's size limit the envelope's `PayloadError` with code `PAYLOAD_TOO_LARGE`.
 *
 * - `PUBLISH_REJECTED`: the broker refused the message (negative confirm, failed batch entry).
 * - `PUBLISH_TIMEOUT`: the broker did not confirm in time, e.g. during an outage. The message may
 *   or may not have been stored: publish it again (duplicates are allowed, loss is not).
 * - `BROKER_UNAVAILABLE`: the broker could not be reached in time.
 * - `BROKER_CLOSED`: the broker or subscription was closed before the call could finish.
 * - `UNSUPPORTED_OPTION`: an option this broker cannot honour and must not ignore, e.g. `delay`
 *   on SQS (delivering early would be wrong).
 * - `TOPOLOGY_CONFLICT`: a queue or exchange exists with different settings (e.g. a queue first
 *   declared without priorities is now asked for with `maxPriority`).
 * - `CONNECTION_LOST`: the connection carrying a delivery dropped; the broker will redeliver it.
 *   Used as the `signal` abort reason, not thrown by calls.
 */
export type BrokerErrorCode =
  | 'PUBLISH_REJECTED'
  | 'PUBLISH_TIMEOUT'
  | 'BROKER_UNAVAILABLE'
  | 'BROKER_CLOSED'
  | 'UNSUPPORTED_OPTION'
  | 'TOPOLOGY_CONFLICT'
  | 'CONNECTION_LOST';

/**
 * The error of every broker adapter; `code` says what happened.
 *
 * @example
 * ```ts
 * try {
 *   await broker.publish(envelope);
 * } catch (error) {
 *   // Not confirmed: the relay keeps its checkpoint and publishes again later.
 *   if (isBrokerError(error, 'PUBLISH_TIMEOUT', 'PUBLISH_REJECTED')) return retryLater();
 *   throw error;
 * }
 * ```
 */
export class BrokerError<
  Code extends BrokerErrorCode = BrokerErrorCode,
> extends EvidentError<Code> {}

/**
 * `true` when `error` is a {@link BrokerError} (from any copy of this package), optionally with one
 * of the given codes.
 *
 * @example
 * ```ts
 * if (isBrokerError(error, 'PUBLISH_TIMEOUT')) scheduleRepublish(envelope);
 * ```
 */
export function isBrokerError<Code extends BrokerErrorCode>(
  error: unknown,
  ...codes: readonly Code[]
): error is BrokerError<Code> {
  const all: readonly BrokerErrorCode[] = [
    'PUBLISH_REJECTED',
    'PUBLISH_TIMEOUT',
    'BROKER_UNAVAILABLE',
    'BROKER_CLOSED',
    'UNSUPPORTED_OPTION',
    'TOPOLOGY_CONFLICT',
    'CONNECTION_LOST',
  ];
  return isEvidentError(error, ...(codes.length > 0 ? codes : (all as readonly Code[])));
}
