import { EvidentError } from '@evident/envelope';

/** Codes thrown by `@evident/eventstore/archive` (bad arguments use `INVALID_ARGUMENT`). */
export type ArchiveErrorCode =
  /** Another process is archiving to the same target right now. */
  | 'ARCHIVE_BUSY'
  /** The role cannot read every tenant's events (run the archive as the auditor role). */
  | 'ARCHIVE_NOT_PERMITTED'
  /** The archive's runs do not follow each other, or miss events the store no longer has. */
  | 'ARCHIVE_INCOMPLETE'
  /** A file or manifest does not match what was written (see `verifyArchive`). */
  | 'ARCHIVE_CORRUPT'
  /** The retention policy does not allow purging. */
  | 'PURGE_NOT_ALLOWED'
  /** The role may not purge (only the schema's owner may). */
  | 'PURGE_NOT_PERMITTED';

/**
 * Error of the archive, replay and purge. Check it with `isEvidentError(error, 'ARCHIVE_BUSY')`
 * rather than `instanceof`, so two copies of the package agree. Messages name runs, files and
 * checkpoints, never payload values or stream ids.
 */
export class ArchiveError extends EvidentError<ArchiveErrorCode> {}
