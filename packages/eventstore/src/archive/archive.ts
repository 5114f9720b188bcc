import { InvalidArgumentError } from '@evident/envelope';
import { type Checkpoint, decodeCheckpoint, startOfLog } from '../checkpoint.js';
import type { EventStore } from '../eventStore.js';
import { quoteIdentifier } from '../streamId.js';
import { assertSeesAllTenants, withArchiveLock } from './access.js';
import { ArchiveError } from './errors.js';
import { type ArchivedFile, type ArchiveManifest, manifestPath, sha256 } from './manifest.js';
import { encodeParquet } from './parquet.js';
import { type ArchivedRow, type ArchivedRowSql, dayOf, fromSql, logPageSql } from './rows.js';
import type { ArchiveTarget } from './target.js';

export interface ArchiveOptions {
  /**
   * The store to archive, connected as a role that reads every tenant (the schema's auditor role,
   * or its owner where row security is not forced) and without a tenant of its own.
   */
  readonly store: EventStore;
  /** Archive events recorded before this instant. */
  readonly olderThan: Date;
  readonly target: ArchiveTarget;
  /** Events read from the store per query. @defaultValue 1000 */
  readonly batchSize?: number;
  /**
   * Events held in memory before they are written out; a partition with more events than this in
   * one run is split over several files. @defaultValue 100000
   */
  readonly rowsPerFile?: number;
  readonly signal?: AbortSignal;
  /** Called after each batch read, with the number of events archived so far. */
  readonly onProgress?: (progress: { readonly events: number }) => void;
}

export interface ArchiveResult {
  /** The run's number for this target (0 for the first); null when there was nothing to archive. */
  readonly run: number | null;
  readonly events: number;
  readonly files: readonly ArchivedFile[];
  /** Exclusive: where the previous run ended. */
  readonly fromCheckpoint: Checkpoint;
  /** Inclusive: everything up to here is now archived in this target. */
  readonly throughCheckpoint: Checkpoint;
  readonly manifestPath: string | null;
}

/** `type=ClaimSubmitted`: event types may hold `:`, which some file systems refuse. */
const typeFolder = (type: string) => `type=${type.replace(/:/g, '%3A')}`;

function checkOptions(options: ArchiveOptions) {
  if (!options || typeof options !== 'object') {
    throw new InvalidArgumentError('archive takes options { store, olderThan, target }');
  }
  const { store, olderThan, target } = options;
  if (!store || typeof store.schema !== 'string' || !store.database) {
    throw new InvalidArgumentError('store must be an EventStore');
  }
  if (!(olderThan instanceof Date) || Number.isNaN(olderThan.getTime())) {
    throw new InvalidArgumentError('olderThan must be a valid Date');
  }
  if (!target || typeof target.put !== 'function' || typeof target.id !== 'string') {
    throw new InvalidArgumentError('target must be an ArchiveTarget');
  }
  const batchSize = options.batchSize ?? 1000;
  const rowsPerFile = options.rowsPerFile ?? 100_000;
  for (const [name, value, max] of [
    ['batchSize', batchSize, 10_000],
    ['rowsPerFile', rowsPerFile, 10_000_000],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1 || value > max) {
      throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
    }
  }
  return { batchSize, rowsPerFile };
}

/**
 * Archive the events recorded before `olderThan` to Parquet files, one folder per event type and
 * UTC day (`type=ClaimSubmitted/date=2026-11-28/part-<run>-<n>.parquet`), with a manifest of the
 * run (`_manifests/run-<run>.json`: files, rows, checkpoints, SHA-256 of each file).
 *
 * Each run continues where the last run to the same target ended and archives a stretch of the
 * global log without gap or overlap: it reads in log order and stops at the first event recorded
 * at or after the cut-off (a later run takes it). The run is recorded in `archive_runs` only after
 * every file and the manifest are written; a run that fails is simply done again. Nothing is
 * deleted from the store (see `purgeArchived`).
 *
 * @example
 * ```ts
 * const target = createDirectoryTarget('./archive');
 * const ninetyDaysAgo = new Date(Date.now() - 90 * 24 * 3600 * 1000);
 * const { events, files } = await archive({ store, target, olderThan: ninetyDaysAgo });
 * ```
 * @throws ArchiveError `ARCHIVE_NOT_PERMITTED` when the store's role cannot read every tenant;
 *   `ARCHIVE_BUSY` when another process is archiving to the same target.
 */
export async function archive(options: ArchiveOptions): Promise<ArchiveResult> {
  const { batchSize, rowsPerFile } = checkOptions(options);
  const { store, target, signal } = options;
  const cutoff = options.olderThan.getTime();
  await assertSeesAllTenants(store);
  const s = quoteIdentifier(store.schema);
  const db = store.database;

  return withArchiveLock(store, target.id, async () => {
    const startedAt = new Date();
    const [last] = await db.query<{ run: number; through_checkpoint: string }>(
      `select run, through_checkpoint from ${s}.archive_runs
        where target = $1 order by run desc limit 1`,
      [target.id],
    );
    const run = last ? Number(last.run) + 1 : 0;
    const fromCheckpoint = (last?.through_checkpoint ?? startOfLog) as Checkpoint;

    const partitions = new Map<string, ArchivedRow[]>();
    const parts = new Map<string, number>();
    const files: ArchivedFile[] = [];
    const tenants = new Set<string | null>();
    let buffered = 0;
    let events = 0;
    let through = fromCheckpoint;
    const createdBy = '@evident/eventstore archive';

    const flush = async () => {
      for (const [folder, rows] of partitions) {
        const n = parts.get(folder) ?? 0;
        parts.set(folder, n + 1);
        const path = `${folder}/part-${run}-${n}.parquet`;
        const bytes = encodeParquet(rows, createdBy);
        await target.put(path, bytes);
        const first = rows[0]!;
        const lastRow = rows[rows.length - 1]!;
        let minRecorded = first.recordedAt;
        let maxRecorded = first.recordedAt;
        for (const r of rows) {
          if (r.recordedAt < minRecorded) minRecorded = r.recordedAt;
          if (r.recordedAt > maxRecorded) maxRecorded = r.recordedAt;
        }
        files.push({
          path,
          eventType: first.eventType,
          date: dayOf(first.recordedAt),
          rows: rows.length,
          bytes: bytes.byteLength,
          sha256: sha256(bytes),
          minCheckpoint: first.checkpoint,
          maxCheckpoint: lastRow.checkpoint,
          minRecordedAt: new Date(minRecorded).toISOString(),
          maxRecordedAt: new Date(maxRecorded).toISOString(),
        });
      }
      partitions.clear();
      buffered = 0;
    };

    const pageSql = logPageSql(store.schema);
    let after = fromCheckpoint;
    reading: for (;;) {
      signal?.throwIfAborted();
      const { transactionId, position } = decodeCheckpoint(after);
      const page = (
        await db.query<ArchivedRowSql>(pageSql, [transactionId, position, batchSize])
      ).map(fromSql);
      for (const row of page) {
        // The archive is a prefix of the log: it ends before the first event that is too new.
        if (row.recordedAt >= cutoff) break reading;
        const folder = `${typeFolder(row.eventType)}/date=${dayOf(row.recordedAt)}`;
        const rows = partitions.get(folder);
        if (rows) rows.push(row);
        else partitions.set(folder, [row]);
        tenants.add(row.tenantId);
        events += 1;
        buffered += 1;
        through = row.checkpoint;
        if (buffered >= rowsPerFile) await flush();
      }
      options.onProgress?.({ events });
      if (page.length < batchSize) break;
      after = page[page.length - 1]!.checkpoint;
    }
    signal?.throwIfAborted();
    await flush();

    if (events === 0) {
      return {
        run: null,
        events: 0,
        files: [],
        fromCheckpoint,
        throughCheckpoint: fromCheckpoint,
        manifestPath: null,
      };
    }
    const manifest: ArchiveManifest = {
      format: 'evident-archive/1',
      run,
      schema: store.schema,
      createdAt: new Date().toISOString(),
      olderThan: options.olderThan.toISOString(),
      fromCheckpoint,
      throughCheckpoint: through,
      events,
      files,
    };
    const path = manifestPath(run);
    const bytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
    await target.put(path, bytes);
    try {
      await db.query(
        `insert into ${s}.archive_runs (target, run, from_checkpoint, through_checkpoint,
           older_than, events, files, tenants, manifest_path, manifest_sha256, started_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8::text[], $9, $10, $11)`,
        [
          target.id,
          run,
          fromCheckpoint,
          through,
          options.olderThan.toISOString(),
          events,
          files.length,
          [...tenants],
          path,
          sha256(bytes),
          startedAt.toISOString(),
        ],
      );
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        throw new ArchiveError('ARCHIVE_BUSY', 'another run to this target was recorded first', {
          cause: error,
        });
      }
      throw error;
    }
    return {
      run,
      events,
      files,
      fromCheckpoint,
      throughCheckpoint: through,
      manifestPath: path,
    };
  });
}
