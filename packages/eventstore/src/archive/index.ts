export { type ArchiveOptions, type ArchiveResult, archive } from './archive.js';
export { ArchiveError, type ArchiveErrorCode } from './errors.js';
export type { ArchivedFile, ArchiveManifest } from './manifest.js';
export {
  getRetentionPolicy,
  type PurgeOptions,
  type PurgeResult,
  purgeArchived,
  type RetentionPolicy,
  type StoredRetentionPolicy,
  setRetentionPolicy,
} from './purge.js';
export {
  type ReplayHandler,
  type ReplayOptions,
  type ReplayProgress,
  type ReplayResult,
  replay,
} from './replay.js';
export { createS3Target, type S3TargetOptions } from './s3Target.js';
export { type ArchiveTarget, createDirectoryTarget } from './target.js';
export {
  type ArchiveProblem,
  type ArchiveProblemKind,
  type ArchiveVerification,
  type VerifyArchiveOptions,
  verifyArchive,
} from './verify.js';
