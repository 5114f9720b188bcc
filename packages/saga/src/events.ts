import type { Actor } from '@evident/envelope';
import type { RecordedError } from './errors.js';

/** Stream type of every saga instance: the instance `id` is the stream `{ type: 'saga', id }`. */
export const sagaStreamType = 'saga';

/** The compensation a step declares, recorded with the step before its side effect starts. */
export interface CompensationIntent {
  readonly transition: string;
  readonly participant: string;
  /** The state the participant moves to, when declared. */
  readonly to: unknown;
}

/** The events of a saga instance's stream, by type, with their data. */
export interface SagaEventData {
  SagaStarted: {
    readonly saga: string;
    readonly version: number;
    readonly input: unknown;
    /**
     * The worker that runs the instance from the start (the starting process, when it has a free
     * slot), holding it for `leaseMs` (or until `until` on a virtual clock); null: any worker.
     */
    readonly worker: {
      readonly id: string;
      readonly leaseMs: number;
      readonly until: string | null;
    } | null;
    /**
     * The first steps' starts, when the starting process runs the instance: appended with the
     * start, as later starts ride on their predecessor's `StepSucceeded`.
     */
    readonly next?: readonly SagaEventData['StepStarted'][];
  };
  StepStarted: {
    readonly step: string;
    readonly attempt: number;
    readonly idempotencyKey: string;
    /** The compensation intent, recorded before the step's side effect can happen. */
    readonly compensation: CompensationIntent | null;
  };
  StepSucceeded: {
    readonly step: string;
    readonly attempt: number;
    readonly result: unknown;
    /**
     * Steps started with this success (a `StepStarted` each, folded into this event so a step
     * boundary is one row): recorded, with their compensation intents, before they run.
     */
    readonly next?: readonly SagaEventData['StepStarted'][];
  };
  StepFailed: {
    readonly step: string;
    readonly attempt: number;
    readonly error: RecordedError;
    /** No attempt follows: retries exhausted, a non-retryable error, or the step timed out. */
    readonly final: boolean;
  };
  StepRetryScheduled: {
    readonly step: string;
    readonly phase: 'step' | 'compensation';
    readonly attempt: number;
    readonly delayMs: number;
    /** Absolute retry time when the clock is virtual; otherwise recorded-at + delay. */
    readonly until: string | null;
  };
  ConditionEvaluated: { readonly node: string; readonly value: boolean };
  TimerScheduled: {
    readonly timer: string;
    readonly delayMs: number | null;
    readonly until: string | null;
  };
  TimerFired: { readonly timer: string };
  WaitStarted: {
    readonly wait: string;
    readonly eventType: string;
    readonly key: string;
    readonly timeoutMs: number | null;
    readonly until: string | null;
  };
  SignalReceived: {
    /** The delivered event's own id, type and payload. */
    readonly eventId: string;
    readonly type: string;
    readonly data: unknown;
    readonly occurredAt: string;
    readonly source: string;
    readonly correlationId: string;
    readonly actor: Actor;
  };
  WaitCompleted: { readonly wait: string; readonly signalId: string };
  WaitTimedOut: { readonly wait: string; readonly continued: boolean };
  /** The instance parks: released by its worker, due again at `until` (or recorded-at + delay). */
  SagaWaiting: {
    readonly status: 'sleeping' | 'waiting' | 'retrying';
    readonly step: string | null;
    readonly waitingFor: string | null;
    readonly waitKey: string | null;
    readonly until: string | null;
    readonly delayMs: number | null;
  };
  CompensationStarted: {
    readonly step: string;
    readonly attempt: number;
    readonly transition: string;
    readonly participant: string;
    readonly to: unknown;
    readonly idempotencyKey: string;
  };
  CompensationSucceeded: {
    readonly step: string;
    readonly attempt: number;
    readonly result: unknown;
  };
  CompensationFailed: {
    readonly step: string;
    readonly attempt: number;
    readonly error: RecordedError;
    readonly final: boolean;
  };
  SagaCompleted: { readonly steps: readonly string[] };
  SagaCompensated: {
    readonly failure: FailurePoint | null;
    readonly compensated: readonly string[];
  };
  SagaDeadLettered: DeadLetterContext;
  SagaResumed: {
    readonly mode: 'retry' | 'compensate';
    readonly status: 'running' | 'compensating';
    readonly operator: Actor;
    readonly reason: string | null;
  };
  ManuallyResolved: { readonly operator: Actor; readonly reason: string };
  SagaMigrated: { readonly from: number; readonly to: number };
}

/** Every event type a saga instance's stream may hold. */
export type SagaEventType = keyof SagaEventData;

/** Where an instance failed. */
export interface FailurePoint {
  readonly phase: 'step' | 'compensation';
  readonly step: string;
  readonly attempt: number;
  readonly error: RecordedError;
}

/** What a participant looked like when its saga was dead-lettered. */
export interface ParticipantState {
  readonly step: string;
  readonly participant: string;
  /**
   * `completed` (its step succeeded, not compensated), `compensated`, `compensation-failed`,
   * `failed` (its step failed), `interrupted` (started, outcome unknown), `not-compensable`
   * (completed, no compensation declared).
   */
  readonly status:
    | 'completed'
    | 'compensated'
    | 'compensation-failed'
    | 'failed'
    | 'interrupted'
    | 'not-compensable';
  /** The participant machine's current state, when it is one (read when dead-lettering). */
  readonly machineState?: unknown;
}

/** A compensation that ran before the dead letter, and how it ended. */
export interface CompensationRun {
  readonly step: string;
  readonly transition: string;
  readonly outcome: 'succeeded' | 'failed';
  readonly attempts: number;
}

/** The full context of a dead letter, as recorded in `SagaDeadLettered`. */
export interface DeadLetterContext {
  /** The step or compensation that failed last. */
  readonly failurePoint: FailurePoint;
  /** Its error (the same as the failure point's). */
  readonly error: RecordedError;
  /** The failure that started the compensation, when one did. */
  readonly originalFailure: FailurePoint | null;
  readonly participants: readonly ParticipantState[];
  readonly compensationsRun: readonly CompensationRun[];
}

/** Event types a process other than the instance's worker may append (the worker merges them). */
export const foreignEventTypes: ReadonlySet<string> = new Set(['SignalReceived']);
