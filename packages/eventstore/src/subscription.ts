import { InvalidArgumentError, type Logger, silentLogger, traceContextOf } from '@evident/envelope';
import pg from 'pg';
import { type Checkpoint, decodeCheckpoint, startOfLog } from './checkpoint.js';
import type { Database, Queryable } from './database.js';
import { EventStoreError } from './errors.js';
import type { EventStore, ReadAllResult } from './eventStore.js';
import type { Notifier } from './notifier.js';
import type { RecordedEvent } from './recordedEvent.js';
import { statementName } from './statementName.js';
import { quoteIdentifier } from './streamId.js';
import { metricsNow, observeSubscription, SpanKind, traced } from './telemetry.js';

/** What a handler is given beside the event. */
export interface HandlerContext {
  /**
   * The transaction the subscription's checkpoint commits in. Database writes made through it
   * commit together with the checkpoint: exactly once. Anything else a handler does (a broker
   * publish, an e-mail) happens at least once.
   */
  readonly tx: Queryable;
  /** 1 on first delivery, then 2, 3, … while the failure policy retries. */
  readonly attempt: number;
  readonly subscription: string;
}

export type SubscriptionHandler = (
  event: RecordedEvent,
  context: HandlerContext,
) => Promise<void> | void;

export interface FailurePolicy {
  /** Deliveries after the first before giving up on an event. @defaultValue 3 */
  readonly retries?: number;
  /** Delay before retry n: min(initialMs × factor^(n-1), maxMs). @defaultValue 100 ms × 2, ≤ 10 s */
  readonly backoff?: {
    readonly initialMs?: number;
    readonly factor?: number;
    readonly maxMs?: number;
  };
  /**
   * After the last retry: `'park'` the event in `parked_events` with its error and go on, or
   * `'stop'` the subscription where it is. @defaultValue 'park'
   */
  readonly exhausted?: 'park' | 'stop';
}

export interface SubscribeOptions {
  /** Names the subscription's checkpoint; one active instance per name. `[a-z][a-z0-9_.:-]*`, ≤ 100. */
  readonly name: string;
  /** Where a subscription without a stored checkpoint starts. @defaultValue 'start' */
  readonly from?: 'start' | 'now' | Checkpoint;
  readonly filter?: {
    readonly types?: readonly string[];
    readonly streamTypes?: readonly string[];
  };
  readonly handler: SubscriptionHandler;
  /** Events per transaction. @defaultValue 100 */
  readonly batchSize?: number;
  readonly onError?: FailurePolicy;
  /** Poll this often when no wake-up comes (missed NOTIFY, writers outside Evident). @defaultValue 1000 */
  readonly pollIntervalMs?: number;
  /** A standby instance tries to take over this often. @defaultValue 1000 */
  readonly takeoverIntervalMs?: number;
  /**
   * Called each time the subscription goes from behind to caught up with the log (after the
   * catch-up on start, and after every burst). An error here is reported like a handler's error
   * and the call is repeated at the next catch-up.
   */
  readonly onCaughtUp?: () => Promise<void> | void;
  /** Stops the subscription when aborted. */
  readonly signal?: AbortSignal;
  /**
   * The subscription's pages, from a caller that reads the log ahead of it: called with the
   * checkpoint the subscription is at and the most events it wants, it returns (or resolves to)
   * the page `readAll` would give from there — the events right after that checkpoint that the
   * filter lets through, the checkpoint after them and whether that is the head — or `undefined`
   * to have the subscription read the log itself. The subscription trusts the answer: an event
   * left out is never handled. For a handler that reads ahead of its subscription (the outbox
   * relay), so each event is read from the log once.
   */
  readonly readAhead?: (
    after: Checkpoint,
    limit: number,
  ) => ReadAllResult | undefined | Promise<ReadAllResult | undefined>;
}

export type SubscriptionState = 'starting' | 'active' | 'standby' | 'stopped' | 'failed';

export interface SubscriptionStatus {
  readonly name: string;
  readonly state: SubscriptionState;
  /** Everything up to here has been handled (and, for database effects, committed). */
  readonly checkpoint: Checkpoint;
  /** Checkpoint of the newest committed event in the log. */
  readonly head: Checkpoint;
  /** Committed events after the checkpoint that match the filter (counted up to 1,000,000). */
  readonly lagEvents: number;
  /** Age of the oldest such event, in seconds (0 when none). */
  readonly lagSeconds: number;
  /** Events parked and not yet retried or skipped. */
  readonly parked: number;
  readonly lastError?: ErrorSummary;
}

/** What is kept of a handler's error: never the event. */
export interface ErrorSummary {
  readonly name: string;
  readonly code?: string;
  readonly message: string;
}

export interface ParkedEvent {
  readonly id: number;
  readonly subscription: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly checkpoint: Checkpoint;
  readonly error: ErrorSummary;
  readonly attempts: number;
  readonly parkedAt: string;
}

export interface Subscription {
  readonly name: string;
  readonly state: SubscriptionState;
  /** Checkpoint, head of log, lag in events and seconds, parked count. */
  status(): Promise<SubscriptionStatus>;
  /** Resolves once everything up to `checkpoint` has been handled. */
  waitFor(checkpoint: Checkpoint, options?: { readonly timeoutMs?: number }): Promise<void>;
  /** Parked events still waiting for an operator. */
  parked(): Promise<ParkedEvent[]>;
  /** Run the handler again for a parked event (in a transaction); it leaves the list on success. */
  retryParked(id: number): Promise<void>;
  /** Give up on a parked event, recording who decided and why. */
  skipParked(
    id: number,
    resolution: { readonly actor: string; readonly reason: string },
  ): Promise<void>;
  /** Finish the batch in hand, release the lease, stop. */
  stop(): Promise<void>;
}

/** The subscription lost its lease to another instance mid-batch; the batch was rolled back. */
class FencedError extends Error {}

export function summarizeError(error: unknown): ErrorSummary {
  const e = error as { name?: unknown; code?: unknown; message?: unknown } | null;
  const name = typeof e?.name === 'string' ? e.name : typeof error;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return {
    name: name.slice(0, 200),
    ...(typeof e?.code === 'string' ? { code: e.code.slice(0, 100) } : {}),
    message: message.slice(0, 2000),
  };
}

const namePattern = /^[a-z][a-z0-9_.:-]*$/;
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

// In-process leases, for PGlite (one session: advisory locks cannot tell instances apart).
const localLeases = new Set<string>();

export function createSubscriptions(
  store: EventStore,
  db: Database,
  notifier: Notifier,
  tenant?: string,
  logger: Logger = silentLogger,
) {
  const s = quoteIdentifier(store.schema);
  const sql = {
    load: `select checkpoint from ${s}.subscriptions where name = $1`,
    init: `insert into ${s}.subscriptions (name, checkpoint) values ($1, $2)
           on conflict (name) do nothing`,
    // Compare-and-set: an instance that lost its lease cannot move the checkpoint.
    save: `update ${s}.subscriptions set checkpoint = $3, updated_at = now()
           where name = $1 and checkpoint = $2`,
    park: `insert into ${s}.parked_events
             (subscription, event_id, event_type, checkpoint, error, attempts)
           values ($1, $2, $3, $4, $5::jsonb, $6)
           on conflict (subscription, event_id) do update
             set error = excluded.error, attempts = excluded.attempts, status = 'parked',
                 parked_at = now(), resolved_at = null, resolved_by = null, resolution_reason = null`,
    horizon: `select lpad(to_hex(pg_snapshot_xmin(pg_current_snapshot())::text::bigint), 16, '0')
                || ':0000000000000000' as checkpoint`,
    head: `select lpad(to_hex(transaction_id::text::bigint), 16, '0') || ':' ||
                  lpad(to_hex(global_position), 16, '0') as checkpoint
           from ${s}.events order by transaction_id desc, global_position desc limit 1`,
    lag: `select count(*)::int8 as events,
                 coalesce(extract(epoch from now() - min(recorded_at)), 0)::float8 as seconds
          from (select recorded_at from ${s}.events
                where (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
                  and ($3::text[] is null or event_type = any($3::text[]))
                  and ($4::text[] is null or stream_type = any($4::text[]))
                limit 1000000) as pending`,
    parkedCount: `select count(*)::int8 as n from ${s}.parked_events
                  where subscription = $1 and status = 'parked'`,
    parkedList: `select id, subscription, event_id, event_type, checkpoint, error, attempts,
                        (extract(epoch from parked_at) * 1000)::int8 as parked_at
                 from ${s}.parked_events where subscription = $1 and status = 'parked'
                 order by id`,
    parkedOne: `select id, event_id, status from ${s}.parked_events where subscription = $1 and id = $2`,
    resolve: `update ${s}.parked_events
              set status = $3, resolved_at = now(), resolved_by = $4, resolution_reason = $5
              where subscription = $1 and id = $2 and status = 'parked'`,
    eventById: `select event_id from ${s}.events where event_id = $1`,
  };

  return function subscribe(options: SubscribeOptions): Subscription {
    const name = options?.name;
    if (typeof name !== 'string' || name.length > 100 || !namePattern.test(name)) {
      throw new InvalidArgumentError(
        'subscription name must be 1-100 characters of a-z, 0-9, _ . : - starting with a letter',
      );
    }
    if (options.readAhead !== undefined && typeof options.readAhead !== 'function') {
      throw new InvalidArgumentError('readAhead must be a function (after, limit)');
    }
    if (typeof options.handler !== 'function') {
      throw new InvalidArgumentError('subscribe needs a handler(event, context)');
    }
    const batchSize = options.batchSize ?? 100;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new InvalidArgumentError('batchSize must be an integer from 1 to 10000');
    }
    const retries = options.onError?.retries ?? 3;
    const backoff = { initialMs: 100, factor: 2, maxMs: 10_000, ...options.onError?.backoff };
    const exhausted = options.onError?.exhausted ?? 'park';
    const pollIntervalMs = options.pollIntervalMs ?? 1000;
    const takeoverIntervalMs = options.takeoverIntervalMs ?? 1000;
    const types = options.filter?.types ? [...options.filter.types] : undefined;
    const streamTypes = options.filter?.streamTypes ? [...options.filter.streamTypes] : undefined;
    // A tenant's subscriptions are its own: the same name in two tenants is two subscriptions.
    const key = tenant === undefined ? name : `${name}@${tenant}`;
    const leaseKey = `${store.schema}:${key}`;

    const abort = new AbortController();
    options.signal?.addEventListener('abort', () => void subscription.stop(), { once: true });
    let state: SubscriptionState = 'starting';
    let checkpoint: Checkpoint = startOfLog;
    let persisted: Checkpoint = startOfLog;
    let lastError: ErrorSummary | undefined;
    let wake: (() => void) | undefined;
    // Set by a wake-up that arrives while the loop is busy, so the next idle() returns at once.
    let woken = false;
    let leaseClient: pg.Client | undefined;
    let holdsLocalLease = false;
    const waiters = new Set<{ target: Checkpoint; resolve: () => void }>();

    const ring = () => {
      woken = true;
      wake?.();
    };
    const unsubscribeLocal = notifier.onLocalAppend(ring);

    function settleWaiters() {
      for (const w of waiters) {
        if (checkpoint >= w.target) {
          waiters.delete(w);
          w.resolve();
        }
      }
    }

    /** Wait for a wake-up, `ms`, or stop. Resolves true when woken by an append. */
    function idle(ms: number): Promise<boolean> {
      if (woken) {
        woken = false;
        return Promise.resolve(true);
      }
      return new Promise((resolve) => {
        const timer = setTimeout(() => done(false), ms);
        function done(byAppend: boolean) {
          clearTimeout(timer);
          wake = undefined;
          woken = false;
          abort.signal.removeEventListener('abort', stopped);
          resolve(byAppend);
        }
        const stopped = () => done(false);
        wake = () => done(true);
        abort.signal.addEventListener('abort', stopped, { once: true });
      });
    }

    async function acquireLease(): Promise<boolean> {
      if (db.kind === 'pglite' || !db.pool) {
        if (holdsLocalLease) return true;
        if (localLeases.has(leaseKey)) return false;
        localLeases.add(leaseKey);
        holdsLocalLease = true;
        return true;
      }
      if (leaseClient) return true;
      // A session of its own: the advisory lock lives exactly as long as this connection, so a
      // killed process releases it the moment the server notices, and LISTEN rides along.
      const client = new pg.Client(db.pool.options);
      client.on('error', () => {
        // Surfaced through the next query; the loop then drops the lease and retries.
      });
      try {
        await client.connect();
        const [row] = (
          await client.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtext($1)) as ok', [
            `evident:subscription:${leaseKey}`,
          ])
        ).rows;
        if (!row?.ok) {
          await client.end().catch(() => {});
          return false;
        }
        await client.query(`listen ${quoteIdentifier(notifier.channel)}`);
        client.on('notification', ring);
        client.on('end', () => {
          if (leaseClient === client) leaseClient = undefined;
          ring();
        });
        leaseClient = client;
        return true;
      } catch {
        await client.end().catch(() => {});
        return false;
      }
    }

    async function releaseLease(): Promise<void> {
      if (holdsLocalLease) {
        localLeases.delete(leaseKey);
        holdsLocalLease = false;
      }
      const client = leaseClient;
      leaseClient = undefined;
      if (client) await client.end().catch(() => {});
    }

    const holdsLease = () => holdsLocalLease || leaseClient !== undefined;

    async function loadCheckpoint(): Promise<void> {
      let initial: Checkpoint = startOfLog;
      if (options.from === 'now') {
        // The horizon: everything committed before it is "the past"; anything still in flight is
        // delivered (at least once, as always).
        const [row] = await db.query<{ checkpoint: string }>(sql.horizon);
        initial = row!.checkpoint as Checkpoint;
      } else if (options.from && options.from !== 'start') {
        decodeCheckpoint(options.from);
        initial = options.from;
      }
      await db.query(sql.init, [key, initial], statementName(sql.init));
      const rows = await db.query<{ checkpoint: string }>(sql.load, [key], statementName(sql.load));
      checkpoint = persisted = rows[0]!.checkpoint as Checkpoint;
    }

    async function save(tx: Queryable, next: Checkpoint): Promise<void> {
      if (next === persisted) return;
      const rows = await tx.query<{ name: string }>(
        `${sql.save} returning name`,
        [key, persisted, next],
        statementName(sql.save),
      );
      if (rows.length === 0) throw new FencedError();
    }

    /** Run the handler in a span that continues the producer's trace. */
    function handle(event: RecordedEvent, tx: Queryable, attempt: number): Promise<void> {
      return traced(
        'evident.subscription.handle',
        SpanKind.CONSUMER,
        {
          'evident.subscription': name,
          'evident.event.type': event.type,
          'evident.stream.type': event.stream.type,
          'evident.correlation_id': event.correlationId,
          'evident.attempt': attempt,
        },
        async () => {
          await options.handler(event, { tx, attempt, subscription: name });
        },
        traceContextOf(event),
      );
    }

    async function handleBatch(events: RecordedEvent[], next: Checkpoint): Promise<void> {
      await traced(
        'evident.subscription.batch',
        SpanKind.INTERNAL,
        { 'evident.subscription': name, 'evident.events': events.length },
        () =>
          db.transaction(async (tx) => {
            for (const event of events) await handle(event, tx, 1);
            await save(tx, next);
          }),
      );
      checkpoint = persisted = next;
      metricsNow().handledEvents.add(events.length, { 'evident.subscription': name });
    }

    /** One event at a time, with the failure policy. Returns false when the policy says stop. */
    async function handleOneByOne(events: RecordedEvent[]): Promise<boolean> {
      for (const event of events) {
        if (event.checkpoint <= checkpoint) continue;
        let attempt = 1;
        for (;;) {
          try {
            await db.transaction(async (tx) => {
              await handle(event, tx, attempt);
              await save(tx, event.checkpoint);
            });
            checkpoint = persisted = event.checkpoint;
            metricsNow().handledEvents.add(1, { 'evident.subscription': name });
            break;
          } catch (error) {
            if (error instanceof FencedError) throw error;
            lastError = summarizeError(error);
            // Name and code only: a handler's message may quote the payload.
            const failure = {
              subscription: name,
              eventType: event.type,
              eventId: event.id,
              correlationId: event.correlationId,
              attempt,
              error: { name: lastError.name, ...(lastError.code ? { code: lastError.code } : {}) },
            };
            if (attempt <= retries) {
              logger.warn(failure, 'subscription handler failed; retrying');
              metricsNow().retries.add(1, { 'evident.subscription': name });
              const delay = Math.min(
                backoff.initialMs * backoff.factor ** (attempt - 1),
                backoff.maxMs,
              );
              attempt += 1;
              await sleep(delay, abort.signal);
              if (abort.signal.aborted) return false;
              continue;
            }
            if (exhausted === 'stop') {
              logger.error(failure, 'subscription handler failed; stopping where it is');
              return false;
            }
            logger.warn(failure, 'subscription handler failed; event parked');
            metricsNow().parked.add(1, { 'evident.subscription': name });
            await db.transaction(async (tx) => {
              await tx.query(sql.park, [
                key,
                event.id,
                event.type,
                event.checkpoint,
                JSON.stringify(lastError),
                attempt,
              ]);
              await save(tx, event.checkpoint);
            });
            checkpoint = persisted = event.checkpoint;
            break;
          }
        }
      }
      return true;
    }

    let lastIdleSave = Date.now();
    async function run(): Promise<void> {
      // Greater than 0 while an append woke us and its events are not readable yet.
      let chasing = 0;
      let caughtUp = false;
      const reachedHead = async () => {
        if (caughtUp) return;
        if (options.onCaughtUp) await options.onCaughtUp();
        caughtUp = true;
      };
      while (!abort.signal.aborted) {
        // PGlite answers from the same thread: without this, a busy log would keep the loop in
        // microtasks and starve timers and I/O (stop(), timeouts) for as long as it stays busy.
        await new Promise((resolve) => setImmediate(resolve));
        try {
          if (!holdsLease()) {
            if (!(await acquireLease())) {
              state = 'standby';
              await sleep(takeoverIntervalMs, abort.signal);
              continue;
            }
            await loadCheckpoint();
            state = 'active';
            logger.info({ subscription: name }, 'subscription active');
          }
          const offered = await options.readAhead?.(checkpoint, batchSize);
          const page =
            offered !== undefined
              ? offered
              : await store.readAll({
                  after: checkpoint,
                  limit: batchSize,
                  ...(types ? { types } : {}),
                  ...(streamTypes ? { streamTypes } : {}),
                });
          if (page.events.length > 0) {
            chasing = 0;
            caughtUp = false;
            // The page's checkpoint moves past filtered-out events too.
            const next = page.checkpoint;
            try {
              await handleBatch(page.events, next);
            } catch (error) {
              if (error instanceof FencedError) throw error;
              // Find the failing event by going one at a time, each with its own checkpoint.
              if (!(await handleOneByOne(page.events))) {
                state = abort.signal.aborted ? 'stopped' : 'failed';
                break;
              }
              if (next > checkpoint) {
                await db.transaction((tx) => save(tx, next));
                checkpoint = persisted = next;
              }
            }
            settleWaiters();
            if (page.caughtUp) await reachedHead();
            continue;
          }
          // Nothing new. Keep the horizon in memory; persist it now and then so a filtered
          // subscription does not rescan what it skipped after a restart.
          checkpoint = page.checkpoint;
          settleWaiters();
          await reachedHead();
          if (checkpoint !== persisted && Date.now() - lastIdleSave > 5000) {
            await db.transaction((tx) => save(tx, checkpoint));
            persisted = checkpoint;
            lastIdleSave = Date.now();
          }
          // Woken by an append but nothing readable yet (an older transaction still holds the
          // horizon): look again soon, backing off. Otherwise sleep until the next wake-up or poll.
          const wait =
            chasing > 0 && chasing < 10
              ? Math.min(pollIntervalMs, 5 * 2 ** chasing)
              : pollIntervalMs;
          if (chasing > 0) chasing += 1;
          if (await idle(wait)) chasing = 1;
        } catch (error) {
          if (error instanceof FencedError) {
            lastError = { name: 'LeaseLost', message: 'another instance moved the checkpoint' };
          } else {
            lastError = summarizeError(error);
          }
          // Connection trouble or a lost lease: let go, then compete again.
          logger.warn(
            {
              subscription: name,
              error: { name: lastError.name, ...(lastError.code ? { code: lastError.code } : {}) },
            },
            'subscription lost its connection or lease; standing by',
          );
          await releaseLease();
          state = 'standby';
          await sleep(takeoverIntervalMs, abort.signal);
        }
      }
      if (state !== 'failed') state = 'stopped';
      await releaseLease();
    }

    const running = run();
    const stopObserving = observeSubscription(name, () => subscription.status());

    const subscription: Subscription = {
      name,
      get state() {
        return state;
      },
      async status() {
        const { transactionId, position } = decodeCheckpoint(checkpoint);
        const [head] = await db.query<{ checkpoint: string }>(
          sql.head,
          [],
          statementName(sql.head),
        );
        const [lag] = await db.query<{ events: string | number; seconds: number | string }>(
          sql.lag,
          [transactionId, position, types ?? null, streamTypes ?? null],
          statementName(sql.lag),
        );
        const [parked] = await db.query<{ n: string | number }>(sql.parkedCount, [key]);
        return {
          name,
          state,
          checkpoint,
          head: (head?.checkpoint as Checkpoint | undefined) ?? startOfLog,
          lagEvents: Number(lag?.events ?? 0),
          lagSeconds: Number(lag?.seconds ?? 0),
          parked: Number(parked?.n ?? 0),
          ...(lastError ? { lastError } : {}),
        };
      },
      waitFor(target, waitOptions = {}) {
        decodeCheckpoint(target);
        if (checkpoint >= target) return Promise.resolve();
        const timeoutMs = waitOptions.timeoutMs ?? 30_000;
        return new Promise((resolve, reject) => {
          const waiter = {
            target,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          };
          const timer = setTimeout(() => {
            waiters.delete(waiter);
            reject(
              new EventStoreError(
                'SUBSCRIPTION_TIMEOUT',
                `subscription ${name} did not reach the checkpoint in ${timeoutMs} ms`,
              ),
            );
          }, timeoutMs);
          waiters.add(waiter);
          ring();
        });
      },
      async parked() {
        const rows = await db.query<{
          id: string | number;
          subscription: string;
          event_id: string;
          event_type: string;
          checkpoint: string;
          error: ErrorSummary;
          attempts: number;
          parked_at: string | number;
        }>(sql.parkedList, [key]);
        return rows.map((r) => ({
          id: Number(r.id),
          subscription: name,
          eventId: r.event_id,
          eventType: r.event_type,
          checkpoint: r.checkpoint as Checkpoint,
          error: r.error,
          attempts: r.attempts,
          parkedAt: new Date(Number(r.parked_at)).toISOString(),
        }));
      },
      async retryParked(id) {
        // Read before the transaction: PGlite has one session, and a read outside an open
        // transaction would wait for it to end.
        const [row] = await db.query<{ event_id: string; status: string }>(sql.parkedOne, [
          key,
          id,
        ]);
        if (row?.status !== 'parked') {
          throw new InvalidArgumentError(`no parked event ${id} in subscription ${name}`);
        }
        const event = await findEvent(row.event_id);
        await db.transaction(async (tx) => {
          const resolved = await tx.query(`${sql.resolve} returning id`, [
            key,
            id,
            'retried',
            null,
            null,
          ]);
          if (resolved.length === 0) {
            throw new InvalidArgumentError(`parked event ${id} was resolved meanwhile`);
          }
          await options.handler(event, { tx, attempt: 1, subscription: name });
        });
      },
      async skipParked(id, resolution) {
        if (!resolution?.actor || !resolution.reason) {
          throw new InvalidArgumentError('skipping a parked event needs { actor, reason }');
        }
        const rows = await db.query<{ id: number }>(`${sql.resolve} returning id`, [
          key,
          id,
          'skipped',
          resolution.actor,
          resolution.reason,
        ]);
        if (rows.length === 0) {
          throw new InvalidArgumentError(`no parked event ${id} in subscription ${name}`);
        }
      },
      async stop() {
        stopObserving();
        abort.abort();
        unsubscribeLocal();
        await running;
        for (const w of waiters) w.resolve();
        waiters.clear();
      },
    };

    async function findEvent(eventId: string): Promise<RecordedEvent> {
      const { events } = await readEventById(eventId);
      const event = events[0];
      if (!event)
        throw new EventStoreError('EVENT_NOT_FOUND', 'the parked event is not in the log');
      return event;
    }

    async function readEventById(eventId: string) {
      const rows = await db.query<{ checkpoint: string }>(
        `select lpad(to_hex(transaction_id::text::bigint), 16, '0') || ':' ||
                lpad(to_hex(global_position - 1), 16, '0') as checkpoint
         from ${s}.events where event_id = $1`,
        [eventId],
      );
      if (!rows[0]) return { events: [] as RecordedEvent[] };
      return store.readAll({ after: rows[0].checkpoint as Checkpoint, limit: 1 });
    }

    return subscription;
  };
}
