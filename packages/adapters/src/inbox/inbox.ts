import { fileURLToPath } from 'node:url';
import { type Envelope, InvalidArgumentError } from '@evident/envelope';
import {
  applyMigrations,
  type EventStore,
  type MigrateOptions,
  type MigrateResult,
  type Queryable,
} from '@evident/eventstore';
import type { MessageContext, MessageHandler } from '../broker.js';

/** What the inbox needs of the event store: its schema and database. */
export type InboxStore = Pick<EventStore, 'schema' | 'database'>;

/** What an inbox handler is told: the delivery, and the transaction to make its effects in. */
export interface InboxContext extends MessageContext {
  /**
   * The transaction the message is recorded as processed in. Database writes made through it
   * commit together with that record, so they happen exactly once; anything else the handler
   * does (an HTTP call, an e-mail) happens at least once.
   */
  readonly tx: Queryable;
}

/**
 * A handler behind the inbox: make database effects through `context.tx`; resolve to commit them
 * with the record of the message, throw to roll both back and have the broker retry.
 */
export type InboxHandler<E extends Envelope = Envelope> = (
  envelope: E,
  context: InboxContext,
) => Promise<void> | void;

/** What {@link withInbox} returns: a {@link MessageHandler} that resolves once the transaction is over. */
export type InboxedHandler<E extends Envelope = Envelope> = (
  envelope: E,
  context: MessageContext,
) => Promise<void>;

/** Options of {@link withInbox}. */
export interface InboxOptions<E extends Envelope = Envelope> {
  /** The event store whose database holds the inbox (run {@link migrateInbox} first). */
  readonly store: InboxStore;
  /**
   * Name the processed messages are recorded under: each consumer de-duplicates on its own, so
   * two queues receiving the same event each handle it once. 1-100 letters, digits, `_ . : -`.
   * @defaultValue the subscription's queue (`context.queue`)
   */
  readonly consumer?: string;
  /**
   * Called after a delivery was recognised as already processed and skipped (its transaction is
   * over), e.g. to count duplicates. An error thrown here fails the delivery like a handler's.
   * @defaultValue none
   */
  readonly onDuplicate?: (envelope: E, context: MessageContext) => void;
}

/** Options of {@link pruneInbox}. */
export interface PruneInboxOptions {
  /** Remove records of messages processed before this time. */
  readonly olderThan: Date;
  /** Only this consumer's records. @defaultValue every consumer's */
  readonly consumer?: string;
  /** Rows deleted per statement, so a large prune never holds long locks. @defaultValue 10000 */
  readonly batchSize?: number;
  /** Stops between batches when aborted. */
  readonly signal?: AbortSignal;
}

const consumerPattern = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
// The store refuses any other schema name; checked again because it reaches SQL text here.
const schemaPattern = /^[a-z_][a-z0-9_]{0,47}$/;

function assertConsumer(consumer: unknown): string {
  if (typeof consumer !== 'string' || !consumerPattern.test(consumer)) {
    throw new InvalidArgumentError(
      'consumer must be 1-100 letters, digits, _ . : - starting with a letter or digit',
    );
  }
  return consumer;
}

function inboxTable(store: InboxStore): { table: string; schema: string } {
  const schema = store?.schema;
  if (typeof schema !== 'string' || !schemaPattern.test(schema) || !store.database) {
    throw new InvalidArgumentError('store must be an event store created by createEventStore');
  }
  return { table: `"${schema}".inbox`, schema };
}

/**
 * Make a broker handler's database effects exactly once: each delivery first records
 * (consumer, event id) in the inbox table, in one transaction with what the handler writes through
 * `context.tx`. A message already recorded — an AMQP redelivery, an SQS duplicate, a republish
 * after a lost confirm, a redelivery days after SQS's 5-minute FIFO window — is acknowledged
 * without running the handler. Two deliveries of one message at the same moment (two consumers)
 * produce one effect: the second waits on the first's row, then skips.
 *
 * Only effects made through `context.tx` are exactly once; other side effects of the handler
 * happen at least once. With PGlite, query only through `context.tx` inside the handler (one
 * session: a query outside the open transaction would wait for it).
 *
 * @example
 * ```ts
 * import { migrateInbox, withInbox } from '@evident/adapters/inbox';
 *
 * await migrateInbox(store); // once, as the schema's owner
 * await broker.subscribe({
 *   queue: 'claims-ledger',
 *   topics: ['ClaimAdjudicated'],
 *   handler: withInbox(
 *     async (event, { tx }) => {
 *       await tx.query('insert into ledger (claim_id, amount) values ($1, $2)', [
 *         event.data.claimId,
 *         event.data.allowed,
 *       ]);
 *     },
 *     { store },
 *   ),
 * });
 * ```
 * @throws InvalidArgumentError for a missing handler, a bad store or consumer name.
 */
export function withInbox<E extends Envelope = Envelope>(
  handler: InboxHandler<E>,
  options: InboxOptions<E>,
): InboxedHandler<E> {
  if (typeof handler !== 'function') {
    throw new InvalidArgumentError('withInbox needs a handler(envelope, context)');
  }
  const { table, schema } = inboxTable(options?.store);
  const fixedConsumer =
    options.consumer === undefined ? undefined : assertConsumer(options.consumer);
  const { database } = options.store;
  // Insert first: the row's primary key is the lock that makes a concurrent duplicate wait.
  const record = `insert into ${table} (consumer, event_id, event_type) values ($1, $2, $3)
                  on conflict (consumer, event_id) do nothing returning event_id`;
  const statement = `evident_inbox_${schema}`;
  return async (envelope, context) => {
    const consumer = fixedConsumer ?? assertConsumer(context.queue);
    const fresh = await database.transaction(async (tx) => {
      const rows = await tx.query(record, [consumer, envelope.id, envelope.type], statement);
      if (rows.length === 0) return false;
      await handler(envelope, { ...context, tx });
      return true;
    });
    if (!fresh) options.onDuplicate?.(envelope, context);
  };
}

// Works from src/ (tests, tsx) and from dist/ (published): sql/ is two levels up from both.
const directory = () => fileURLToPath(new URL('../../sql/', import.meta.url));

/**
 * Create or upgrade the inbox table in the store's schema (migrations of component `adapters`),
 * and let the store's application role record and read processed messages. Run it as the schema's
 * owner after `store.migrate()`; safe to call from every process at start-up.
 *
 * @example
 * ```ts
 * const store = createEventStore({ connectionString: process.env.DATABASE_URL! });
 * await store.migrate();
 * await migrateInbox(store);
 * ```
 * @throws EventStoreError `MIGRATION_FAILED`
 */
export function migrateInbox(store: InboxStore, options?: MigrateOptions): Promise<MigrateResult> {
  inboxTable(store);
  return applyMigrations(store, { component: 'adapters', directory: directory() }, options);
}

/**
 * Delete inbox records older than `olderThan`, in batches; returns how many were deleted.
 *
 * A message delivered again after its record is gone is handled again, so keep records longer
 * than any redelivery can come: the longest message retention of your queues (SQS keeps messages
 * up to 14 days) plus the time dead letters may wait before someone redrives them. Run it as the
 * schema's owner: the application role may not delete records.
 *
 * @example
 * ```ts
 * const monthAgo = new Date(Date.now() - 30 * 24 * 60 * 60 * 1000);
 * const deleted = await pruneInbox(store, { olderThan: monthAgo });
 * ```
 * @throws InvalidArgumentError for a bad date, consumer or batch size.
 */
export async function pruneInbox(store: InboxStore, options: PruneInboxOptions): Promise<number> {
  const { table } = inboxTable(store);
  const olderThan = options?.olderThan;
  if (!(olderThan instanceof Date) || Number.isNaN(olderThan.getTime())) {
    throw new InvalidArgumentError('olderThan must be a valid Date');
  }
  const consumer = options.consumer === undefined ? null : assertConsumer(options.consumer);
  const batchSize = options.batchSize ?? 10_000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 1_000_000) {
    throw new InvalidArgumentError('batchSize must be an integer from 1 to 1000000');
  }
  const prune = `with doomed as (
                   select consumer, event_id from ${table}
                   where processed_at < $1 and ($2::text is null or consumer = $2)
                   limit $3)
               , gone as (
                   delete from ${table} i using doomed d
                   where i.consumer = d.consumer and i.event_id = d.event_id
                   returning 1)
                 select count(*)::int8 as n from gone`;
  let total = 0;
  while (!options.signal?.aborted) {
    const [row] = await store.database.query<{ n: string | number }>(prune, [
      olderThan.toISOString(),
      consumer,
      batchSize,
    ]);
    const deleted = Number(row?.n ?? 0);
    total += deleted;
    if (deleted < batchSize) break;
  }
  return total;
}
