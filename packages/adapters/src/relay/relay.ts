import { createHash } from 'node:crypto';
import {
  type Envelope,
  InvalidArgumentError,
  isEvidentError,
  silentLogger,
  tracingOff,
} from '@evident/envelope';
import type {
  Checkpoint,
  ErrorSummary,
  EventStore,
  ParkedEvent,
  ReadAllResult,
  RecordedEvent,
  SubscribeOptions,
  SubscriptionState,
  SubscriptionStatus,
} from '@evident/eventstore';
import { context as otelContext, ROOT_CONTEXT } from '@opentelemetry/api';
import type { Broker, PublishOptions } from '../broker.js';
import { isBrokerError } from '../errors.js';
import { type BrokerLogger, errorFields } from '../logger.js';
import { type BackoffOptions, backoffDelay, resolveRetryPolicy } from '../retryPolicy.js';

/** What the relay needs of the event store: the global log, subscriptions and the database kind. */
export type RelayStore = Pick<EventStore, 'subscribe' | 'readAll' | 'database'>;

/** Options of {@link relay}. */
export interface RelayOptions {
  /** The event store whose global log is the outbox. */
  readonly store: RelayStore;
  /** Where events are published. The relay never closes it. */
  readonly broker: Broker;
  /**
   * Names the relay's checkpoint (a store subscription): one relay of a name is active at a time,
   * others wait on standby and take over. `[a-z][a-z0-9_.:-]*`, at most 100 characters.
   */
  readonly subscriptionName: string;
  /** Publish only these events; the checkpoint still moves past the others. @defaultValue every event */
  readonly filter?: SubscribeOptions['filter'];
  /**
   * Where a relay without a stored checkpoint starts: the start of the log, `'now'` (only events
   * committed from now on), or a checkpoint. @defaultValue 'start'
   */
  readonly from?: SubscribeOptions['from'];
  /**
   * The topic an event is published to. An error thrown here makes the event unpublishable (see
   * `unpublishable`). @defaultValue the event's `type`
   */
  readonly topicOf?: (event: RecordedEvent) => string;
  /**
   * The delivery priority of an event, for brokers and queues with priorities (urgent clinical
   * events overtaking routine ones). @defaultValue none
   */
  readonly priorityOf?: (event: RecordedEvent) => number | undefined;
  /**
   * Most publishes waiting for the broker's confirm at once. Events of different streams are
   * published concurrently up to this; a stream's next event waits for the confirm of its previous
   * one. On PGlite the relay publishes one event at a time (one session: it cannot read ahead while
   * the checkpoint's transaction is open). @defaultValue 200
   */
  readonly maxInFlight?: number;
  /**
   * Most events per checkpoint transaction while catching up (live, a transaction holds what has
   * arrived). A relay killed or cut off publishes up to `batchSize + maxInFlight` events again.
   * @defaultValue 500
   */
  readonly batchSize?: number;
  /**
   * Delays between attempts of a publish the broker rejected or did not confirm in time. The relay
   * retries such a publish for as long as it runs, and its checkpoint does not pass the event.
   * @defaultValue `{ initialMs: 100, factor: 2, maxMs: 30000 }`
   */
  readonly backoff?: BackoffOptions;
  /**
   * What to do with an event no broker call can publish: one the broker refuses by its content
   * (over the broker's size limit, `PAYLOAD_*`), an option the broker cannot honour
   * (`UNSUPPORTED_OPTION`), a topic that is not a valid topic, or an error from `topicOf` or
   * `priorityOf`. `'park'` records it with its error among the subscription's parked events and
   * goes on (`relay.parked()`, `retryParked`, `skipParked`); `'stop'` stops the relay at it, with
   * state `failed`. @defaultValue 'park'
   */
  readonly unpublishable?: 'park' | 'stop';
  /** Poll the log this often when no append wakes the relay. @defaultValue 1000 */
  readonly pollIntervalMs?: number;
  /** A standby relay tries to take over this often. @defaultValue 1000 */
  readonly takeoverIntervalMs?: number;
  /** Where failed publishes are reported, with error names and codes, never payloads. @defaultValue `console` */
  readonly logger?: BrokerLogger;
  /** Stops the relay when aborted. */
  readonly signal?: AbortSignal;
}

/** A relay's progress: its subscription's status, and what it published. */
export interface RelayStatus extends SubscriptionStatus {
  /** Publishes the broker confirmed since this relay started, republished duplicates included. */
  readonly published: number;
  /** Publishes sent and not confirmed yet. */
  readonly inFlight: number;
  /** Publishes that failed (rejected, not confirmed in time, unpublishable) since this relay started. */
  readonly publishFailures: number;
  /** The latest failed publish's error; it may have succeeded on a later attempt. */
  readonly lastPublishError?: ErrorSummary;
}

/** A running relay. */
export interface Relay {
  /** The subscription name given to {@link relay}. */
  readonly name: string;
  /** `active` while this instance relays; `standby` while another instance of the name does. */
  readonly state: SubscriptionState;
  /** Checkpoint, head of the log, lag, parked count, and what was published. */
  status(): Promise<RelayStatus>;
  /**
   * Resolves once every event up to `checkpoint` (e.g. an append's) has been confirmed by the
   * broker and checkpointed; at once for `null` (the checkpoint of an empty append).
   *
   * @throws EventStoreError `SUBSCRIPTION_TIMEOUT` after `timeoutMs` (default 30000).
   */
  waitFor(checkpoint: Checkpoint | null, options?: { readonly timeoutMs?: number }): Promise<void>;
  /** Unpublishable events parked with their error, waiting for an operator. */
  parked(): Promise<ParkedEvent[]>;
  /**
   * Publish a parked event again (once the cause is fixed, e.g. a larger size limit); it leaves
   * the list when the broker confirms.
   *
   * @throws InvalidArgumentError when no such event is parked.
   * @throws BrokerError or PayloadError when the publish fails again; it stays parked.
   */
  retryParked(id: number): Promise<void>;
  /** Give up on a parked event, recording who decided and why. */
  skipParked(
    id: number,
    resolution: { readonly actor: string; readonly reason: string },
  ): Promise<void>;
  /**
   * Stop publishing: send nothing new, wait for the publishes in flight to settle (each within the
   * broker's own publish timeout), checkpoint what they confirmed up to the first that was not, and
   * release the checkpoint to a standby instance. The broker stays open.
   */
  stop(): Promise<void>;
}

/** The event's stream as an ordering key: printable ASCII, at most 128 characters (SQS's rule). */
function streamKey(event: RecordedEvent): string {
  const key = `${event.stream.type}/${event.stream.id}`;
  return key.length <= 128 ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** The envelope as produced, without where the store recorded it. */
function toEnvelope(event: RecordedEvent): Envelope {
  const {
    stream: _stream,
    streamVersion: _version,
    globalPosition: _position,
    checkpoint: _checkpoint,
    recordedAt: _recordedAt,
    ...envelope
  } = event;
  return envelope;
}

function summarize(error: unknown): ErrorSummary {
  const e = error as { name?: unknown; code?: unknown; message?: unknown } | null;
  return {
    name: (typeof e?.name === 'string' ? e.name : typeof error).slice(0, 200),
    ...(typeof e?.code === 'string' ? { code: e.code.slice(0, 100) } : {}),
    message: (typeof e?.message === 'string' ? e.message : String(error)).slice(0, 2000),
  };
}

/**
 * Run outside whatever span is active. The relay starts publishes and reads wherever its pipeline
 * happens to be — reading a page for its subscription, in a confirm's callback, in the handler of
 * another event — so an ambient span is an accident: a publish joins its own event's trace (the
 * instrumented broker continues the trace the event was created in when no span is active), and a
 * read of the log, which serves many events, belongs to none of them.
 */
function detached<T>(fn: () => T): T {
  return tracingOff() ? fn() : otelContext.with(ROOT_CONTEXT, fn);
}

/** Errors from the user's `topicOf` and `priorityOf`: the same event would fail the same way again. */
const fromMapping = new WeakSet<object>();

/** Whether publishing this event can never succeed as it stands, however often it is retried. */
function isUnpublishable(error: unknown): boolean {
  if (typeof error === 'object' && error !== null && fromMapping.has(error)) return true;
  if (isBrokerError(error, 'UNSUPPORTED_OPTION')) return true;
  if (!isEvidentError(error)) return false;
  return error.code === 'INVALID_ARGUMENT' || error.code.startsWith('PAYLOAD_');
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Thrown into the subscription when the relay stops mid-event, so it checkpoints nothing more. */
class RelayStoppedError extends Error {
  override readonly name = 'RelayStoppedError';
}

/** A publish dropped because the pipeline was restarted before it was sent. */
const superseded = new Error('superseded');

interface Pending {
  readonly event: RecordedEvent;
  readonly done: Promise<void>;
}

/**
 * The outbox relay: publishes every event of the store's global log to the broker, in log order
 * per stream, and checkpoints only what the broker has confirmed. The event store is the outbox —
 * an event is published because it was committed, so there is no second write to lose.
 *
 * Delivery is at least once: a relay killed or cut off after a publish and before its checkpoint
 * commits publishes those events again when it (or its standby) resumes. The envelope id is the
 * same every time (and the de-duplication id on SQS FIFO), so consumers behind `withInbox` see each
 * effect once. Each message carries its stream (`<type>/<id>`) as the ordering key.
 *
 * @example
 * ```ts
 * import { relay } from '@evident/adapters/relay';
 *
 * const outbox = relay({ store, broker, subscriptionName: 'claims-outbox' });
 * const { checkpoint } = await store.append(claim, [submitted], { expectedVersion: 'no_stream' });
 * await outbox.waitFor(checkpoint); // confirmed by the broker
 * await outbox.stop();
 * ```
 * @throws InvalidArgumentError for a bad option (the store checks the name, filter and batch size).
 */
export function relay(options: RelayOptions): Relay {
  const { store, broker } = options ?? ({} as RelayOptions);
  if (typeof store?.subscribe !== 'function' || typeof store.readAll !== 'function') {
    throw new InvalidArgumentError('relay needs an event store created by createEventStore');
  }
  if (typeof broker?.publish !== 'function') {
    throw new InvalidArgumentError('relay needs a broker');
  }
  const maxInFlight = options.maxInFlight ?? 200;
  const batchSize = options.batchSize ?? 500;
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 10_000) {
    throw new InvalidArgumentError('maxInFlight must be an integer from 1 to 10000');
  }
  for (const [name, fn] of [
    ['topicOf', options.topicOf],
    ['priorityOf', options.priorityOf],
  ] as const) {
    if (fn !== undefined && typeof fn !== 'function') {
      throw new InvalidArgumentError(`${name} must be a function of the event`);
    }
  }
  const unpublishable = options.unpublishable ?? 'park';
  if (unpublishable !== 'park' && unpublishable !== 'stop') {
    throw new InvalidArgumentError("unpublishable must be 'park' or 'stop'");
  }
  const policy = resolveRetryPolicy({
    attempts: 1,
    backoff: { initialMs: 100, factor: 2, maxMs: 30_000, ...options.backoff },
  });
  const logger: BrokerLogger = options.logger ?? silentLogger;
  const topicOf = options.topicOf ?? ((event: RecordedEvent) => event.type);
  const { priorityOf } = options;
  const types = options.filter?.types;
  const streamTypes = options.filter?.streamTypes;
  // PGlite has one session: a read outside the checkpoint's open transaction would wait for it.
  const readAhead = store.database?.kind !== 'pglite' && maxInFlight > 1;
  const recentLimit = Math.max(10_000, 4 * (maxInFlight + batchSize));

  const stop = new AbortController();

  let published = 0;
  let publishFailures = 0;
  let lastPublishError: ErrorSummary | undefined;
  // Publishes handed to the broker and not settled yet.
  const sending = new Set<Promise<void>>();
  // Ids of events the broker confirmed lately: a batch retried after a rollback skips them.
  const confirmed = new Set<string>();
  // Parked events being retried by an operator: published on their own, outside the pipeline.
  const direct = new Set<string>();

  // The pipeline: events read from the log ahead of the subscription, in log order — first those
  // whose publish has started (`ahead`), then those waiting for room in the window (`queued`) —
  // published before the subscription's handler asks, so a batch's confirms arrive together.
  // The relay does the reading and hands the subscription its pages from here (readAheadPage),
  // so each event is read from the log once. Restarted (a new generation) after any failure, so
  // that nothing of a stream is sent after an event of it that failed.
  let generation = 0;
  let ahead = new Map<string, Pending>();
  let queued: RecordedEvent[] = [];
  let tails = new Map<string, Promise<void>>();
  // The checkpoint of the last event read into the pipeline: the next read starts after it.
  let frontier: Checkpoint | undefined;
  let reading: Promise<void> | undefined;
  // The checkpoint of the event the handler took last. What the pipeline holds comes right after
  // it in the log, in order: the subscription's next page, already read (see readAheadPage).
  let handedOver: Checkpoint | undefined;

  function remember(id: string): void {
    confirmed.add(id);
    if (confirmed.size > recentLimit) {
      for (const old of confirmed) {
        confirmed.delete(old);
        if (confirmed.size <= recentLimit * 0.9) break;
      }
    }
  }

  /** One broker call for one event. */
  function send(event: RecordedEvent, key = streamKey(event)): Promise<void> {
    let publishOptions: PublishOptions;
    try {
      const priority = priorityOf?.(event);
      publishOptions = {
        topic: topicOf(event),
        orderingKey: key,
        ...(priority ? { priority } : {}),
      };
    } catch (error) {
      if (typeof error === 'object' && error !== null) fromMapping.add(error);
      return Promise.reject(error);
    }
    let call: Promise<void>;
    try {
      call = detached(() => broker.publish(toEnvelope(event), publishOptions));
    } catch (error) {
      call = Promise.reject(error);
    }
    const result = call.then(() => {
      published += 1;
      remember(event.id);
      // Keep the window full while the subscription commits and reads its next page.
      topUpSoon();
    });
    sending.add(result);
    const settle = () => void sending.delete(result);
    result.then(settle, settle);
    return result;
  }

  function publish(event: RecordedEvent, key: string, gen: number): Promise<void> {
    // Nothing new goes out once stopping; what was sent still counts when it is confirmed.
    if (gen !== generation || stop.signal.aborted) return Promise.reject(superseded);
    if (confirmed.has(event.id)) return Promise.resolve();
    return send(event, key);
  }

  /** Queue the event's publish behind its stream's previous one. Call in log order. */
  function schedule(event: RecordedEvent): void {
    const gen = generation;
    const key = streamKey(event);
    const previous = tails.get(key);
    const done = previous
      ? previous.then(
          () => publish(event, key, gen),
          () => Promise.reject(superseded),
        )
      : publish(event, key, gen);
    // Awaited by the handler when it reaches the event; a generation it never reaches is dropped.
    done.catch(() => {});
    tails.set(key, done);
    const forget = () => {
      if (tails.get(key) === done) tails.delete(key);
    };
    done.then(forget, forget);
    ahead.set(event.id, { event, done });
  }

  /** Room in the window: one place is the event the handler holds, already out of `ahead`. */
  const room = () => maxInFlight - 1 - ahead.size;

  /** Start the publishes of queued events while the window has room. */
  function fill(): void {
    let taken = 0;
    while (taken < queued.length && room() > 0) schedule(queued[taken++]!);
    if (taken > 0) queued = queued.slice(taken);
  }

  /** Take a page read from the log after `frontier` into the pipeline. */
  function take(events: readonly RecordedEvent[]): void {
    for (const event of events) {
      // Read in order after the frontier; anything at or before it is in the pipeline already.
      if (frontier !== undefined && event.checkpoint <= frontier) continue;
      queued.push(event);
      frontier = event.checkpoint;
    }
    fill();
  }

  /** Drop what is queued, and wait until everything sent is known confirmed or failed. */
  async function restart(): Promise<void> {
    generation += 1;
    ahead = new Map();
    queued = [];
    tails = new Map();
    frontier = undefined;
    handedOver = undefined;
    while (sending.size > 0) await Promise.allSettled([...sending]);
  }

  /** A page of the log after `after`, with the subscription's filter. */
  const readLog = (after: Checkpoint, limit: number) =>
    detached(() =>
      store.readAll({
        after,
        limit,
        ...(types ? { types } : {}),
        ...(streamTypes ? { streamTypes } : {}),
      }),
    );

  async function topUp(gen: number): Promise<void> {
    try {
      while (
        gen === generation &&
        !stop.signal.aborted &&
        frontier !== undefined &&
        queued.length === 0 &&
        room() > 0
      ) {
        // A subscription's page at a time: what the window has no room for waits in `queued`.
        const page = await readLog(frontier, batchSize);
        if (gen !== generation) return;
        take(page.events);
        if (page.events.length === 0 || page.caughtUp) return;
      }
    } catch (error) {
      // Reading ahead only saves time: readAheadPage reads whatever the subscription asks for next.
      logger.warn(errorFields(error), 'relay could not read ahead');
    }
  }

  /** Keep the window full: from what was read, or by reading on once half of it is free. */
  function topUpSoon(): void {
    if (!readAhead || frontier === undefined || stop.signal.aborted) return;
    if (queued.length > 0) {
      fill();
      return;
    }
    if (reading !== undefined || ahead.size > maxInFlight / 2) return;
    reading = topUp(generation).finally(() => {
      reading = undefined;
    });
  }

  /**
   * The publish of `event`, started now unless it was read ahead. (Wrapped: an async function
   * returning the promise itself would adopt it, and its rejection would escape the caller's try.)
   */
  async function claim(event: RecordedEvent): Promise<Pending> {
    let pending = ahead.get(event.id);
    if (!pending && ahead.size === 0 && queued[0]?.id === event.id) {
      fill();
      pending = ahead.get(event.id);
    }
    if (!pending || ahead.keys().next().value !== event.id) {
      if (stop.signal.aborted) {
        // Stopping, and the subscription goes one event at a time: what the broker confirmed is
        // still checkpointed, up to the first event that was not; nothing new is sent.
        if (confirmed.has(event.id)) return { event, done: Promise.resolve() };
        throw new RelayStoppedError('relay stopped');
      }
      if (
        ahead.size === 0 &&
        queued.length === 0 &&
        frontier !== undefined &&
        event.checkpoint > frontier
      ) {
        // Nothing read ahead and this is the next event: the subscription reads the log itself
        // (PGlite, one session: no read ahead). Go on from it.
        schedule(event);
      } else {
        // Not next in line: the first event, the first after a failure, or a batch handed over
        // again after a rollback. Start over from it.
        await restart();
        schedule(event);
      }
      frontier = event.checkpoint;
      pending = ahead.get(event.id)!;
    }
    ahead.delete(event.id);
    handedOver = event.checkpoint;
    topUpSoon();
    return pending;
  }

  /**
   * The subscription's pages, read by the relay, so each event is read from the log once. When
   * the subscription asks from the event the handler took last, what the pipeline holds behind it
   * is the next part of the log (read in order, after it, with the same filter). Otherwise (the
   * first page, a page after a failure or a restart, or a read ahead that fell behind) the relay
   * reads the page from the log here and takes its events into the pipeline.
   */
  async function readAheadPage(
    after: Checkpoint,
    limit: number,
  ): Promise<ReadAllResult | undefined> {
    if (!readAhead) return undefined;
    // A read in flight may bring the page asked for.
    while (reading !== undefined) await reading;
    if (after === handedOver && ahead.size + queued.length > 0) {
      const events: RecordedEvent[] = [];
      for (const { event } of ahead.values()) {
        if (events.length === limit) break;
        events.push(event);
      }
      for (const event of queued) {
        if (events.length === limit) break;
        events.push(event);
      }
      return { events, checkpoint: events[events.length - 1]!.checkpoint, caughtUp: false };
    }
    // Not what the pipeline holds: drop it (nothing when all was handed over) and read from here.
    if (after !== handedOver || frontier !== after) await restart();
    const gen = generation;
    const read = readLog(after, limit);
    reading = read.then(
      () => undefined,
      () => undefined,
    );
    try {
      const page = await read;
      if (gen === generation && !stop.signal.aborted) {
        handedOver = after;
        frontier = after;
        take(page.events);
      }
      return page;
    } finally {
      reading = undefined;
    }
  }

  async function handle(event: RecordedEvent): Promise<void> {
    if (direct.has(event.id)) {
      await send(event);
      return;
    }
    for (let attempt = 1; ; ) {
      // While stopping, events already sent are still awaited, so the subscription checkpoints
      // them with the batch in hand instead of leaving them to be published again.
      const { done } = await claim(event);
      try {
        await done;
        return;
      } catch (error) {
        if (stop.signal.aborted) throw new RelayStoppedError('relay stopped');
        await restart();
        if (error === superseded) continue;
        publishFailures += 1;
        lastPublishError = summarize(error);
        if (isUnpublishable(error)) {
          logger.warn(
            { ...errorFields(error), eventId: event.id, eventType: event.type },
            unpublishable === 'park'
              ? 'relay cannot publish an event; parking it'
              : 'relay cannot publish an event; stopping',
          );
          throw error;
        }
        const delayMs = backoffDelay(policy, attempt);
        logger.warn({ ...errorFields(error), attempt, delayMs }, 'relay publish failed; retrying');
        attempt += 1;
        await sleep(delayMs, stop.signal);
      }
    }
  }

  const subscription = store.subscribe({
    name: options.subscriptionName,
    ...(options.from !== undefined ? { from: options.from } : {}),
    ...(options.filter !== undefined ? { filter: options.filter } : {}),
    batchSize,
    ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
    ...(options.takeoverIntervalMs !== undefined
      ? { takeoverIntervalMs: options.takeoverIntervalMs }
      : {}),
    handler: (event) => handle(event),
    readAhead: readAheadPage,
    // Failed publishes are retried inside the handler; only unpublishable events come out, and
    // the one retry also lets a stop end the subscription instead of parking the event in hand.
    onError: {
      retries: 1,
      backoff: { initialMs: 100, factor: 1, maxMs: 100 },
      exhausted: unpublishable,
    },
  });

  let stopping: Promise<void> | undefined;
  const instance: Relay = {
    name: subscription.name,
    get state() {
      return subscription.state;
    },
    async status() {
      const status = await subscription.status();
      return {
        ...status,
        published,
        inFlight: sending.size,
        publishFailures,
        ...(lastPublishError ? { lastPublishError } : {}),
      };
    },
    waitFor: (checkpoint, waitOptions) =>
      checkpoint === null ? Promise.resolve() : subscription.waitFor(checkpoint, waitOptions),
    parked: () => subscription.parked(),
    async retryParked(id) {
      const entry = (await subscription.parked()).find((p) => p.id === id);
      if (!entry) {
        throw new InvalidArgumentError(`no parked event ${id} in relay ${subscription.name}`);
      }
      direct.add(entry.eventId);
      try {
        await subscription.retryParked(id);
      } finally {
        direct.delete(entry.eventId);
      }
    },
    skipParked: (id, resolution) => subscription.skipParked(id, resolution),
    stop() {
      stopping ??= (async () => {
        const subscriptionStopped = subscription.stop();
        stop.abort();
        await subscriptionStopped;
        await restart();
      })();
      return stopping;
    },
  };
  options.signal?.addEventListener('abort', () => void instance.stop(), { once: true });
  if (options.signal?.aborted) void instance.stop();
  return instance;
}
