import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError } from '@evident/envelope';
import { ArchiveError } from './errors.js';

/**
 * Where archive files go: a directory ({@link createDirectoryTarget}), an S3 bucket
 * ({@link createS3Target}), or anything else with these four operations. Paths are relative,
 * `/`-separated, made of `[A-Za-z0-9_.=%-]` segments.
 */
export interface ArchiveTarget {
  /**
   * Names the target in the store's `archive_runs`: a run continues from the last run recorded
   * under the same id. Keep it stable when the files move (pass `id` to the factory).
   */
  readonly id: string;
  /** Write a whole object, replacing any object at `path`. */
  put(path: string, body: Uint8Array): Promise<void>;
  /** Read a whole object; resolves `null` when there is none. */
  get(path: string): Promise<Uint8Array | null>;
  /** Paths of the objects directly under `prefix` (a folder path ending in `/`), any order. */
  list(prefix: string): Promise<string[]>;
}

const segment = /^[A-Za-z0-9_=%-][A-Za-z0-9_.=%-]*$/;

/**
 * Refuse a path that could leave the target (`..`, absolute paths): paths come from manifests,
 * which are files an attacker may have edited.
 */
export function checkPath(path: string): string {
  if (
    typeof path !== 'string' ||
    path.length === 0 ||
    path.length > 512 ||
    !path.split('/').every((s) => segment.test(s))
  ) {
    throw new ArchiveError('ARCHIVE_CORRUPT', 'an archive path is malformed');
  }
  return path;
}

/**
 * Files under a local directory (or a mounted volume). Writes go to a temporary file renamed into
 * place, so a crash never leaves half a file under a final name.
 *
 * @example
 * ```ts
 * const target = createDirectoryTarget('/var/lib/evident/archive');
 * await archive({ store, target, olderThan: new Date(Date.now() - 90 * 86_400_000) });
 * ```
 */
export function createDirectoryTarget(
  directory: string,
  options: { readonly id?: string } = {},
): ArchiveTarget {
  if (typeof directory !== 'string' || directory.length === 0) {
    throw new InvalidArgumentError('directory must be a non-empty path');
  }
  const root = resolve(directory);
  const at = (path: string) => join(root, ...checkPath(path).split('/'));
  return {
    id: options.id ?? pathToFileURL(root).href,
    async put(path, body) {
      const file = at(path);
      await mkdir(dirname(file), { recursive: true });
      const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(temporary, body);
        await rename(temporary, file);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
    },
    async get(path) {
      try {
        return new Uint8Array(await readFile(at(path)));
      } catch (error) {
        if ((error as { code?: string }).code === 'ENOENT') return null;
        throw error;
      }
    },
    async list(prefix) {
      const folder = prefix.replace(/\/$/, '');
      try {
        const entries = await readdir(folder ? at(folder) : root, { withFileTypes: true });
        return entries
          .filter((e) => e.isFile() && !e.name.endsWith('.tmp'))
          .map((e) => (folder ? `${folder}/${e.name}` : e.name));
      } catch (error) {
        if ((error as { code?: string }).code === 'ENOENT') return [];
        throw error;
      }
    },
  };
}
