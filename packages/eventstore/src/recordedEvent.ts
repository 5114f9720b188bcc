import type { Envelope } from '@evident/envelope';
import type { Checkpoint } from './checkpoint.js';
import type { StreamId } from './streamId.js';

/** An envelope as the store recorded it: where it sits in its stream and in the global log. */
export interface RecordedEvent<Type extends string = string, Data = unknown>
  extends Envelope<Type, Data> {
  readonly stream: StreamId;
  /** 1 for the stream's first event, then contiguous. */
  readonly streamVersion: number;
  /** Unique and increasing in commit order within a stream; across streams see `checkpoint`. */
  readonly globalPosition: number;
  /** Where this event sits in the global log, for `readAll({ after })` and subscriptions. */
  readonly checkpoint: Checkpoint;
  /** Database time of the append (ISO 8601, UTC). */
  readonly recordedAt: string;
}

/** The columns every read selects, in the shape `toRecordedEvent` expects. */
// Timestamps travel as epoch milliseconds and the checkpoint is formatted by the server: parsing
// timestamp text and BigInt arithmetic in JavaScript were a third of the cost of reading a stream.
export const eventColumns = `stream_type, stream_id, stream_version, global_position,
  lpad(to_hex(transaction_id::text::bigint), 16, '0') || ':' || lpad(to_hex(global_position), 16, '0') as checkpoint,
  event_id, event_type, schema_version, data, metadata, correlation_id, causation_id, source,
  actor_id, actor_role, tenant_id,
  (extract(epoch from occurred_at) * 1000)::int8 as occurred_at,
  (extract(epoch from recorded_at) * 1000)::int8 as recorded_at`;

export interface EventRow {
  stream_type: string;
  stream_id: string;
  stream_version: string | number;
  global_position: string | number;
  checkpoint: string;
  event_id: string;
  event_type: string;
  schema_version: number;
  data: unknown;
  metadata: Record<string, unknown>;
  correlation_id: string;
  causation_id: string;
  source: string;
  actor_id: string;
  actor_role: string;
  tenant_id: string | null;
  /** Epoch milliseconds (int8: a string from node-postgres, a number or bigint from PGlite). */
  occurred_at: string | number | bigint;
  recorded_at: string | number | bigint;
}

const dayMs = 86_400_000;
let cachedDay = Number.NaN;
let cachedPrefix = '';
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * Epoch milliseconds as `Date.prototype.toISOString` writes them. Every event read formats two
 * timestamps, and a new Date with its toISOString was a fifth of the time of reading a 1,000-event
 * stream: the date part is formatted once per day (a stream's events mostly share their day), the
 * time of day by arithmetic. UTC has no leap seconds in JavaScript, so every day is `dayMs` long.
 */
export function isoFromEpochMs(epochMs: string | number | bigint): string {
  const ms = Number(epochMs);
  // Date's range (and NaN): what toISOString refuses, refused the same way.
  if (!(Math.abs(ms) <= 8.64e15)) throw new RangeError('Invalid time value');
  const day = Math.floor(ms / dayMs);
  if (day !== cachedDay) {
    // Everything before the time: `YYYY-MM-DDT`, or `±YYYYYY-MM-DDT` for years outside 0–9999.
    cachedPrefix = new Date(day * dayMs).toISOString().slice(0, -13);
    cachedDay = day;
  }
  let rest = ms - day * dayMs;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  rest -= seconds * 1000;
  return `${cachedPrefix}${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(rest)}Z`;
}

export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    id: row.event_id,
    type: row.event_type,
    schemaVersion: row.schema_version,
    occurredAt: isoFromEpochMs(row.occurred_at),
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    source: row.source,
    actor: { id: row.actor_id, role: row.actor_role },
    ...(row.tenant_id === null ? {} : { tenantId: row.tenant_id }),
    data: row.data,
    metadata: row.metadata,
    stream: { type: row.stream_type, id: row.stream_id },
    streamVersion: Number(row.stream_version),
    globalPosition: Number(row.global_position),
    checkpoint: row.checkpoint as Checkpoint,
    recordedAt: isoFromEpochMs(row.recorded_at),
  };
}
