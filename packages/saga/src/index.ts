export { databaseClock, type SagaClock } from './clock.js';
export {
  type AnySagaDefinition,
  type Compensation,
  type CompensationContext,
  type DefineSagaOptions,
  defineSaga,
  type InputFrom,
  type MachineCompensation,
  type NonRetryable,
  type ReceivedSignal,
  type ResultsFrom,
  type RetryPolicy,
  type RunCompensation,
  renameSteps,
  type SagaContext,
  type SagaDefinition,
  type SagaMigration,
  type SleepUntil,
  type StepContext,
  type StepDefinition,
  type StepTimeout,
  type WaitOptions,
} from './defineSaga.js';
export { type Duration, toMilliseconds } from './duration.js';
export {
  IllegalCompensationError,
  isIllegalCompensationError,
  isSagaError,
  isSagaTimeoutError,
  type RecordedError,
  SagaError,
  type SagaErrorCode,
  SagaTimeoutError,
} from './errors.js';
export {
  type CompensationIntent,
  type CompensationRun,
  type DeadLetterContext,
  type FailurePoint,
  type ParticipantState,
  type SagaEventData,
  type SagaEventType,
  sagaStreamType,
} from './events.js';
export { checkHistory, type HistoryEvent, type HistoryProblem } from './history.js';
export { uuidFromKey } from './ids.js';
export { migrateSagas } from './migrations.js';
export type { TransitionParticipant } from './participant.js';
export {
  createSagaRuntime,
  type DeadLetter,
  type InstanceFilter,
  type OperatorAction,
  type SagaInstance,
  type SagaRuntime,
  type SagaRuntimeOptions,
  type SagaRuntimeReadiness,
  type SignalResult,
  type StartOptions,
  type StartResult,
  type TimelineEntry,
  type WorkerOptions,
} from './runtime.js';
export type { SagaStatus } from './state.js';
