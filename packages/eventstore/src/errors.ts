import { EvidentError, isEvidentError } from '@evident/envelope';
import type { StreamId } from './streamId.js';

/** Codes thrown by @evident/eventstore (bad arguments use the envelope's `INVALID_ARGUMENT`). */
export type EventStoreErrorCode =
  | 'CONCURRENCY_CONFLICT'
  | 'DUPLICATE_EVENT_ID'
  | 'EVENT_TOO_LARGE'
  | 'BATCH_TOO_LARGE'
  | 'MIGRATION_FAILED'
  | 'SUBSCRIPTION_TIMEOUT'
  | 'STREAM_NOT_ACCESSIBLE'
  | 'INTEGRITY_KEY_INVALID'
  | 'EVENT_NOT_FOUND';

/** Base class of the store's errors. */
export class EventStoreError<
  Code extends EventStoreErrorCode = EventStoreErrorCode,
> extends EvidentError<Code> {}

/** Version a caller expected, in the words of the append API. */
export type ExpectedVersionDescription = number | 'any' | 'no_stream' | 'exists';

/**
 * The stream was not at the expected version: another writer got there first (or the stream
 * does or does not exist). Nothing was written. Reload, decide again, retry.
 *
 * The message names the stream type and versions, not the stream id, which may identify a patient;
 * the id is on `stream` for code that needs it.
 */
export class ConcurrencyError extends EventStoreError<'CONCURRENCY_CONFLICT'> {
  readonly stream: StreamId;
  readonly expected: ExpectedVersionDescription;
  /** The stream's version when the append was refused; 0 when it does not exist. */
  readonly actual: number;

  constructor(stream: StreamId, expected: ExpectedVersionDescription, actual: number) {
    super(
      'CONCURRENCY_CONFLICT',
      `append to a ${stream.type} stream expected version ${String(expected)} but found ${actual}`,
    );
    this.stream = stream;
    this.expected = expected;
    this.actual = actual;
  }
}

/** `true` for a {@link ConcurrencyError} from any copy of this package. */
export function isConcurrencyError(error: unknown): error is ConcurrencyError {
  return isEvidentError(error, 'CONCURRENCY_CONFLICT');
}

/**
 * An event id is already stored, but not as part of this same append (a retry of the very same
 * append is not an error: it returns the original result).
 */
export class DuplicateEventError extends EventStoreError<'DUPLICATE_EVENT_ID'> {
  readonly eventIds: readonly string[];

  constructor(eventIds: readonly string[]) {
    super(
      'DUPLICATE_EVENT_ID',
      `${eventIds.length} event id(s) are already stored as part of a different append`,
    );
    this.eventIds = eventIds;
  }
}
