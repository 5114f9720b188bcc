import type { Checkpoint } from '../checkpoint.js';
import type { RecordedEvent } from '../recordedEvent.js';
import { quoteIdentifier } from '../streamId.js';

/**
 * One event as the archive keeps it: the columns of a Parquet file. `data` and `metadata` are the
 * JSON text PostgreSQL stored (`jsonb::text`), byte for byte, and `hash` the event's link in its
 * stream's SHA-256 chain: an archived row can be checked against the chain without the store.
 */
export interface ArchivedRow {
  readonly checkpoint: Checkpoint;
  readonly globalPosition: number;
  readonly streamType: string;
  readonly streamId: string;
  readonly streamVersion: number;
  readonly eventId: string;
  readonly eventType: string;
  readonly schemaVersion: number;
  /** Epoch milliseconds. */
  readonly occurredAt: number;
  /** Epoch milliseconds (database time). */
  readonly recordedAt: number;
  readonly correlationId: string;
  readonly causationId: string;
  readonly source: string;
  readonly actorId: string;
  readonly actorRole: string;
  readonly tenantId: string | null;
  readonly data: string;
  readonly metadata: string;
  /** Hex SHA-256 chain link; null for events written with integrity off. */
  readonly hash: string | null;
}

export interface ArchivedRowSql {
  checkpoint: string;
  global_position: string | number;
  stream_type: string;
  stream_id: string;
  stream_version: string | number;
  event_id: string;
  event_type: string;
  schema_version: number;
  occurred_at: string | number | bigint;
  recorded_at: string | number | bigint;
  correlation_id: string;
  causation_id: string;
  source: string;
  actor_id: string;
  actor_role: string;
  tenant_id: string | null;
  data: string;
  metadata: string;
  hash: string | null;
}

/** The columns selected for an archived row (from `events as ev`). */
export const archivedRowColumns = `
  lpad(to_hex(ev.transaction_id::text::bigint), 16, '0') || ':' || lpad(to_hex(ev.global_position), 16, '0') as checkpoint,
  ev.global_position, ev.stream_type, ev.stream_id, ev.stream_version, ev.event_id::text as event_id,
  ev.event_type, ev.schema_version,
  (extract(epoch from ev.occurred_at) * 1000)::int8 as occurred_at,
  (extract(epoch from ev.recorded_at) * 1000)::int8 as recorded_at,
  ev.correlation_id, ev.causation_id, ev.source, ev.actor_id, ev.actor_role, ev.tenant_id,
  ev.data::text as data, ev.metadata::text as metadata, encode(ev.hash, 'hex') as hash`;

export function fromSql(row: ArchivedRowSql): ArchivedRow {
  return {
    checkpoint: row.checkpoint as Checkpoint,
    globalPosition: Number(row.global_position),
    streamType: row.stream_type,
    streamId: row.stream_id,
    streamVersion: Number(row.stream_version),
    eventId: row.event_id,
    eventType: row.event_type,
    schemaVersion: Number(row.schema_version),
    occurredAt: Number(row.occurred_at),
    recordedAt: Number(row.recorded_at),
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    source: row.source,
    actorId: row.actor_id,
    actorRole: row.actor_role,
    tenantId: row.tenant_id,
    data: row.data,
    metadata: row.metadata,
    hash: row.hash,
  };
}

/**
 * The log after `after`, up to `limit` rows, every tenant the role can see, never past the oldest
 * transaction still running (the store's readAll rule, so an archive never skips a late commit).
 */
export function logPageSql(schema: string): string {
  return `with horizon as (select pg_snapshot_xmin(pg_current_snapshot()) as xmin)
    select ${archivedRowColumns}
    from horizon as h
    join ${quoteIdentifier(schema)}.events as ev
      on (ev.transaction_id, ev.global_position) > ($1::text::xid8, $2::bigint)
     and ev.transaction_id < h.xmin
    order by ev.transaction_id, ev.global_position
    limit $3`;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The event as every read of the store returns it. */
export function toRecordedEvent(row: ArchivedRow): RecordedEvent {
  return {
    id: row.eventId,
    type: row.eventType,
    schemaVersion: row.schemaVersion,
    occurredAt: iso(row.occurredAt),
    correlationId: row.correlationId,
    causationId: row.causationId,
    source: row.source,
    actor: { id: row.actorId, role: row.actorRole },
    ...(row.tenantId === null ? {} : { tenantId: row.tenantId }),
    data: JSON.parse(row.data),
    metadata: JSON.parse(row.metadata),
    stream: { type: row.streamType, id: row.streamId },
    streamVersion: row.streamVersion,
    globalPosition: row.globalPosition,
    checkpoint: row.checkpoint,
    recordedAt: iso(row.recordedAt),
  };
}

/** `2026-11-28`: the UTC day an event was recorded on, its partition. */
export const dayOf = (epochMs: number) => new Date(epochMs).toISOString().slice(0, 10);
