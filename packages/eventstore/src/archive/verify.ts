import { InvalidArgumentError } from '@evident/envelope';
import { decodeCheckpoint, startOfLog } from '../checkpoint.js';
import type { EventStore } from '../eventStore.js';
import { quoteIdentifier } from '../streamId.js';
import { seesAllTenants } from './access.js';
import { ArchiveError } from './errors.js';
import { type ArchivedFile, readManifests, type StoredManifest, sha256 } from './manifest.js';
import { openParquet } from './parquet.js';
import {
  type ArchivedRow,
  type ArchivedRowSql,
  archivedRowColumns,
  dayOf,
  fromSql,
} from './rows.js';
import type { ArchiveTarget } from './target.js';

/** What can be wrong with an archive. */
export type ArchiveProblemKind =
  /** A run's manifest is missing, or runs do not follow each other from the start of the log. */
  | 'run_missing'
  /** The manifest differs from the one recorded in the store when the run was written. */
  | 'manifest_mismatch'
  /** A manifest the store has no record of (left by a run that failed before it was recorded). */
  | 'run_unrecorded'
  /** A file the manifest lists is not in the target. */
  | 'file_missing'
  /** The file's bytes do not match the SHA-256 in the manifest: altered after archiving. */
  | 'checksum_mismatch'
  /** The file does not hold what its manifest says (rows, checkpoints, type, day). */
  | 'file_mismatch'
  /** An archived event differs from the same event in the store. */
  | 'event_mismatch'
  /** The store holds an event of the run's stretch of log that the archive does not. */
  | 'event_missing';

/** One problem, named by run, file and checkpoint: never by payload or stream id. */
export interface ArchiveProblem {
  readonly kind: ArchiveProblemKind;
  readonly run: number;
  readonly path?: string;
  readonly checkpoint?: string;
}

export interface VerifyArchiveOptions {
  readonly target: ArchiveTarget;
  /**
   * Compare every archived event with the store as well, and record the outcome in
   * `archive_runs.verified_at` (which the purge requires). Connect as a role that reads every
   * tenant (the auditor role). @defaultValue none: the archive is checked against itself only
   */
  readonly store?: EventStore;
  readonly signal?: AbortSignal;
}

export interface ArchiveVerification {
  readonly ok: boolean;
  readonly runs: number;
  readonly files: number;
  readonly events: number;
  /** Every problem found, in run order. */
  readonly problems: readonly ArchiveProblem[];
  /** Runs marked verified in the store by this call (empty without a store). */
  readonly verifiedRuns: readonly number[];
}

const columnsEqual = (a: ArchivedRow, b: ArchivedRow) =>
  (Object.keys(a) as (keyof ArchivedRow)[]).every((k) => a[k] === b[k]);

/**
 * Check an archive: every run follows the one before it, every file's SHA-256 matches its
 * manifest and the file holds the rows the manifest says. With `store`, also that each manifest is
 * the one recorded when its run was written and that every archived event equals the store's copy
 * (events purged since are skipped), then mark the runs that passed as verified and clear the mark
 * of the runs that did not. The store's role must read every tenant (the auditor role).
 *
 * @example
 * ```ts
 * const result = await verifyArchive({ target, store: auditorStore });
 * if (!result.ok) alert(result.problems); // [{ kind: 'checksum_mismatch', run: 3, path: '...' }]
 * ```
 * @throws ArchiveError `ARCHIVE_NOT_PERMITTED` when the store's role sees only some tenants.
 */
export async function verifyArchive(options: VerifyArchiveOptions): Promise<ArchiveVerification> {
  const { target, store, signal } = options ?? {};
  if (!target || typeof target.get !== 'function') {
    throw new InvalidArgumentError('verifyArchive takes options { target, store? }');
  }
  const problems: ArchiveProblem[] = [];
  const manifests = await readManifests(target);
  const s = store ? quoteIdentifier(store.schema) : '';

  const recorded = new Map<number, { manifest_sha256: string; events: string | number }>();
  if (store) {
    if (!(await seesAllTenants(store))) {
      throw new ArchiveError(
        'ARCHIVE_NOT_PERMITTED',
        'verifyArchive compares every tenant: pass a store whose role reads them all (the auditor role)',
      );
    }
    const rows = await store.database.query<{
      run: number;
      manifest_sha256: string;
      events: string | number;
    }>(`select run, manifest_sha256, events from ${s}.archive_runs where target = $1`, [target.id]);
    for (const r of rows) recorded.set(Number(r.run), r);
  }

  const byRun = new Map(manifests.map((m) => [m.manifest.run, m]));
  const lastRun = Math.max(-1, ...byRun.keys(), ...recorded.keys());
  let through = startOfLog;
  const checked: StoredManifest[] = [];
  for (let run = 0; run <= lastRun; run++) {
    const stored = byRun.get(run);
    if (!stored || stored.manifest.fromCheckpoint !== through) {
      problems.push({ kind: 'run_missing', run });
      if (!stored) continue;
    }
    through = stored.manifest.throughCheckpoint;
    const known = recorded.get(run);
    if (store && !known) problems.push({ kind: 'run_unrecorded', run, path: stored.path });
    if (known && known.manifest_sha256 !== stored.sha256) {
      problems.push({ kind: 'manifest_mismatch', run, path: stored.path });
    }
    checked.push(stored);
  }

  let files = 0;
  let events = 0;
  const failedRuns = new Set(problems.map((p) => p.run));
  for (const { manifest } of checked) {
    const { run } = manifest;
    let runEvents = 0;
    let unreadable = false;
    for (const file of manifest.files) {
      signal?.throwIfAborted();
      files += 1;
      const before = problems.length;
      const rows = await checkFile(target, file, run, problems);
      if (!rows) unreadable = true;
      else {
        runEvents += rows.length;
        const inRun = rows.every(
          (r) =>
            r.checkpoint > manifest.fromCheckpoint && r.checkpoint <= manifest.throughCheckpoint,
        );
        if (!inRun) problems.push({ kind: 'file_mismatch', run, path: file.path });
        else if (store) await compareWithStore(store, file, rows, run, problems);
      }
      if (problems.length > before) failedRuns.add(run);
    }
    events += runEvents;
    const known = recorded.get(run);
    const miscounted =
      (!unreadable && runEvents !== manifest.events) ||
      (known !== undefined && Number(known.events) !== manifest.events);
    if (miscounted) {
      problems.push({ kind: 'file_mismatch', run });
      failedRuns.add(run);
    }
  }

  const verifiedRuns: number[] = [];
  if (store) {
    for (const run of recorded.keys()) {
      const ok = !failedRuns.has(run);
      await store.database.query(
        `update ${s}.archive_runs set verified_at = ${ok ? 'now()' : 'null'}
          where target = $1 and run = $2`,
        [target.id, run],
      );
      if (ok) verifiedRuns.push(run);
    }
    verifiedRuns.sort((a, b) => a - b);
  }
  problems.sort((a, b) => a.run - b.run);
  return { ok: problems.length === 0, runs: checked.length, files, events, problems, verifiedRuns };
}

async function checkFile(
  target: ArchiveTarget,
  file: ArchivedFile,
  run: number,
  problems: ArchiveProblem[],
): Promise<ArchivedRow[] | null> {
  const bytes = await target.get(file.path);
  if (!bytes) {
    problems.push({ kind: 'file_missing', run, path: file.path });
    return null;
  }
  if (sha256(bytes) !== file.sha256) {
    problems.push({ kind: 'checksum_mismatch', run, path: file.path });
    return null;
  }
  let rows: ArchivedRow[];
  try {
    const parquet = openParquet(bytes, file.path);
    rows = await parquet.read(0, parquet.rows);
  } catch {
    problems.push({ kind: 'file_mismatch', run, path: file.path });
    return null;
  }
  const ordered = rows.every((r, i) => i === 0 || rows[i - 1]!.checkpoint < r.checkpoint);
  const matches =
    ordered &&
    rows.length === file.rows &&
    rows.length > 0 &&
    rows[0]!.checkpoint === file.minCheckpoint &&
    rows[rows.length - 1]!.checkpoint === file.maxCheckpoint &&
    rows.every((r) => r.eventType === file.eventType && dayOf(r.recordedAt) === file.date);
  if (!matches) {
    problems.push({ kind: 'file_mismatch', run, path: file.path });
    return null;
  }
  return rows;
}

/** Every event of the file's type and day in its stretch of log, as the store has it now. */
async function compareWithStore(
  store: EventStore,
  file: ArchivedFile,
  rows: readonly ArchivedRow[],
  run: number,
  problems: ArchiveProblem[],
): Promise<void> {
  const min = decodeCheckpoint(file.minCheckpoint);
  const max = decodeCheckpoint(file.maxCheckpoint);
  const live = (
    await store.database.query<ArchivedRowSql>(
      `select ${archivedRowColumns} from ${quoteIdentifier(store.schema)}.events as ev
        where (ev.transaction_id, ev.global_position) >= ($1::text::xid8, $2::bigint)
          and (ev.transaction_id, ev.global_position) <= ($3::text::xid8, $4::bigint)
          and ev.event_type = $5
        order by ev.transaction_id, ev.global_position`,
      [min.transactionId, min.position, max.transactionId, max.position, file.eventType],
    )
  )
    .map(fromSql)
    .filter((r) => dayOf(r.recordedAt) === file.date);
  const archived = new Map(rows.map((r) => [r.checkpoint, r]));
  for (const r of live) {
    const copy = archived.get(r.checkpoint);
    if (!copy)
      problems.push({ kind: 'event_missing', run, path: file.path, checkpoint: r.checkpoint });
    else if (!columnsEqual(copy, r)) {
      problems.push({ kind: 'event_mismatch', run, path: file.path, checkpoint: r.checkpoint });
    }
  }
}
