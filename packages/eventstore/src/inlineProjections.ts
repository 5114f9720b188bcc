import type { Envelope } from '@evident/envelope';
import { encodeCheckpoint } from './checkpoint.js';
import type { Database, Queryable } from './database.js';
import {
  ensureProjectionTables,
  liveProjectionVersion,
  type Projection,
  type ProjectionContext,
  projectionTables,
  promoteProjection,
} from './projection.js';
import {
  type EventRow,
  eventColumns,
  type RecordedEvent,
  toRecordedEvent,
} from './recordedEvent.js';
import { quoteIdentifier, type StreamId } from './streamId.js';

/** What an append statement returns per inserted event. */
export interface AppendedRow {
  stream_version: string | number;
  global_position: string | number;
  transaction_id: string;
  recorded_at: string | number;
}

/**
 * Inline projections run inside the append's own transaction, so their tables are consistent
 * with the log on every read. Appends that touch them take a shared advisory lock; rebuilding a
 * new version takes it exclusively, so no such append is in flight while the log is replayed.
 */
export function createInlineProjections(schema: string, projections: readonly Projection[]) {
  const handlers = new Map<
    string,
    { projection: Projection; context: (tx: Queryable) => ProjectionContext }[]
  >();
  for (const projection of projections) {
    const { physical } = projectionTables(schema, projection);
    const context = (tx: Queryable): ProjectionContext => ({ tx, table: (key) => physical(key) });
    for (const type of Object.keys(projection.handlers)) {
      handlers.set(type, [...(handlers.get(type) ?? []), { projection, context }]);
    }
  }
  const lockKey = `evident:inline:${schema}`;

  const matches = (projection: Projection, event: { type: string; stream: StreamId }) =>
    !projection.streamTypes || projection.streamTypes.includes(event.stream.type);

  async function applyTo(tx: Queryable, events: readonly RecordedEvent[], only?: Projection) {
    for (const event of events) {
      for (const { projection, context } of handlers.get(event.type) ?? []) {
        if (only && projection !== only) continue;
        if (!matches(projection, event)) continue;
        await projection.handlers[event.type]!(event, context(tx));
      }
    }
  }

  return {
    /** True when an append of these events must run the inline handlers. */
    handles(events: readonly Envelope[]): boolean {
      return handlers.size > 0 && events.some((e) => handlers.has(e.type));
    },

    /** Take the shared side of the rebuild lock in the append's transaction. */
    lock: (tx: Queryable) =>
      tx.query('select pg_advisory_xact_lock_shared(hashtext($1))', [lockKey]),

    /** Apply the handlers to freshly appended events, in the append's transaction. */
    apply(
      tx: Queryable,
      stream: StreamId,
      events: readonly Envelope[],
      rows: readonly AppendedRow[],
    ) {
      const recorded = events.map((e, i): RecordedEvent => {
        const row = rows[i]!;
        return {
          ...e,
          stream,
          streamVersion: Number(row.stream_version),
          globalPosition: Number(row.global_position),
          checkpoint: encodeCheckpoint(row.transaction_id, Number(row.global_position)),
          recordedAt: new Date(Number(row.recorded_at)).toISOString(),
        };
      });
      return applyTo(tx, recorded);
    },

    /**
     * Create tables and, for a version not yet live, rebuild it from the whole log while appends
     * of its event types wait, then make it live. Called by `store.migrate()`.
     */
    async prepare(db: Database): Promise<void> {
      for (const projection of projections) {
        await ensureProjectionTables(db, schema, projection);
        if ((await liveProjectionVersion(db, schema, projection.name)) === projection.version) {
          continue;
        }
        await db.transaction(async (tx) => {
          await tx.query('select pg_advisory_xact_lock(hashtext($1))', [lockKey]);
          if ((await liveProjectionVersion(tx, schema, projection.name)) === projection.version) {
            return;
          }
          // Every append of these types is either committed or waiting for our lock, so the
          // whole log can be read without the horizon.
          const types = Object.keys(projection.handlers);
          let after = { tx: '0', pos: '0' };
          for (;;) {
            const rows = await tx.query<EventRow & { tx_text: string }>(
              `select ${eventColumns}, transaction_id::text as tx_text
               from ${quoteIdentifier(schema)}.events
               where event_type = any($1::text[])
                 and (transaction_id, global_position) > ($2::text::xid8, $3::bigint)
               order by transaction_id, global_position
               limit 1000`,
              [types, after.tx, after.pos],
            );
            if (rows.length === 0) break;
            await applyTo(tx, rows.map(toRecordedEvent), projection);
            const last = rows[rows.length - 1]!;
            after = { tx: last.tx_text, pos: String(last.global_position) };
          }
          await promoteProjection(tx, schema, projection);
        });
      }
    },
  };
}

export type InlineProjections = ReturnType<typeof createInlineProjections>;
