export type {
  AggregateOptions,
  Decide,
  HandleOptions,
  HandleResult,
  LoadedAggregate,
  SnapshotPolicy,
} from './aggregate.js';
export {
  type Checkpoint,
  compareCheckpoints,
  startOfLog,
} from './checkpoint.js';
export type { Database, Queryable } from './database.js';
export {
  type DocumentGroupQuery,
  type DocumentProjection,
  type DocumentProjectionDefinition,
  type DocumentQuery,
  defineDocumentProjection,
  groupDocuments,
  queryDocuments,
} from './documentProjection.js';
export {
  ConcurrencyError,
  DuplicateEventError,
  EventStoreError,
  type EventStoreErrorCode,
  type ExpectedVersionDescription,
  isConcurrencyError,
} from './errors.js';
export {
  type AppendOptions,
  type AppendRequest,
  type AppendResult,
  createEventStore,
  defaultEventStoreLimits,
  type EventStore,
  type EventStoreConnection,
  type EventStoreLimits,
  type EventStoreOptions,
  type ReadAllOptions,
  type ReadAllResult,
  type ReadStreamOptions,
  type StoreReadiness,
  type StreamRead,
} from './eventStore.js';
export type { ExpectedVersion } from './expectedVersion.js';
export type { GroupCommitOptions } from './groupCommit.js';
export {
  type BrokenLink,
  type BrokenLinkReason,
  type CheckpointProblem,
  createIntegrityCheckpoint,
  type IntegrityCheckpoint,
  startIntegrityCheckpoints,
  type VerifyResult,
  verifyAll,
  verifyIntegrityCheckpoints,
  verifyStream,
} from './integrity.js';
export {
  applicationRole,
  applyMigrations,
  auditorRole,
  type ComponentMigrations,
  type MigrateOptions,
  type MigrateResult,
} from './migrations.js';
export {
  type KeyProvider,
  localKeyProvider,
  PhiError,
  type PhiOptions,
  type ShreddedValue,
  shredSubject,
} from './phi.js';
export {
  defineProjection,
  type Projection,
  type ProjectionContext,
  type ProjectionDefinition,
  type ProjectionHandler,
  type ProjectionRunner,
  type ProjectionRunOptions,
  type ProjectionStatus,
  projectionView,
  runProjection,
} from './projection.js';
export type { RecordedEvent } from './recordedEvent.js';
export { assertStreamId, type StreamId, streamIdLimits } from './streamId.js';
export type {
  ErrorSummary,
  FailurePolicy,
  HandlerContext,
  ParkedEvent,
  SubscribeOptions,
  Subscription,
  SubscriptionHandler,
  SubscriptionState,
  SubscriptionStatus,
} from './subscription.js';
