import { randomUUID } from 'node:crypto';
import { deserialize, type Envelope, InvalidArgumentError } from '@evident/envelope';
import type {
  Broker,
  BrokerCapabilities,
  DeadLettersOptions,
  MessageHandler,
  PublishOptions,
  SubscribeOptions,
  Subscription,
} from '../broker.js';
import type { DeadLetter } from '../deadLetter.js';
import { BrokerError } from '../errors.js';
import { runDelivery } from '../internal/delivery.js';
import { InFlight } from '../internal/inFlight.js';
import { prepareOutgoing } from '../internal/outgoing.js';
import { probeReadiness } from '../internal/readiness.js';
import { instrumentBroker } from '../internal/telemetry.js';
import { assertQueueName } from '../names.js';
import { type RetryPolicy, resolveRetryPolicy } from '../retryPolicy.js';
import { assertTopic, assertTopicPattern, matchesTopic } from '../topicPattern.js';

/** Options of {@link createMemoryBroker}. */
export interface MemoryBrokerOptions {
  /**
   * How long a `deduplicationId` (by default the envelope id) suppresses a second publish;
   * 0 turns de-duplication off, e.g. to test how your handlers cope with duplicates.
   * @defaultValue 300000 (5 minutes, as SQS FIFO)
   */
  readonly deduplicationWindowMs?: number;
  /** Largest serialized envelope accepted, in bytes. @defaultValue 1048576 */
  readonly maxMessageBytes?: number;
}

/** The in-memory broker: a {@link Broker} plus a way to inject a malformed message. */
export interface MemoryBroker extends Broker {
  readonly kind: 'memory';
  /**
   * Route a raw body to `topic` without checking it, as a foreign or broken producer could: for
   * testing that malformed messages are dead-lettered.
   *
   * @example
   * ```ts
   * await broker.publishRaw('ClaimSubmitted', '{"not":"an envelope"}');
   * (await broker.deadLetters('claims'))[0]?.reason; // 'malformed_message'
   * ```
   */
  publishRaw(topic: string, body: string): Promise<void>;
}

interface Message {
  readonly id: string;
  readonly seq: number;
  readonly topic: string;
  readonly body: string;
  readonly priority: number;
  readonly orderingKey: string | undefined;
  attempt: number;
  state: 'ready' | 'waiting' | 'inflight';
}

interface Consumer {
  readonly queue: Queue;
  readonly handler: MessageHandler<Envelope>;
  readonly policy: RetryPolicy;
  readonly prefetch: number;
  readonly inFlight: InFlight;
  readonly deliveries: Set<Delivery>;
}

interface Delivery {
  readonly message: Message;
  readonly abort: AbortController;
  abandoned: boolean;
}

interface Queue {
  readonly name: string;
  readonly patterns: Set<string>;
  readonly maxPriority: number | undefined;
  readonly messages: Message[];
  readonly dead: DeadLetter[];
  readonly consumers: Consumer[];
  /** Ordering keys with a message in flight or waiting for its retry. */
  readonly heldKeys: Set<string>;
  nextConsumer: number;
}

const capabilities: BrokerCapabilities = Object.freeze({
  priority: true,
  ordering: true,
  deduplication: true,
  delay: true,
});

function checkPrefetch(value: unknown): number {
  const prefetch = value ?? 10;
  if (
    typeof prefetch !== 'number' ||
    !Number.isInteger(prefetch) ||
    prefetch < 1 ||
    prefetch > 1000
  ) {
    throw new InvalidArgumentError('prefetch must be an integer from 1 to 1000');
  }
  return prefetch;
}

function checkMaxPriority(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 255) {
    throw new InvalidArgumentError('maxPriority must be an integer from 1 to 255');
  }
  return value;
}

/**
 * A broker inside one process with the semantics of the real ones: topic routing and fan-out,
 * retries with backoff, dead letters with the error, priorities, ordering keys, de-duplication
 * within a window, and draining `close()`. Messages are serialized on publish and decoded on
 * delivery, so handlers get their own copy and bad payloads fail as they would on the wire.
 *
 * Timers are read at call time (`setTimeout`, `Date.now`), so fake timers drive retries and delays.
 *
 * @example
 * ```ts
 * import { createMemoryBroker } from '@evident/adapters/memory';
 *
 * const broker = createMemoryBroker();
 * await broker.subscribe({ queue: 'claims', topics: ['ClaimSubmitted'], handler: adjudicate });
 * await broker.publish(submitted);
 * ```
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  return instrumentBroker(uninstrumented(options), 'memory');
}

function uninstrumented(options: MemoryBrokerOptions): MemoryBroker {
  const window = options.deduplicationWindowMs ?? 5 * 60 * 1000;
  if (!Number.isInteger(window) || window < 0) {
    throw new InvalidArgumentError('deduplicationWindowMs must be a non-negative integer');
  }
  const maxBytes = options.maxMessageBytes ?? 1024 * 1024;
  const queues = new Map<string, Queue>();
  const seen = new Map<string, number>(); // deduplication id → expiry, in insertion order
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const subscriptions = new Set<Subscription>();
  let seq = 0;
  let closed = false;

  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  function assertOpen(): void {
    if (closed) throw new BrokerError('BROKER_CLOSED', 'the memory broker is closed');
  }

  function isDuplicate(id: string): boolean {
    if (window === 0) return false;
    const now = Date.now();
    for (const [key, expiry] of seen) {
      if (expiry > now) break;
      seen.delete(key);
    }
    if (seen.has(id)) return true;
    seen.set(id, now + window);
    return false;
  }

  function route(topic: string, body: string, priority: number, orderingKey: string | undefined) {
    for (const queue of queues.values()) {
      if (![...queue.patterns].some((p) => matchesTopic(p, topic))) continue;
      queue.messages.push({
        id: randomUUID(),
        seq: seq++,
        topic,
        body,
        priority,
        orderingKey,
        attempt: 1,
        state: 'ready',
      });
      pump(queue);
    }
  }

  function next(queue: Queue): Message | undefined {
    let best: Message | undefined;
    const keysSeen = new Set<string>();
    for (const m of queue.messages) {
      if (m.orderingKey !== undefined) {
        // Only the oldest message of a key may go, and only when none of the key is out.
        if (keysSeen.has(m.orderingKey)) continue;
        keysSeen.add(m.orderingKey);
        if (queue.heldKeys.has(m.orderingKey)) continue;
      }
      if (m.state !== 'ready') continue;
      if (queue.maxPriority === undefined) return m;
      const rank = (x: Message) => Math.min(x.priority, queue.maxPriority!);
      if (best === undefined || rank(m) > rank(best)) best = m;
    }
    return best;
  }

  function pump(queue: Queue): void {
    for (;;) {
      const ready = queue.consumers.filter((c) => c.inFlight.size < c.prefetch);
      if (ready.length === 0) return;
      const message = next(queue);
      if (message === undefined) return;
      const consumer = ready[queue.nextConsumer++ % ready.length]!;
      message.state = 'inflight';
      if (message.orderingKey !== undefined) queue.heldKeys.add(message.orderingKey);
      const delivery: Delivery = { message, abort: new AbortController(), abandoned: false };
      consumer.deliveries.add(delivery);
      // Pump again once the slot is free: inside deliver() it still counts as taken.
      void consumer.inFlight.track(deliver(consumer, delivery)).finally(() => pump(queue));
    }
  }

  function remove(queue: Queue, message: Message): void {
    const index = queue.messages.indexOf(message);
    if (index >= 0) queue.messages.splice(index, 1);
    if (message.orderingKey !== undefined) queue.heldKeys.delete(message.orderingKey);
  }

  async function deliver(consumer: Consumer, delivery: Delivery): Promise<void> {
    const { queue } = consumer;
    const { message } = delivery;
    // Start the handler on a later microtask, never inside publish().
    await Promise.resolve();
    const outcome = await runDelivery(
      message.body,
      {
        attempt: message.attempt,
        messageId: message.id,
        topic: message.topic,
        queue: queue.name,
        signal: delivery.abort.signal,
      },
      consumer.policy,
      consumer.handler,
    );
    consumer.deliveries.delete(delivery);
    // Given up on by close(): it was already put back for redelivery.
    if (delivery.abandoned) return;
    if (outcome.kind === 'ack') {
      remove(queue, message);
    } else if (outcome.kind === 'retry') {
      message.attempt += 1;
      message.state = 'waiting';
      later(outcome.delayMs, () => {
        message.state = 'ready';
        pump(queue);
      });
    } else {
      remove(queue, message);
      queue.dead.push({
        queue: queue.name,
        messageId: message.id,
        topic: message.topic,
        reason: outcome.reason,
        error: outcome.error,
        attempts: message.attempt,
        deadLetteredAt: new Date().toISOString(),
        ...envelopeOf(message.body),
        body: message.body,
      });
    }
  }

  function envelopeOf(body: string): { envelope?: Envelope } {
    try {
      return { envelope: deserialize(body) };
    } catch {
      return {};
    }
  }

  const broker: MemoryBroker = {
    kind: 'memory',
    capabilities,

    async publish(envelope: Envelope, publishOptions?: PublishOptions): Promise<void> {
      assertOpen();
      const out = prepareOutgoing(envelope, publishOptions, maxBytes);
      if (isDuplicate(out.deduplicationId)) return;
      if (out.delayMs > 0) {
        later(out.delayMs, () => route(out.topic, out.body, out.priority, out.orderingKey));
      } else {
        route(out.topic, out.body, out.priority, out.orderingKey);
      }
    },

    async publishRaw(topic: string, body: string): Promise<void> {
      assertOpen();
      assertTopic(topic);
      if (typeof body !== 'string') throw new InvalidArgumentError('body must be a string');
      route(topic, body, 0, undefined);
    },

    async subscribe<E extends Envelope>(
      subscribeOptions: SubscribeOptions<E>,
    ): Promise<Subscription> {
      assertOpen();
      const name = assertQueueName(subscribeOptions.queue);
      if (!Array.isArray(subscribeOptions.topics) || subscribeOptions.topics.length === 0) {
        throw new InvalidArgumentError('topics must be a non-empty array of topic patterns');
      }
      const patterns = subscribeOptions.topics.map(assertTopicPattern);
      if (typeof subscribeOptions.handler !== 'function') {
        throw new InvalidArgumentError('handler must be a function');
      }
      const policy = resolveRetryPolicy(subscribeOptions.retry);
      const prefetch = checkPrefetch(subscribeOptions.prefetch);
      const maxPriority = checkMaxPriority(subscribeOptions.maxPriority);
      let queue = queues.get(name);
      if (queue === undefined) {
        queue = {
          name,
          patterns: new Set(),
          maxPriority,
          messages: [],
          dead: [],
          consumers: [],
          heldKeys: new Set(),
          nextConsumer: 0,
        };
        queues.set(name, queue);
      } else if (queue.maxPriority !== maxPriority) {
        throw new BrokerError(
          'TOPOLOGY_CONFLICT',
          `queue ${name} exists with maxPriority ${queue.maxPriority ?? 'unset'}; asked for ${maxPriority ?? 'unset'}`,
        );
      }
      for (const p of patterns) queue.patterns.add(p);
      const consumer: Consumer = {
        queue,
        handler: subscribeOptions.handler as MessageHandler<Envelope>,
        policy,
        prefetch,
        inFlight: new InFlight(),
        deliveries: new Set(),
      };
      queue.consumers.push(consumer);
      let closing: Promise<void> | undefined;
      const subscription: Subscription = {
        queue: name,
        close(closeOptions) {
          closing ??= (async () => {
            const q = consumer.queue;
            const index = q.consumers.indexOf(consumer);
            if (index >= 0) q.consumers.splice(index, 1);
            const drained = await consumer.inFlight.drain(closeOptions?.timeoutMs ?? 30_000);
            if (!drained) {
              // As a real broker does when a consumer's channel closes: unacknowledged messages
              // go back to the queue and count as another attempt.
              for (const d of consumer.deliveries) {
                d.abandoned = true;
                d.abort.abort(new BrokerError('BROKER_CLOSED', 'the subscription closed'));
                d.message.attempt += 1;
                d.message.state = 'ready';
                if (d.message.orderingKey !== undefined) q.heldKeys.delete(d.message.orderingKey);
              }
              consumer.deliveries.clear();
            }
            subscriptions.delete(subscription);
            pump(q);
          })();
          return closing;
        },
      };
      subscriptions.add(subscription);
      pump(queue);
      return subscription;
    },

    async deadLetters(
      queue: string,
      readOptions?: DeadLettersOptions,
    ): Promise<readonly DeadLetter[]> {
      const limit = readOptions?.limit ?? 100;
      return (queues.get(assertQueueName(queue))?.dead ?? []).slice(0, limit);
    },

    ready(readyOptions) {
      return probeReadiness(closed, subscriptions.size, readyOptions?.timeout, async () => {});
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.close()));
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
  return broker;
}
