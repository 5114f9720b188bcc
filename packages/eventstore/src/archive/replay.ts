import { envelopePatterns, InvalidArgumentError } from '@evident/envelope';
import { type Checkpoint, decodeCheckpoint, startOfLog } from '../checkpoint.js';
import type { EventStore } from '../eventStore.js';
import {
  type EventRow,
  eventColumns,
  toRecordedEvent as fromStoreRow,
  type RecordedEvent,
} from '../recordedEvent.js';
import { quoteIdentifier } from '../streamId.js';
import { seesAllTenants } from './access.js';
import { ArchiveError } from './errors.js';
import { type ArchivedFile, chainOf, readManifests, sha256 } from './manifest.js';
import { openParquet, type ParquetFile, rowGroupSize } from './parquet.js';
import { type ArchivedRow, dayOf, toRecordedEvent } from './rows.js';
import type { ArchiveTarget } from './target.js';

/**
 * Receives replayed events one at a time, in log order; the next one waits for its promise.
 * (A function for now; replaying into a subscription's handler is planned.)
 */
export type ReplayHandler = (event: RecordedEvent) => Promise<void> | void;

export interface ReplayProgress {
  readonly phase: 'archive' | 'store';
  /** Events delivered so far. */
  readonly events: number;
  /** Events the archive's manifests hold in the selected files (an upper bound for its phase). */
  readonly archiveEstimate: number;
}

export interface ReplayOptions {
  /**
   * The live store: events after the archive's last checkpoint come from here. A store with a
   * tenant (or a role that sees one tenant) also limits the archive's events to that tenant.
   * @defaultValue none: the archive only
   */
  readonly store?: EventStore;
  /** The archive: the events up to its last run's checkpoint come from here. @defaultValue none */
  readonly archive?: ArchiveTarget;
  /** First instant of the window, by `recordedAt` (inclusive). @defaultValue the beginning */
  readonly from?: Date;
  /** End of the window, by `recordedAt` (exclusive). @defaultValue no end */
  readonly to?: Date;
  /** Only events of these types. @defaultValue every type */
  readonly types?: readonly string[];
  readonly into: ReplayHandler;
  /** Events read from the store per query. @defaultValue 1000 */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: ReplayProgress) => void;
}

export interface ReplayResult {
  /** Events delivered. */
  readonly events: number;
  readonly fromArchive: number;
  readonly fromStore: number;
  /** Where the replay ended in the log: the last event read, or the archive's end. */
  readonly checkpoint: Checkpoint;
}

function checkDate(name: string, value: unknown): number | null {
  if (value === undefined) return null;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidArgumentError(`${name} must be a valid Date`);
  }
  return value.getTime();
}

/**
 * Replay a window of time (by `recordedAt`) into `into`, in global log order: first from the
 * archive, up to its last run's checkpoint, then from the live store after that checkpoint. The
 * archive holds exactly the log up to that checkpoint, so nothing is delivered twice and nothing
 * is skipped, whether or not the store has purged what the archive holds. The live part reads what
 * is committed when it gets there, then returns.
 *
 * @example
 * ```ts
 * await replay({
 *   store,
 *   archive: createDirectoryTarget('./archive'),
 *   from: new Date('2026-01-01T00:00:00Z'),
 *   to: new Date('2026-04-01T00:00:00Z'),
 *   types: ['ClaimSubmitted', 'ClaimDenied'],
 *   into: async (event) => report.add(event),
 * });
 * ```
 * @throws ArchiveError `ARCHIVE_INCOMPLETE` when the archive's runs do not chain from the start of
 *   the log, or when the store purged events the archive does not hold; `ARCHIVE_CORRUPT` for a
 *   file that cannot be read.
 */
export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  if (!options || typeof options !== 'object' || typeof options.into !== 'function') {
    throw new InvalidArgumentError('replay takes options { into, store?, archive?, from?, to? }');
  }
  const { store, archive: target, into, signal, types } = options;
  if (!store && !target)
    throw new InvalidArgumentError('replay needs a store, an archive, or both');
  const from = checkDate('from', options.from);
  const to = checkDate('to', options.to);
  if (from !== null && to !== null && to <= from) {
    throw new InvalidArgumentError('to must be after from');
  }
  if (
    types !== undefined &&
    (!Array.isArray(types) ||
      types.some((t) => typeof t !== 'string' || !envelopePatterns.type.test(t)))
  ) {
    throw new InvalidArgumentError(
      `types must be an array of event types matching ${envelopePatterns.type}`,
    );
  }
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new InvalidArgumentError('batchSize must be an integer from 1 to 10000');
  }
  const typeSet = types ? new Set(types) : null;
  const inWindow = (ms: number) => (from === null || ms >= from) && (to === null || ms < to);

  // Which tenant's archived events the caller may see: all, when the store's role reads every
  // tenant (or there is no store: whoever reads the files sees them all anyway).
  const tenant: { readonly only: boolean; readonly id: string | null } =
    store && !(await seesAllTenants(store))
      ? { only: true, id: store.tenant ?? null }
      : { only: false, id: null };

  let delivered = 0;
  let fromArchive = 0;
  let checkpoint: Checkpoint = startOfLog;
  let archiveEstimate = 0;

  if (target) {
    const chain = chainOf(await readManifests(target));
    checkpoint = chain.through;
    const fromDay = from === null ? null : dayOf(from);
    const toDay = to === null ? null : dayOf(to);
    const files = chain.manifests
      .flatMap(({ manifest }) => manifest.files)
      .filter(
        (f) =>
          (typeSet === null || typeSet.has(f.eventType)) &&
          (fromDay === null || f.date >= fromDay) &&
          (toDay === null || f.date <= toDay) &&
          (from === null || Date.parse(f.maxRecordedAt) >= from) &&
          (to === null || Date.parse(f.minRecordedAt) < to),
      )
      .sort((a, b) => (a.minCheckpoint < b.minCheckpoint ? -1 : 1));
    archiveEstimate = files.reduce((n, f) => n + f.rows, 0);
    for await (const row of mergeFiles(target, files, signal)) {
      if (!inWindow(row.recordedAt)) continue;
      if (tenant.only && row.tenantId !== tenant.id) continue;
      await into(toRecordedEvent(row));
      delivered += 1;
      fromArchive += 1;
      if (delivered % batchSize === 0) {
        options.onProgress?.({ phase: 'archive', events: delivered, archiveEstimate });
      }
    }
    options.onProgress?.({ phase: 'archive', events: delivered, archiveEstimate });
  }

  let fromStore = 0;
  if (store) {
    await assertNothingPurgedBeyond(store, checkpoint);
    const s = quoteIdentifier(store.schema);
    const sql = `with horizon as (select pg_snapshot_xmin(pg_current_snapshot()) as xmin)
      select ${eventColumns} from horizon as h
      join ${s}.events as ev
        on (ev.transaction_id, ev.global_position) > ($1::text::xid8, $2::bigint)
       and ev.transaction_id < h.xmin
      where ($4::timestamptz is null or ev.recorded_at >= $4::timestamptz)
        and ($5::timestamptz is null or ev.recorded_at < $5::timestamptz)
        and ($6::text[] is null or ev.event_type = any($6::text[]))
      order by ev.transaction_id, ev.global_position
      limit $3`;
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    for (;;) {
      signal?.throwIfAborted();
      const { transactionId, position } = decodeCheckpoint(checkpoint);
      const rows = await store.database.query<EventRow>(sql, [
        transactionId,
        position,
        batchSize,
        iso(from),
        iso(to),
        types ?? null,
      ]);
      for (const row of rows) {
        const event = fromStoreRow(row);
        await into(event);
        checkpoint = event.checkpoint;
        delivered += 1;
        fromStore += 1;
      }
      options.onProgress?.({ phase: 'store', events: delivered, archiveEstimate });
      if (rows.length < batchSize) break;
    }
  }
  return { events: delivered, fromArchive, fromStore, checkpoint };
}

/**
 * A replay that starts from the store at `after` would silently miss events the store purged
 * after that point: refuse it. (A role without access to the purge log is not told, and cannot
 * have purged.)
 */
async function assertNothingPurgedBeyond(store: EventStore, after: Checkpoint): Promise<void> {
  let rows: { through: string | null }[];
  try {
    rows = await store.database.query<{ through: string | null }>(
      `select max(verified_through) as through from ${quoteIdentifier(store.schema)}.archive_purges`,
    );
  } catch (error) {
    if ((error as { code?: string }).code === '42501') return;
    throw error;
  }
  const through = rows[0]?.through;
  if (through && through > after) {
    throw new ArchiveError(
      'ARCHIVE_INCOMPLETE',
      'the store purged events this archive does not hold: replay with the archive that holds them',
    );
  }
}

/** A file read a row group at a time. */
interface Cursor {
  readonly file: ParquetFile;
  rows: ArchivedRow[];
  index: number;
  next: number;
}

async function advance(cursor: Cursor): Promise<boolean> {
  cursor.index += 1;
  if (cursor.index < cursor.rows.length) return true;
  if (cursor.next >= cursor.file.rows) return false;
  const end = Math.min(cursor.file.rows, cursor.next + rowGroupSize);
  cursor.rows = await cursor.file.read(cursor.next, end);
  cursor.index = 0;
  cursor.next = end;
  return cursor.rows.length > 0;
}

/**
 * The rows of many files (each in log order) merged into log order. A file is opened only when
 * the merge reaches its first checkpoint, so only the files of the day being replayed are in
 * memory at a time.
 */
async function* mergeFiles(
  target: ArchiveTarget,
  files: readonly ArchivedFile[],
  signal: AbortSignal | undefined,
): AsyncGenerator<ArchivedRow> {
  const active: Cursor[] = [];
  let pending = 0;
  for (;;) {
    signal?.throwIfAborted();
    let smallest: Cursor | undefined;
    for (const c of active) {
      if (!smallest || c.rows[c.index]!.checkpoint < smallest.rows[smallest.index]!.checkpoint) {
        smallest = c;
      }
    }
    const upcoming = files[pending];
    if (
      upcoming &&
      (!smallest || upcoming.minCheckpoint < smallest.rows[smallest.index]!.checkpoint)
    ) {
      pending += 1;
      const bytes = await target.get(upcoming.path);
      if (!bytes) {
        throw new ArchiveError('ARCHIVE_CORRUPT', `${upcoming.path} is missing from the archive`);
      }
      if (sha256(bytes) !== upcoming.sha256) {
        throw new ArchiveError('ARCHIVE_CORRUPT', `${upcoming.path} does not match its checksum`);
      }
      const cursor: Cursor = {
        file: openParquet(bytes, upcoming.path),
        rows: [],
        index: -1,
        next: 0,
      };
      if (await advance(cursor)) active.push(cursor);
      continue;
    }
    if (!smallest) return;
    yield smallest.rows[smallest.index]!;
    if (!(await advance(smallest))) active.splice(active.indexOf(smallest), 1);
  }
}
