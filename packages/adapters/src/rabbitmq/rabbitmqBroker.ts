import { randomUUID } from 'node:crypto';
import { type Envelope, InvalidArgumentError, silentLogger } from '@evident/envelope';
import type { ConfirmChannel } from 'amqplib';
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
import { deliveryLimitFailure } from '../internal/delivery.js';
import { prepareOutgoing } from '../internal/outgoing.js';
import { probeReadiness } from '../internal/readiness.js';
import { instrumentBroker } from '../internal/telemetry.js';
import { readDeadLetter, wire } from '../internal/wire.js';
import type { BrokerLogger } from '../logger.js';
import { assertNamespace, assertQueueName } from '../names.js';
import { resolveRetryPolicy } from '../retryPolicy.js';
import { assertTopicPattern } from '../topicPattern.js';
import { ReconnectingConnection } from './connection.js';
import { RabbitConsumer } from './consumer.js';
import { ConfirmPublisher } from './publisher.js';
import { names, waitQueueArguments } from './topology.js';

/** Options of {@link createRabbitMqBroker}. */
export interface RabbitMqBrokerOptions {
  /** AMQP URL, e.g. `amqp://user:password@rabbitmq.internal:5672/vhost`. */
  readonly url: string;
  /**
   * Prefix of every exchange and queue this broker declares (`<namespace>.events`,
   * `<namespace>.<queue>`, …): 1-20 letters, digits, `_` or `-`.
   * @defaultValue `evident`
   */
  readonly namespace?: string;
  /**
   * How long a publish may wait for its confirm, including time spent waiting for a connection
   * during an outage; after it the publish rejects with `PUBLISH_TIMEOUT`.
   * @defaultValue 30000
   */
  readonly publishTimeoutMs?: number;
  /** How long `subscribe` waits for a connection. @defaultValue 30000 */
  readonly connectTimeoutMs?: number;
  /** AMQP heartbeat, so a silently dead connection is noticed. @defaultValue 10 */
  readonly heartbeatSeconds?: number;
  /** Delays between reconnection attempts. @defaultValue `{ initialMs: 100, maxMs: 5000 }` */
  readonly reconnect?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Largest serialized envelope accepted, in bytes. @defaultValue 1048576 */
  readonly maxMessageBytes?: number;
  /** Prefix of the connection names shown by `rabbitmqctl list_connections`. @defaultValue `evident:<namespace>` */
  readonly connectionName?: string;
  /** Where reconnects and unsettled deliveries are reported (never payloads). @defaultValue `console` */
  readonly logger?: BrokerLogger;
}

/** Exchanges and queues a RabbitMQ broker has declared, for operators and clean-up. */
export interface RabbitMqTopology {
  readonly exchanges: readonly string[];
  readonly queues: readonly string[];
}

/** The RabbitMQ {@link Broker}. */
export interface RabbitMqBroker extends Broker {
  readonly kind: 'rabbitmq';
  /** Every exchange and queue this instance has declared so far. */
  topology(): RabbitMqTopology;
}

const capabilities: BrokerCapabilities = Object.freeze({
  priority: true,
  ordering: true,
  deduplication: false,
  delay: true,
});

function positiveInteger(
  name: string,
  value: unknown,
  fallback: number,
  max = 2 ** 31 - 1,
): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
  }
  return v;
}

/**
 * A broker on RabbitMQ: a topic exchange routes each message by topic to the subscriptions'
 * quorum queues; publishes resolve on publisher confirms; consumers acknowledge after their
 * handler, retry through per-delay retry queues and dead-letter with the error in headers.
 * Connections come back by themselves, topology is declared again, and publishes made during an
 * outage wait for it (up to `publishTimeoutMs`).
 *
 * The connection opens on first use; `close()` drains subscriptions and pending confirms.
 *
 * @example
 * ```ts
 * import { createRabbitMqBroker } from '@evident/adapters/rabbitmq';
 *
 * const broker = createRabbitMqBroker({ url: 'amqp://guest:guest@127.0.0.1:5672' });
 * await broker.subscribe({
 *   queue: 'clinical-alerts',
 *   topics: ['ToothacheReported'],
 *   maxPriority: 9,
 *   handler: async (event) => page(event),
 * });
 * await broker.publish(reported, { priority: 9 });
 * ```
 * @throws InvalidArgumentError for a bad option.
 */
export function createRabbitMqBroker(options: RabbitMqBrokerOptions): RabbitMqBroker {
  return instrumentBroker(uninstrumented(options), 'rabbitmq');
}

function uninstrumented(options: RabbitMqBrokerOptions): RabbitMqBroker {
  if (typeof options?.url !== 'string' || !/^amqps?:\/\//.test(options.url)) {
    throw new InvalidArgumentError('url must be an amqp:// or amqps:// URL');
  }
  const ns = assertNamespace(options.namespace ?? 'evident');
  const publishTimeoutMs = positiveInteger('publishTimeoutMs', options.publishTimeoutMs, 30_000);
  const connectTimeoutMs = positiveInteger('connectTimeoutMs', options.connectTimeoutMs, 30_000);
  const heartbeatSeconds = positiveInteger('heartbeatSeconds', options.heartbeatSeconds, 10, 600);
  const maxBytes = positiveInteger(
    'maxMessageBytes',
    options.maxMessageBytes,
    1024 * 1024,
    128 * 1024 * 1024,
  );
  const reconnect = {
    initialMs: positiveInteger('reconnect.initialMs', options.reconnect?.initialMs, 100),
    maxMs: positiveInteger('reconnect.maxMs', options.reconnect?.maxMs, 5000),
  };
  const logger: BrokerLogger = options.logger ?? silentLogger;
  const connectionName = options.connectionName ?? `evident:${ns}`;
  const connection = (role: string) =>
    new ReconnectingConnection({
      url: options.url,
      name: `${connectionName}:${role}`,
      heartbeatSeconds,
      reconnect,
      logger,
    });
  // Publishers and consumers on separate connections: when RabbitMQ throttles publishers
  // (resource alarms), consumers must keep acknowledging.
  const publishing = connection('publish');
  const consuming = connection('consume');
  const exchanges = new Set<string>();
  const queues = new Set<string>();
  const declared = (kind: 'exchange' | 'queue', name: string) =>
    (kind === 'exchange' ? exchanges : queues).add(name);
  const subscriptions = new Set<RabbitConsumer>();
  let closed = false;

  const publisher = new ConfirmPublisher({
    connection: publishing,
    timeoutMs: publishTimeoutMs,
    logger,
    setup: async (channel: ConfirmChannel) => {
      await channel.assertExchange(names.events(ns), 'topic', { durable: true });
      declared('exchange', names.events(ns));
    },
    declareDelay: async (channel: ConfirmChannel, ms: number) => {
      await channel.assertExchange(names.delayExchange(ns), 'headers', { durable: true });
      declared('exchange', names.delayExchange(ns));
      const queue = names.delayQueue(ns, ms);
      await channel.assertQueue(queue, {
        durable: true,
        arguments: waitQueueArguments(ms, { exchange: names.events(ns) }),
      });
      declared('queue', queue);
      // String values: a headers exchange compares types too, and strings encode one way only.
      await channel.bindQueue(queue, names.delayExchange(ns), '', {
        'x-match': 'all',
        [wire.delay]: String(ms),
      });
    },
  });

  function assertOpen(): void {
    if (closed) throw new BrokerError('BROKER_CLOSED', 'the RabbitMQ broker is closed');
  }

  return {
    kind: 'rabbitmq',
    capabilities,

    async publish(envelope: Envelope, publishOptions?: PublishOptions): Promise<void> {
      assertOpen();
      const out = prepareOutgoing(envelope, publishOptions, maxBytes);
      // The routing key is the topic, and stays it through the delay queues and the broker's own
      // dead-lettering; only a retry moves a message under another key, and the consumer that
      // retries it writes the topic into a header then. A header table costs amqplib and the
      // broker on every message (publish and consume through the adapter: 8 µs of Node.js CPU
      // per message with the topic header, measured 2026-11-29), so a message carries one only
      // for what the routing key cannot say.
      let headers: Record<string, string> | undefined;
      if (out.orderingKey !== undefined) headers = { [wire.orderingKey]: out.orderingKey };
      if (out.delayMs > 0) headers = { ...headers, [wire.delay]: String(out.delayMs) };
      await publisher.publish(
        out.delayMs > 0 ? names.delayExchange(ns) : names.events(ns),
        out.topic,
        Buffer.from(out.body, 'utf8'),
        {
          persistent: true,
          contentType: 'application/json',
          messageId: randomUUID(),
          timestamp: Math.floor(Date.now() / 1000),
          ...(headers ? { headers } : {}),
          ...(out.priority > 0 ? { priority: out.priority } : {}),
        },
        out.delayMs,
      );
    },

    async subscribe<E extends Envelope>(o: SubscribeOptions<E>): Promise<Subscription> {
      assertOpen();
      const queue = assertQueueName(o.queue);
      if (!Array.isArray(o.topics) || o.topics.length === 0) {
        throw new InvalidArgumentError('topics must be a non-empty array of topic patterns');
      }
      const topics = o.topics.map(assertTopicPattern);
      if (typeof o.handler !== 'function')
        throw new InvalidArgumentError('handler must be a function');
      const maxPriority =
        o.maxPriority === undefined
          ? undefined
          : positiveInteger('maxPriority', o.maxPriority, 1, 255);
      const consumer: RabbitConsumer = new RabbitConsumer({
        connection: consuming,
        namespace: ns,
        queue,
        topics,
        handler: o.handler as MessageHandler<Envelope>,
        policy: resolveRetryPolicy(o.retry),
        prefetch: positiveInteger('prefetch', o.prefetch, 10, 1000),
        maxPriority,
        connectTimeoutMs,
        logger,
        declared,
        onClosed: () => subscriptions.delete(consumer),
      });
      subscriptions.add(consumer);
      try {
        await consumer.start();
      } catch (error) {
        subscriptions.delete(consumer);
        await consumer.close().catch(() => {});
        throw error;
      }
      return consumer;
    },

    async deadLetters(
      queue: string,
      readOptions?: DeadLettersOptions,
    ): Promise<readonly DeadLetter[]> {
      assertOpen();
      const name = assertQueueName(queue);
      const limit = positiveInteger('limit', readOptions?.limit, 100, 10_000);
      const model = await consuming.get(connectTimeoutMs);
      const channel = await model.createChannel();
      channel.on('error', () => {});
      const letters: DeadLetter[] = [];
      try {
        while (letters.length < limit) {
          const message = await channel.get(names.dead(ns, name), { noAck: false });
          if (message === false) break;
          const h = (key: string) => {
            const v = message.properties.headers?.[key];
            if (v === undefined || v === null) {
              // A message the broker dead-lettered itself kept its routing key: its topic.
              return key === wire.topic && message.fields.routingKey !== ''
                ? message.fields.routingKey
                : undefined;
            }
            return Buffer.isBuffer(v) ? v.toString() : String(v);
          };
          const returns = Number(h('x-delivery-count') ?? 0);
          letters.push(
            readDeadLetter({
              queue: name,
              messageId: message.properties.messageId ?? '',
              body: message.content.toString('utf8'),
              headers: h,
              brokerMoved: { attempts: returns + 1, error: deliveryLimitFailure(returns + 1) },
            }),
          );
        }
      } catch (error) {
        // 404: no subscription ever declared this queue, so it has no dead letters.
        if ((error as { code?: unknown }).code !== 404) throw error;
        return letters;
      } finally {
        // Closing without acknowledging puts every message read back in the queue.
        await channel.close().catch(() => {});
      }
      return letters;
    },

    topology(): RabbitMqTopology {
      return { exchanges: [...exchanges], queues: [...queues] };
    },

    ready(readyOptions) {
      return probeReadiness(closed, subscriptions.size, readyOptions?.timeout, (signal) =>
        Promise.all([
          publishing.get(readyOptions?.timeout ?? 2000, signal),
          // The consuming connection matters once something consumes.
          subscriptions.size > 0 ? consuming.get(readyOptions?.timeout ?? 2000, signal) : null,
        ]),
      );
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.close()));
      await publisher.close();
      await Promise.all([publishing.close(), consuming.close()]);
    },
  };
}
