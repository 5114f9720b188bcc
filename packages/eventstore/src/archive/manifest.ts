import { createHash } from 'node:crypto';
import { type Checkpoint, startOfLog } from '../checkpoint.js';
import { ArchiveError } from './errors.js';
import { type ArchiveTarget, checkPath } from './target.js';

/** One Parquet file of a run, as its manifest records it. */
export interface ArchivedFile {
  /** Relative to the target: `type=ClaimSubmitted/date=2026-11-28/part-0-0.parquet`. */
  readonly path: string;
  readonly eventType: string;
  /** UTC day the file's events were recorded on. */
  readonly date: string;
  readonly rows: number;
  readonly bytes: number;
  /** Hex SHA-256 of the file's bytes. */
  readonly sha256: string;
  readonly minCheckpoint: Checkpoint;
  readonly maxCheckpoint: Checkpoint;
  /** ISO 8601. */
  readonly minRecordedAt: string;
  readonly maxRecordedAt: string;
}

/**
 * What one archive run wrote: `_manifests/run-00000000.json` in the target. Runs chain: each
 * holds exactly the log after the previous run's `throughCheckpoint`, through its own.
 */
export interface ArchiveManifest {
  readonly format: 'evident-archive/1';
  readonly run: number;
  /** The store's schema the events came from. */
  readonly schema: string;
  readonly createdAt: string;
  /** The run archived events recorded before this instant. */
  readonly olderThan: string;
  /** Exclusive. */
  readonly fromCheckpoint: Checkpoint;
  /** Inclusive: the checkpoint of the run's last event. */
  readonly throughCheckpoint: Checkpoint;
  readonly events: number;
  readonly files: readonly ArchivedFile[];
}

export const manifestFolder = '_manifests/';

export const manifestPath = (run: number) =>
  `${manifestFolder}run-${String(run).padStart(8, '0')}.json`;

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A manifest as read back, with the checksum of its own bytes. */
export interface StoredManifest {
  readonly manifest: ArchiveManifest;
  readonly path: string;
  readonly sha256: string;
}

function parse(bytes: Uint8Array, path: string): ArchiveManifest {
  let value: ArchiveManifest;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ArchiveError('ARCHIVE_CORRUPT', `${path} is not JSON`, { cause: error });
  }
  if (
    value?.format !== 'evident-archive/1' ||
    !Number.isSafeInteger(value.run) ||
    typeof value.fromCheckpoint !== 'string' ||
    typeof value.throughCheckpoint !== 'string' ||
    !Array.isArray(value.files)
  ) {
    throw new ArchiveError('ARCHIVE_CORRUPT', `${path} is not an archive manifest`);
  }
  for (const f of value.files) checkPath(f.path);
  return value;
}

/** Every manifest of the target, in run order (unchecked: see {@link chainOf}). */
export async function readManifests(target: ArchiveTarget): Promise<StoredManifest[]> {
  const paths = (await target.list(manifestFolder))
    .filter((p) => /^_manifests\/run-\d{8}\.json$/.test(p))
    .sort();
  const out: StoredManifest[] = [];
  for (const path of paths) {
    const bytes = await target.get(path);
    if (!bytes) continue;
    out.push({ manifest: parse(bytes, path), path, sha256: sha256(bytes) });
  }
  return out;
}

/**
 * The manifests as one chain from the start of the log, or the first break in it: replay relies
 * on the archive being exactly the log up to its last `throughCheckpoint`.
 *
 * @throws ArchiveError `ARCHIVE_INCOMPLETE` at the first run that does not follow the one before.
 */
export function chainOf(manifests: readonly StoredManifest[]): {
  readonly manifests: readonly StoredManifest[];
  readonly through: Checkpoint;
} {
  let through: Checkpoint = startOfLog;
  manifests.forEach(({ manifest }, index) => {
    if (manifest.run !== index || manifest.fromCheckpoint !== through) {
      throw new ArchiveError(
        'ARCHIVE_INCOMPLETE',
        `archive run ${index} is missing or does not continue the run before it`,
      );
    }
    through = manifest.throughCheckpoint;
  });
  return { manifests, through };
}
