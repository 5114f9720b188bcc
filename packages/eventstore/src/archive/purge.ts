import { InvalidArgumentError } from '@evident/envelope';
import type { EventStore } from '../eventStore.js';
import { quoteIdentifier } from '../streamId.js';
import { ArchiveError } from './errors.js';
import type { ArchiveTarget } from './target.js';
import { verifyArchive } from './verify.js';

/** How long the store keeps events, and whether it may ever remove them. */
export interface RetentionPolicy {
  /** A PostgreSQL interval: `'7 years'`, `'6 years 6 months'`. */
  readonly retainFor: string;
  /** Whether `purgeArchived` may remove anything at all. Off unless someone turned it on. */
  readonly purgeAllowed: boolean;
}

export interface StoredRetentionPolicy extends RetentionPolicy {
  readonly updatedAt: string;
  /** The database role that last changed the policy. */
  readonly updatedBy: string;
}

type Store = Pick<EventStore, 'schema' | 'database'>;

/**
 * The store's retention policy: by default keep for 7 years and never purge.
 *
 * @example
 * ```ts
 * const { retainFor, purgeAllowed } = await getRetentionPolicy(store); // '7 years', false
 * ```
 */
export async function getRetentionPolicy(store: Store): Promise<StoredRetentionPolicy> {
  const [row] = await store.database.query<{
    retain_for: string;
    purge_allowed: boolean;
    updated_at: string | Date;
    updated_by: string;
  }>(
    `select retain_for::text as retain_for, purge_allowed, updated_at, updated_by
       from ${quoteIdentifier(store.schema)}.retention_policy`,
  );
  return {
    retainFor: row!.retain_for,
    purgeAllowed: row!.purge_allowed,
    updatedAt: new Date(row!.updated_at).toISOString(),
    updatedBy: row!.updated_by,
  };
}

/**
 * Change the retention policy. Only the schema's owner may (nobody else is granted the table);
 * the change records who made it.
 *
 * @example
 * ```ts
 * await setRetentionPolicy(ownerStore, { retainFor: '7 years', purgeAllowed: true });
 * ```
 * @throws ArchiveError `PURGE_NOT_PERMITTED` for a role other than the owner.
 */
export async function setRetentionPolicy(
  store: Store,
  policy: Partial<RetentionPolicy>,
): Promise<StoredRetentionPolicy> {
  if (!policy || typeof policy !== 'object') {
    throw new InvalidArgumentError('setRetentionPolicy takes { retainFor?, purgeAllowed? }');
  }
  if (policy.retainFor !== undefined && !/^[0-9a-z :.-]{1,64}$/i.test(policy.retainFor)) {
    throw new InvalidArgumentError('retainFor must be a PostgreSQL interval such as "7 years"');
  }
  if (policy.purgeAllowed !== undefined && typeof policy.purgeAllowed !== 'boolean') {
    throw new InvalidArgumentError('purgeAllowed must be a boolean');
  }
  try {
    await store.database.query(
      `update ${quoteIdentifier(store.schema)}.retention_policy
          set retain_for = coalesce($1::interval, retain_for),
              purge_allowed = coalesce($2::boolean, purge_allowed),
              updated_at = now(), updated_by = current_user`,
      [policy.retainFor ?? null, policy.purgeAllowed ?? null],
    );
  } catch (error) {
    if ((error as { code?: string }).code === '42501') {
      throw new ArchiveError('PURGE_NOT_PERMITTED', 'only the owner may change retention', {
        cause: error,
      });
    }
    throw error;
  }
  return getRetentionPolicy(store);
}

export interface PurgeOptions {
  /** The store, connected as the schema's owner: no other role may purge. */
  readonly store: EventStore;
  /**
   * Verify this archive against the store first (which marks its runs verified or not), and purge
   * nothing when a problem is found. Without it, the purge relies on the last verification.
   * @defaultValue none
   */
  readonly target?: ArchiveTarget;
  /** Streams removed per transaction. @defaultValue 1000 */
  readonly streamsPerTransaction?: number;
  readonly signal?: AbortSignal;
}

export interface PurgeResult {
  readonly streams: number;
  readonly events: number;
}

/**
 * Remove from the store the streams whose newest event is older than the retention period and
 * whose every event a verified archive holds, when the retention policy allows it. Everything
 * else stays, and the database enforces it: the events table's trigger lets a row go only inside
 * this purge and only under the same conditions, and no role but the owner may run it.
 *
 * @example
 * ```ts
 * const { streams, events } = await purgeArchived({ store: ownerStore, target });
 * ```
 * @throws ArchiveError `PURGE_NOT_ALLOWED` when the policy does not allow purging,
 *   `PURGE_NOT_PERMITTED` for a role other than the owner, `ARCHIVE_CORRUPT` when `target` fails
 *   verification.
 */
export async function purgeArchived(options: PurgeOptions): Promise<PurgeResult> {
  const { store, target, signal } = options ?? {};
  if (!store || typeof store.schema !== 'string') {
    throw new InvalidArgumentError('purgeArchived takes options { store, target? }');
  }
  const perTransaction = options.streamsPerTransaction ?? 1000;
  if (!Number.isSafeInteger(perTransaction) || perTransaction < 1) {
    throw new InvalidArgumentError('streamsPerTransaction must be a positive integer');
  }
  if (target) {
    const verification = await verifyArchive({ target, store, ...(signal ? { signal } : {}) });
    if (!verification.ok) {
      throw new ArchiveError(
        'ARCHIVE_CORRUPT',
        `the archive failed verification (${verification.problems.length} problem(s)); nothing was purged`,
      );
    }
  }
  let streams = 0;
  let events = 0;
  for (;;) {
    signal?.throwIfAborted();
    let row: { streams_removed: number; events_removed: string | number } | undefined;
    try {
      [row] = await store.database.query(
        `select streams_removed, events_removed
           from ${quoteIdentifier(store.schema)}.purge_archived_events($1)`,
        [perTransaction],
      );
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'EV451') {
        throw new ArchiveError('PURGE_NOT_ALLOWED', 'the retention policy does not allow purging', {
          cause: error,
        });
      }
      if (code === '42501') {
        throw new ArchiveError('PURGE_NOT_PERMITTED', 'only the owner may purge events', {
          cause: error,
        });
      }
      throw error;
    }
    const removed = Number(row?.streams_removed ?? 0);
    streams += removed;
    events += Number(row?.events_removed ?? 0);
    if (removed < perTransaction) return { streams, events };
  }
}
