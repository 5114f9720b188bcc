export { toDot, toMermaid } from './diagrams.js';
export {
  createDurableMachine,
  type DurableMachine,
  type DurableMachineOptions,
  type RunDueOptions,
  type SendOptions,
  type SendResult,
  type TransitionCheck,
  type Worker,
  type WorkerOptions,
} from './durableMachine.js';
export {
  describeStateValue,
  IllegalTransitionError,
  isIllegalTransitionError,
  isStateMachineError,
  isTransitionRejectedError,
  isUnknownStateError,
  StateMachineError,
  type StateMachineErrorCode,
  TransitionRejectedError,
  UnknownStateError,
} from './errors.js';
export type {
  ActionHandler,
  ActionJob,
  JobOutcome,
  JobRecord,
  JobStatus,
  TimerRecord,
  TransactionalActionHandler,
} from './jobs.js';
export { migrateStateMachines } from './migrations.js';
export {
  type DurableState,
  type GuardEvaluation,
  type HistoryEntry,
  type MachineVersion,
  type PendingTimer,
  type PersistedMachineSnapshot,
  persistedSchemaVersion,
  type RejectionReason,
  type ScheduledAction,
  type SnapshotMigration,
  type StateTransitionedData,
  type StepEffects,
  stateTransitionedType,
  type TransitionRejectedData,
  transitionRejectedType,
} from './persistedState.js';
export {
  acceptedEventTypes,
  type PlanTransitionOptions,
  planTransition,
  type TransitionPlan,
} from './planTransition.js';
