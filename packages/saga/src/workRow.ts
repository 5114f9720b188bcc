import type { Envelope } from '@evident/envelope';
import type { AppendResult, EventStore } from '@evident/eventstore';
import type { RecordedError } from './errors.js';
import { sagaStreamType } from './events.js';
import type { SagaInstance } from './runtime.js';
import { finalStatuses, type SagaStatus } from './state.js';

/**
 * What a run appended to its own stream, with the versions and database time the store gave each
 * append: enough to know the instance's work row when the run ends, without reading it back.
 *
 * Only for a run that wrote its instance's whole history in one go — started by this process and
 * run to a final status without being released — because the row also holds what no event
 * carries: lease fields (cleared by every final event) and the error a worker records when it
 * releases an instance after a failed run (kept by the final events). Anything else read into the
 * stream meanwhile (a signal another process appended) leaves a gap in the versions, and then
 * there is no answer here: ask the database.
 */
export function createStreamLog(id: string) {
  const events: StoredSagaEvent[] = [];
  const appended = (envelopes: readonly Envelope[], result: AppendResult) => {
    const recordedAt = result.recordedAt;
    if (recordedAt === null) return;
    const first = result.nextExpectedVersion - envelopes.length + 1;
    envelopes.forEach((e, i) => {
      events.push({
        type: e.type,
        data: e.data,
        correlationId: e.correlationId,
        streamVersion: first + i,
        recordedAt,
      });
    });
  };
  return {
    /** `store`, noting here each append to this instance's stream that it confirms. */
    around(store: EventStore): EventStore {
      return {
        ...store,
        append: async (stream, envelopes, options) => {
          const result = await store.append(stream, envelopes, options);
          if (stream.type === sagaStreamType && stream.id === id) appended(envelopes, result);
          return result;
        },
      };
    },
    /** The instance's work row now, if it is final and its whole stream went through this log. */
    finalInstance(): SagaInstance | undefined {
      return finalInstanceOf(id, events);
    },
  };
}

/** One stored event of an instance's stream, as the work-row trigger sees it. */
export interface StoredSagaEvent {
  readonly type: string;
  readonly data: unknown;
  readonly correlationId: string;
  readonly streamVersion: number;
  /** ISO 8601, the store's database time. */
  readonly recordedAt: string;
}

type Data = Record<string, unknown>;

/** `->>`: a field as text, null when absent or JSON null. */
const text = (v: unknown): string | null =>
  v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
/** `->`: a JSON value, as `pg` returns it (parsed; null when absent). */
const json = <T>(v: unknown): T | null =>
  v === undefined || v === null ? null : (JSON.parse(JSON.stringify(v)) as T);
const lastOf = (v: unknown): Data | undefined =>
  Array.isArray(v) ? (v[v.length - 1] as Data | undefined) : undefined;

/**
 * The work row the `saga_progress` trigger (sql/0003_short_trigger_condition.sql) leaves for an
 * instance whose stream is `events`, in order from version 1 — when that row is final.
 * Undefined when the stream is not contiguous from 1 or the instance is not final. The trigger
 * is the authority; a contract test compares this with the row it writes.
 */
export function finalInstanceOf(
  id: string,
  events: readonly StoredSagaEvent[],
): SagaInstance | undefined {
  if (events.length === 0 || events.some((e, i) => e.streamVersion !== i + 1)) return undefined;
  const start = events[0]!;
  if (start.type !== 'SagaStarted') return undefined;
  const started = start.data as Data;
  const first = lastOf(started.next);
  let row = {
    saga: String(started.saga),
    version: Number(started.version),
    correlationId: start.correlationId,
    status: 'running' as SagaStatus,
    currentStep: text(first?.step),
    attempt: first?.attempt === undefined || first.attempt === null ? 0 : Number(first.attempt),
    lastError: null as RecordedError | null,
    streamVersion: start.streamVersion,
    updatedAt: start.recordedAt,
  };
  for (const e of events.slice(1)) {
    let d = (e.data ?? {}) as Data;
    const touched = { streamVersion: e.streamVersion, updatedAt: e.recordedAt };
    switch (e.type) {
      case 'StepSucceeded':
      case 'StepStarted':
      case 'CompensationStarted':
        if (e.type === 'StepSucceeded') {
          // Only a success that carries the next step's start changes the row.
          if (d.next === undefined) break;
          d = lastOf(d.next) ?? {};
        }
        row = {
          ...row,
          ...touched,
          status: e.type === 'CompensationStarted' ? 'compensating' : 'running',
          currentStep: text(d.step),
          attempt: Number(d.attempt),
        };
        break;
      case 'StepFailed':
      case 'CompensationFailed':
        row = { ...row, ...touched, lastError: json<RecordedError>(d.error) };
        break;
      case 'SagaWaiting':
        row = {
          ...row,
          ...touched,
          status: text(d.status) as SagaStatus,
          currentStep: text(d.step),
        };
        break;
      case 'TimerFired':
      case 'WaitCompleted':
      case 'WaitTimedOut':
        row = {
          ...row,
          ...touched,
          status: row.status === 'compensating' ? row.status : 'running',
        };
        break;
      case 'SignalReceived':
        row = { ...row, ...touched };
        break;
      case 'SagaCompleted':
      case 'SagaCompensated':
      case 'ManuallyResolved':
        row = {
          ...row,
          ...touched,
          status:
            e.type === 'SagaCompleted'
              ? 'completed'
              : e.type === 'SagaCompensated'
                ? 'compensated'
                : 'resolved',
        };
        break;
      case 'SagaDeadLettered':
        row = {
          ...row,
          ...touched,
          status: 'dead_lettered',
          currentStep: text((d.failurePoint as Data | undefined)?.step),
          lastError: json<RecordedError>(d.error),
        };
        break;
      case 'SagaResumed':
        row = { ...row, ...touched, status: text(d.status) as SagaStatus, attempt: 0 };
        break;
      case 'SagaMigrated':
        row = { ...row, ...touched, version: Number(d.to) };
        break;
      default:
      // Other events (a condition's value, a timer scheduled) leave the row alone.
    }
  }
  if (!finalStatuses.has(row.status)) return undefined;
  return {
    id,
    saga: row.saga,
    version: row.version,
    correlationId: row.correlationId,
    status: row.status,
    currentStep: row.currentStep,
    attempt: row.attempt,
    // A final event clears what a parked or held instance has.
    waitingFor: null,
    waitKey: null,
    dueAt: null,
    leaseOwner: null,
    lastError: row.lastError,
    streamVersion: row.streamVersion,
    startedAt: start.recordedAt,
    updatedAt: row.updatedAt,
  };
}
