import type { Envelope } from '@evident/envelope';
import { type Checkpoint, encodeCheckpoint } from './checkpoint.js';
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
export const eventColumns = `stream_type, stream_id, stream_version, global_position,
  transaction_id::text as transaction_id, event_id, event_type, schema_version, data, metadata,
  correlation_id, causation_id, source, actor_id, actor_role, tenant_id, occurred_at, recorded_at`;

export interface EventRow {
  stream_type: string;
  stream_id: string;
  stream_version: string | number;
  global_position: string | number;
  transaction_id: string;
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
  occurred_at: Date | string;
  recorded_at: Date | string;
}

const iso = (value: Date | string) =>
  (value instanceof Date ? value : new Date(value)).toISOString();

export function toRecordedEvent(row: EventRow): RecordedEvent {
  const position = Number(row.global_position);
  return {
    id: row.event_id,
    type: row.event_type,
    schemaVersion: row.schema_version,
    occurredAt: iso(row.occurred_at),
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    source: row.source,
    actor: { id: row.actor_id, role: row.actor_role },
    ...(row.tenant_id === null ? {} : { tenantId: row.tenant_id }),
    data: row.data,
    metadata: row.metadata,
    stream: { type: row.stream_type, id: row.stream_id },
    streamVersion: Number(row.stream_version),
    globalPosition: position,
    checkpoint: encodeCheckpoint(row.transaction_id, position),
    recordedAt: iso(row.recorded_at),
  };
}
