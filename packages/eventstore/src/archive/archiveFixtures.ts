/**
 * Test support for the archive's integration tests (not exported): events recorded long ago,
 * inserted the way only the schema's owner can, and reading the whole log.
 */
import { randomUUID } from 'node:crypto';
import type { Checkpoint } from '../checkpoint.js';
import type { EventStore } from '../eventStore.js';
import type { RecordedEvent } from '../recordedEvent.js';
import { quoteIdentifier } from '../streamId.js';

export interface OldEvents {
  readonly stream: { readonly type: string; readonly id: string };
  readonly type?: string;
  readonly count?: number;
  readonly recordedAt: Date;
  readonly tenant?: string;
}

/**
 * Insert `count` events into a new stream with an explicit `recorded_at`, as the owner does when
 * importing history. Returns the checkpoint of the last one.
 */
export async function insertOld(store: EventStore, options: OldEvents): Promise<Checkpoint> {
  const s = quoteIdentifier(store.schema);
  const count = options.count ?? 1;
  const type = options.type ?? 'ClaimSubmitted';
  const recordedAt = options.recordedAt.toISOString();
  return store.database.transaction(async (tx) => {
    if (options.tenant) {
      await tx.query("select set_config('evident.tenant_id', $1, true)", [options.tenant]);
    }
    await tx.query(
      `insert into ${s}.streams (stream_type, stream_id, version, tenant_id) values ($1, $2, $3, $4)`,
      [options.stream.type, options.stream.id, count, options.tenant ?? null],
    );
    let last = '';
    for (let version = 1; version <= count; version++) {
      const correlation = randomUUID();
      const [row] = await tx.query<{ checkpoint: string }>(
        `insert into ${s}.events (stream_type, stream_id, stream_version, event_id, event_type,
           schema_version, data, metadata, correlation_id, causation_id, source, actor_id,
           actor_role, tenant_id, occurred_at, recorded_at)
         values ($1, $2, $3, $4, $5, 1, $6::jsonb, '{"via": "import"}'::jsonb, $7, $7,
           'billing-service', 'u-17', 'billing-clerk', $8, $9, $9)
         returning ${s}.checkpoint_of(transaction_id, global_position) as checkpoint`,
        [
          options.stream.type,
          options.stream.id,
          version,
          randomUUID(),
          type,
          JSON.stringify({
            version,
            lines: [{ code: 'D1110', fee: 110.5 }],
            note: 'ü “quoted” \\ tab\t',
          }),
          correlation,
          options.tenant ?? null,
          recordedAt,
        ],
      );
      last = row!.checkpoint;
    }
    return last as Checkpoint;
  });
}

/** Every event of the log readable now, in log order. */
export async function readWholeLog(store: EventStore): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  let after: Checkpoint | undefined;
  for (;;) {
    const page = await store.readAll({ ...(after ? { after } : {}), limit: 1000 });
    out.push(...page.events);
    after = page.checkpoint;
    if (page.caughtUp) return out;
  }
}

export const yearsAgo = (years: number, plusDays = 0) =>
  new Date(Date.now() - years * 365.25 * 86_400_000 + plusDays * 86_400_000);
