import type { Envelope } from '@evident/envelope';
import type { DeadLetter } from './deadLetter.js';
import type { RetryOptions } from './retryPolicy.js';

/**
 * How one message is published.
 *
 * Options a broker cannot honour are handled by what is safe: hints (`priority`) and guarantees
 * the broker lacks (`deduplicationId` on RabbitMQ, `orderingKey` on standard SQS) are ignored, and
 * {@link Broker.capabilities} says which apply; `delay` where it is unsupported is refused with
 * `UNSUPPORTED_OPTION`, since delivering early would be wrong.
 */
export interface PublishOptions {
  /**
   * Routing topic: subscriptions whose `topics` match it receive the message. Topics are words
   * separated by dots, e.g. `ClaimSubmitted` or `billing.ClaimSubmitted`.
   * @defaultValue the envelope's `type`
   */
  readonly topic?: string;
  /**
   * Delivery priority, 0 (lowest) to 255; honoured by subscriptions declared with `maxPriority`
   * on brokers with `capabilities.priority`. Values above a queue's `maxPriority` count as it.
   * @defaultValue 0
   */
  readonly priority?: number;
  /** Deliver no earlier than this many milliseconds from now. @defaultValue 0 */
  readonly delay?: number;
  /**
   * Messages with the same id published within the broker's de-duplication window are delivered
   * once (brokers with `capabilities.deduplication`: SQS FIFO, 5 minutes; in-memory, configurable).
   * @defaultValue the envelope's `id`
   */
  readonly deduplicationId?: string;
  /**
   * Messages with the same key are handled one after another in publish order, e.g. the stream id.
   * @defaultValue none: no ordering between messages
   */
  readonly orderingKey?: string;
}

/** What a handler is told about the delivery it is handling. */
export interface MessageContext {
  /**
   * 1 for the first delivery, then 2, 3, … for each retry or redelivery (after a consumer crash,
   * a redelivery counts as an attempt too).
   */
  readonly attempt: number;
  /** The broker's id of this message; the same on every attempt. */
  readonly messageId: string;
  /** The topic the message was published with. */
  readonly topic: string;
  /** The subscription's queue (as given to `subscribe`). */
  readonly queue: string;
  /**
   * Aborted when the delivery can no longer be acknowledged (connection lost: the broker will
   * redeliver) or when `close()` gave up waiting for this handler.
   */
  readonly signal: AbortSignal;
  /**
   * Keep the message invisible to other consumers for `seconds` more, from now. Present only where
   * visibility is leased (SQS); the adapter already extends it on a heartbeat while the handler runs.
   */
  readonly extendVisibility?: (seconds: number) => Promise<void>;
}

/**
 * Handles one message. Resolve to acknowledge it; throw to have it retried with backoff and, after
 * the last attempt, dead-lettered with the error attached.
 *
 * @example
 * ```ts
 * const handler: MessageHandler = async (event, { attempt }) => {
 *   if (event.type === 'ClaimSubmitted') await adjudicate(event.data, { attempt });
 * };
 * ```
 */
export type MessageHandler<E extends Envelope = Envelope> = (
  envelope: E,
  context: MessageContext,
) => Promise<void> | void;

/** A subscription: a durable queue bound to topics, and a handler consuming it. */
export interface SubscribeOptions<E extends Envelope = Envelope> {
  /**
   * Name of the subscription's durable queue: 1-48 letters, digits, `_` or `-`. Two subscriptions
   * with the same queue compete for its messages (work sharing); different queues each get a copy
   * (fan-out). Its dead letters go to a queue of their own (RabbitMQ `<namespace>.<queue>.dead`,
   * SQS `<namespace>-<queue>-dead`), read with {@link Broker.deadLetters}.
   */
  readonly queue: string;
  /**
   * Topics routed to the queue. Exact topics work on every broker; `*` (one word) and `#` (zero or
   * more words) patterns work on RabbitMQ and in memory, and `#` alone (everything) on SQS too.
   */
  readonly topics: readonly string[];
  readonly handler: MessageHandler<E>;
  /** Most messages handled at once. @defaultValue 10 */
  readonly prefetch?: number;
  /** Attempts and backoff before a failing message is dead-lettered. @defaultValue {@link defaultRetryPolicy} */
  readonly retry?: RetryOptions;
  /**
   * Highest message priority this queue orders by (1-255), for urgent events overtaking routine
   * ones. Only on brokers with `capabilities.priority`; elsewhere ignored.
   * @defaultValue none: first in, first out
   */
  readonly maxPriority?: number;
}

/** A running subscription. */
export interface Subscription {
  /** The queue given to `subscribe`. */
  readonly queue: string;
  /**
   * Stop taking new messages and wait for the handlers in flight to finish and be acknowledged,
   * retried or dead-lettered. After `timeoutMs` their signals are aborted and they are left for
   * the broker to redeliver.
   */
  close(options?: { readonly timeoutMs?: number }): Promise<void>;
}

/** What a broker honours; everything else in the interface works everywhere. */
export interface BrokerCapabilities {
  /** `priority` and `maxPriority` reorder deliveries. */
  readonly priority: boolean;
  /** `orderingKey` holds back later messages of a key until earlier ones are done. */
  readonly ordering: boolean;
  /** `deduplicationId` suppresses duplicates within a window. */
  readonly deduplication: boolean;
  /** `delay` is supported. */
  readonly delay: boolean;
}

/** Options of {@link Broker.deadLetters}. */
export interface DeadLettersOptions {
  /** Most dead letters returned. @defaultValue 100 */
  readonly limit?: number;
}

/**
 * A message broker: publish envelopes to topics, consume them from durable queues.
 *
 * Delivery is at least once: a handler may see a message more than once (a redelivery after a
 * crash or a lost acknowledgement, a republish after a lost confirm), so effects are exactly once
 * only where the handler records what it processed in the same transaction as its effect.
 *
 * @example
 * ```ts
 * const broker = createMemoryBroker(); // or createRabbitMqBroker(…), createSqsBroker(…)
 * await broker.subscribe({
 *   queue: 'claims-adjudication',
 *   topics: ['ClaimSubmitted'],
 *   handler: async (event) => adjudicate(event),
 * });
 * await broker.publish(submitted); // resolves once the broker has accepted it
 * ```
 */
export interface Broker {
  /** Which adapter this is: `memory`, `rabbitmq`, `sqs`. */
  readonly kind: string;
  readonly capabilities: BrokerCapabilities;
  /**
   * Publish one envelope. Resolves only once the broker has accepted the message (a RabbitMQ
   * publisher confirm, an SQS/SNS success response); until then nothing is promised.
   *
   * Calls may be made concurrently; each still resolves only when its own message is accepted.
   * Messages to a topic no queue is bound to are dropped by the broker, as in any pub/sub: declare
   * subscriptions before publishing events they must see.
   *
   * @throws PayloadError (`PAYLOAD_TOO_LARGE` and others) before anything is sent.
   * @throws InvalidArgumentError for a malformed envelope or option.
   * @throws BrokerError `PUBLISH_REJECTED`, `PUBLISH_TIMEOUT`, `BROKER_CLOSED`, `UNSUPPORTED_OPTION`.
   */
  publish(envelope: Envelope, options?: PublishOptions): Promise<void>;
  /**
   * Declare the subscription's queues and bindings and start consuming. Resolves once consuming.
   *
   * @throws InvalidArgumentError for a bad queue name, topic pattern or option.
   * @throws BrokerError `TOPOLOGY_CONFLICT`, `BROKER_UNAVAILABLE`, `BROKER_CLOSED`.
   */
  subscribe<E extends Envelope = Envelope>(options: SubscribeOptions<E>): Promise<Subscription>;
  /**
   * Read the dead letters of a subscription's queue without removing them, oldest first.
   */
  deadLetters(queue: string, options?: DeadLettersOptions): Promise<readonly DeadLetter[]>;
  /**
   * Whether the broker can take work now, for a service's readiness endpoint: its server answers
   * within `timeout` (RabbitMQ: the connections are open; SQS/SNS: the endpoint answers a call).
   * Never throws; a closed broker is not ready.
   */
  ready(options?: { readonly timeout?: number }): Promise<BrokerReadiness>;
  /** Close every subscription (draining in-flight handlers), then the connections. */
  close(): Promise<void>;
}

/** What {@link Broker.ready} reports. */
export interface BrokerReadiness {
  readonly ready: boolean;
  readonly checks: {
    /** The server answers; `error` is an error code (`BROKER_UNAVAILABLE`, `BROKER_CLOSED`). */
    readonly connection: { readonly ok: boolean; readonly error?: string };
    /** Subscriptions this broker object is consuming for. */
    readonly subscriptions: number;
  };
}
