import type { Envelope } from '@evident/envelope';
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import type { MessageHandler, Subscription } from '../broker.js';
import { BrokerError } from '../errors.js';
import { runDelivery } from '../internal/delivery.js';
import { InFlight } from '../internal/inFlight.js';
import { KeyedLanes } from '../internal/keyedLanes.js';
import { deadLetterHeaders, wire } from '../internal/wire.js';
import { backoffDelays, type RetryPolicy } from '../retryPolicy.js';
import { Acknowledgements } from './acknowledgements.js';
import { type BrokerLogger, errorFields, type ReconnectingConnection } from './connection.js';
import { names, quorum, waitQueueArguments, workQueueArguments } from './topology.js';

export interface ConsumerOptions {
  readonly connection: ReconnectingConnection;
  readonly namespace: string;
  readonly queue: string;
  readonly topics: readonly string[];
  readonly handler: MessageHandler<Envelope>;
  readonly policy: RetryPolicy;
  readonly prefetch: number;
  readonly maxPriority: number | undefined;
  readonly connectTimeoutMs: number;
  readonly logger: BrokerLogger;
  /** Called with every exchange and queue name declared, for `topology()`. */
  readonly declared: (kind: 'exchange' | 'queue', name: string) => void;
  readonly onClosed: () => void;
}

/** Publish on a confirm channel and wait for the broker's ack. */
export function publishConfirmed(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Buffer,
  properties: Options.Publish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      channel.publish(exchange, routingKey, content, properties, (error: unknown) =>
        error ? reject(error) : resolve(),
      );
    } catch (error) {
      reject(error);
    }
  });
}

const isPreconditionFailed = (error: unknown) => (error as { code?: unknown })?.code === 406;

function header(message: ConsumeMessage, name: string): string | undefined {
  const value = message.properties.headers?.[name];
  if (value === undefined || value === null) return undefined;
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/**
 * Declare a subscription's topology on a channel: the events exchange, the work queue and its
 * bindings, one retry queue per backoff delay, and the dead-letter exchange and queue.
 */
export async function declareSubscription(
  channel: ConfirmChannel,
  o: Pick<
    ConsumerOptions,
    'namespace' | 'queue' | 'topics' | 'policy' | 'maxPriority' | 'declared'
  >,
): Promise<void> {
  const ns = o.namespace;
  const work = names.work(ns, o.queue);
  const dead = names.dead(ns, o.queue);
  await channel.assertExchange(names.events(ns), 'topic', { durable: true });
  o.declared('exchange', names.events(ns));
  await channel.assertExchange(dead, 'fanout', { durable: true });
  o.declared('exchange', dead);
  await channel.assertQueue(dead, { durable: true, arguments: quorum });
  o.declared('queue', dead);
  await channel.bindQueue(dead, dead, '');
  await channel.assertQueue(work, {
    durable: true,
    arguments: workQueueArguments(ns, o.queue, o.maxPriority),
  });
  o.declared('queue', work);
  for (const topic of o.topics) await channel.bindQueue(work, names.events(ns), topic);
  for (const ms of backoffDelays(o.policy)) {
    const retry = names.retry(ns, o.queue, ms);
    await channel.assertQueue(retry, {
      durable: true,
      arguments: waitQueueArguments(ms, { exchange: '', routingKey: work }),
    });
    o.declared('queue', retry);
  }
}

/**
 * A delivery in progress. Its abort signal is made only when the handler reads it: most handlers
 * never do, and an AbortController per message was a fiftieth of a relay-and-consumer process's time.
 */
class Delivery {
  #controller: AbortController | undefined;
  #reason: unknown;
  aborted = false;

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.aborted && !this.#controller.signal.aborted) this.#controller.abort(this.#reason);
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * One subscription's consumer: keeps a channel consuming its work queue across reconnects,
 * re-declaring the topology each time, and settles each delivery after its handler: ack, or a
 * confirmed republish to a retry queue or the dead-letter exchange followed by the ack.
 */
export class RabbitConsumer implements Subscription {
  readonly queue: string;
  readonly #o: ConsumerOptions;
  readonly #inFlight = new InFlight();
  readonly #lanes = new KeyedLanes();
  readonly #deliveries = new Set<Delivery>();
  readonly #stop = new AbortController();
  #channel: ConfirmChannel | undefined;
  /** The current channel's acknowledgements (batched; see acknowledgements.ts). */
  #acks: Acknowledgements | undefined;
  #consumerTag: string | undefined;
  #closing: Promise<void> | undefined;
  #running: Promise<void> | undefined;

  constructor(options: ConsumerOptions) {
    this.#o = options;
    this.queue = options.queue;
  }

  /** Start consuming; resolves once the first consumer is registered. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#running = this.#run(resolve, reject);
    });
  }

  async #run(started: () => void, failed: (error: unknown) => void): Promise<void> {
    const o = this.#o;
    let first = true;
    let delay = 100;
    const deadline = Date.now() + o.connectTimeoutMs;
    while (!this.#stop.signal.aborted) {
      let channel: ConfirmChannel;
      try {
        const wait = first ? Math.max(1, deadline - Date.now()) : 2 ** 31 - 1;
        const model = await o.connection.get(wait, this.#stop.signal);
        channel = await model.createConfirmChannel();
      } catch (error) {
        if (first && (this.#stop.signal.aborted || Date.now() >= deadline)) {
          failed(error);
          return;
        }
        if (this.#stop.signal.aborted) return;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(5000, delay * 2);
        continue;
      }
      const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
      const acks = new Acknowledgements(channel);
      channel.on('error', (error: unknown) => {
        if (!isPreconditionFailed(error)) {
          o.logger.warn(
            {
              queue: o.queue,
              ...errorFields(error),
            },
            'RabbitMQ consumer channel error',
          );
        }
      });
      try {
        await declareSubscription(channel, o);
        await channel.prefetch(o.prefetch);
        const { consumerTag } = await channel.consume(
          names.work(o.namespace, o.queue),
          (message) => this.#onMessage(channel, acks, message),
          { noAck: false },
        );
        this.#consumerTag = consumerTag;
      } catch (error) {
        await channel.close().catch(() => {});
        if (isPreconditionFailed(error)) {
          const conflict = new BrokerError(
            'TOPOLOGY_CONFLICT',
            `a queue or exchange of subscription ${o.queue} exists with other settings (e.g. maxPriority changed); delete it or use another queue name`,
            { cause: error },
          );
          if (first) {
            failed(conflict);
            return;
          }
          o.logger.warn({ queue: o.queue }, 'RabbitMQ subscription stopped: topology conflict');
          return;
        }
        if (first && Date.now() >= deadline) {
          failed(error);
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(5000, delay * 2);
        continue;
      }
      this.#channel = channel;
      this.#acks = acks;
      delay = 100;
      if (first) {
        first = false;
        started();
      }
      await closed;
      this.#channel = undefined;
      this.#acks = undefined;
      this.#consumerTag = undefined;
      // Deliveries of the dead channel cannot be acknowledged: the broker redelivers them.
      for (const d of this.#deliveries) {
        d.abort(new BrokerError('CONNECTION_LOST', 'the channel carrying this delivery closed'));
      }
      this.#deliveries.clear();
      if (!this.#stop.signal.aborted) {
        o.logger.warn({ queue: o.queue }, 'RabbitMQ consumer channel closed; resubscribing');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  #onMessage(
    channel: ConfirmChannel,
    acks: Acknowledgements,
    message: ConsumeMessage | null,
  ): void {
    if (message === null) {
      // Cancelled by the server (queue deleted): reopen, which declares the queue again.
      void channel.close().catch(() => {});
      return;
    }
    acks.delivered(message);
    const delivery = new Delivery();
    this.#deliveries.add(delivery);
    const key = header(message, wire.orderingKey);
    void this.#inFlight.track(
      this.#lanes
        .run(key, () => this.#handle(channel, acks, message, delivery))
        .catch((error: unknown) => {
          this.#o.logger.warn(
            {
              queue: this.#o.queue,
              ...errorFields(error),
            },
            'RabbitMQ delivery could not be settled; it will be redelivered',
          );
        })
        .finally(() => this.#deliveries.delete(delivery)),
    );
  }

  async #handle(
    channel: ConfirmChannel,
    acks: Acknowledgements,
    message: ConsumeMessage,
    delivery: Delivery,
  ): Promise<void> {
    const o = this.#o;
    const stated = Number(header(message, wire.attempt) ?? 1);
    const returns = Number(
      header(message, 'x-delivery-count') ?? (message.fields.redelivered ? 1 : 0),
    );
    const attempt = (Number.isInteger(stated) && stated > 0 ? stated : 1) + (returns || 0);
    const topic = header(message, wire.topic) ?? message.fields.routingKey;
    const outcome = await runDelivery(
      message.content.toString('utf8'),
      {
        attempt,
        messageId: message.properties.messageId ?? `${o.queue}:${message.fields.deliveryTag}`,
        topic,
        queue: o.queue,
        get signal() {
          return delivery.signal;
        },
      },
      o.policy,
      o.handler,
    );
    if (delivery.aborted || this.#channel !== channel) return;
    if (outcome.kind === 'ack') {
      acks.ack(message);
      return;
    }
    // Only our own headers travel on: x-death, x-delivery-count and the like are the broker's.
    const headers: Record<string, string | number> = { [wire.topic]: topic };
    const key = header(message, wire.orderingKey);
    if (key !== undefined) headers[wire.orderingKey] = key;
    const properties: Options.Publish = {
      persistent: true,
      contentType: message.properties.contentType ?? 'application/json',
      ...(message.properties.messageId ? { messageId: message.properties.messageId } : {}),
      ...(message.properties.priority ? { priority: message.properties.priority } : {}),
    };
    try {
      if (outcome.kind === 'retry') {
        await publishConfirmed(
          channel,
          '',
          names.retry(o.namespace, o.queue, outcome.delayMs),
          message.content,
          { ...properties, headers: { ...headers, [wire.attempt]: attempt + 1 } },
        );
      } else {
        await publishConfirmed(channel, names.dead(o.namespace, o.queue), '', message.content, {
          ...properties,
          headers: { ...headers, ...deadLetterHeaders(outcome.reason, outcome.error, attempt) },
        });
      }
    } catch (error) {
      // The copy was refused (nack) while the channel lives: requeue the original rather than
      // hold it unacknowledged; it comes back as the next attempt. A closed channel needs nothing.
      if (this.#channel === channel) acks.nack(message);
      throw error;
    }
    // Acknowledge only after the copy is confirmed: a crash in between leaves a duplicate, not a loss.
    if (this.#channel === channel) acks.ack(message);
  }

  close(options?: { readonly timeoutMs?: number }): Promise<void> {
    this.#closing ??= (async () => {
      const channel = this.#channel;
      const tag = this.#consumerTag;
      // Stop deliveries first, keep the channel open so handlers in flight can still settle.
      if (channel && tag) await channel.cancel(tag).catch(() => {});
      const drained = await this.#inFlight.drain(options?.timeoutMs ?? 30_000);
      if (!drained) {
        for (const d of this.#deliveries) {
          d.abort(new BrokerError('BROKER_CLOSED', 'the subscription closed'));
        }
      }
      this.#stop.abort();
      // Acknowledgements still waiting for the end of the turn go out before the channel closes.
      this.#acks?.flush();
      await this.#channel?.close().catch(() => {});
      await this.#running;
      this.#o.onClosed();
    })();
    return this.#closing;
  }
}
