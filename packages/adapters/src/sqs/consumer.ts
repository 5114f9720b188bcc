import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type Envelope, InvalidArgumentError } from '@evident/envelope';
import type { MessageContext, MessageHandler, Subscription } from '../broker.js';
import { BrokerError } from '../errors.js';
import { Batcher } from '../internal/batcher.js';
import { runDelivery } from '../internal/delivery.js';
import { InFlight } from '../internal/inFlight.js';
import { KeyedLanes } from '../internal/keyedLanes.js';
import { deadLetterHeaders, wire } from '../internal/wire.js';
import { type BrokerLogger, errorFields } from '../logger.js';
import type { RetryPolicy } from '../retryPolicy.js';

export interface SqsConsumerOptions {
  readonly sqs: SQSClient;
  readonly queue: string;
  readonly queueUrl: string;
  readonly deadUrl: string;
  readonly fifo: boolean;
  readonly handler: MessageHandler<Envelope>;
  readonly policy: RetryPolicy;
  readonly prefetch: number;
  readonly visibilityTimeoutSeconds: number;
  readonly waitTimeSeconds: number;
  readonly logger: BrokerLogger;
  readonly onClosed: () => void;
}

/** SQS's longest visibility timeout: 12 hours. */
const maxVisibility = 43_200;

/** Replace characters SQS refuses in attribute values (controls, lone surrogates) with '?'. */
function sqsSafe(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    const ok =
      c === 0x09 ||
      c === 0x0a ||
      c === 0x0d ||
      (c >= 0x20 && c <= 0xd7ff) ||
      (c >= 0xe000 && c <= 0xfffd) ||
      c >= 0x10000;
    out += ok ? ch : '?';
  }
  return out;
}

/** String message attributes, dropping empty values (SQS refuses them). */
export function stringAttributes(
  values: Readonly<Record<string, string | undefined>>,
): Record<string, MessageAttributeValue> {
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === '') continue;
    out[name] = { DataType: 'String', StringValue: sqsSafe(value) };
  }
  return out;
}

interface Delivery {
  readonly abort: AbortController;
  readonly receipt: string;
}

/**
 * One subscription's consumer: long-polls its queue, runs handlers up to `prefetch` at once (in
 * order per FIFO message group), keeps each message invisible while its handler works, deletes on
 * success, delays retries by changing the visibility timeout, and moves a message that failed its
 * last attempt to the dead-letter queue with the error attached.
 */
export class SqsConsumer implements Subscription {
  readonly queue: string;
  readonly #o: SqsConsumerOptions;
  readonly #inFlight = new InFlight();
  readonly #lanes = new KeyedLanes();
  readonly #deliveries = new Set<Delivery>();
  readonly #deletes: Batcher<string>;
  #stopping = false;
  #polling: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: SqsConsumerOptions) {
    this.#o = options;
    this.queue = options.queue;
    this.#deletes = new Batcher<string>({
      maxItems: 10,
      concurrency: 4,
      send: async (receipts) => {
        const out = await options.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: receipts.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })),
          }),
        );
        const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
        return receipts.map((_, i) => {
          const f = failed.get(String(i));
          return f
            ? { ok: false, error: new Error(`DeleteMessage failed: ${f.Code}`) }
            : { ok: true };
        });
      },
    });
  }

  start(): void {
    this.#polling = this.#poll();
  }

  async #poll(): Promise<void> {
    const o = this.#o;
    let delay = 100;
    while (!this.#stopping) {
      await this.#inFlight.belowLimit(o.prefetch);
      if (this.#stopping) break;
      let messages: Message[];
      try {
        const out = await o.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: o.queueUrl,
            MaxNumberOfMessages: Math.min(10, o.prefetch - this.#inFlight.size),
            WaitTimeSeconds: o.waitTimeSeconds,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'MessageGroupId'],
          }),
        );
        messages = out.Messages ?? [];
        delay = 100;
      } catch (error) {
        o.logger.warn({ queue: o.queue, ...errorFields(error) }, 'SQS receive failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(5000, delay * 2);
        continue;
      }
      if (this.#stopping) {
        // Received while closing: hand them straight back instead of stranding them.
        await this.#release(messages.map((m) => m.ReceiptHandle!));
        break;
      }
      for (const message of messages) this.#dispatch(message);
    }
  }

  #dispatch(message: Message): void {
    const delivery: Delivery = { abort: new AbortController(), receipt: message.ReceiptHandle! };
    this.#deliveries.add(delivery);
    const key = this.#o.fifo ? message.Attributes?.MessageGroupId : undefined;
    void this.#inFlight.track(
      this.#lanes
        .run(key, () => this.#handle(message, delivery))
        .catch((error: unknown) => {
          this.#o.logger.warn(
            {
              queue: this.#o.queue,
              ...errorFields(error),
            },
            'SQS message could not be settled; it will be received again',
          );
        })
        .finally(() => this.#deliveries.delete(delivery)),
    );
  }

  #changeVisibility(receipt: string, seconds: number): Promise<unknown> {
    return this.#o.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.#o.queueUrl,
        ReceiptHandle: receipt,
        VisibilityTimeout: seconds,
      }),
    );
  }

  async #handle(message: Message, delivery: Delivery): Promise<void> {
    const o = this.#o;
    const receipt = delivery.receipt;
    const attempt = Math.max(1, Number(message.Attributes?.ApproximateReceiveCount ?? 1) || 1);
    const topic = message.MessageAttributes?.[wire.topic]?.StringValue ?? '';
    const vt = o.visibilityTimeoutSeconds;
    // Heartbeat: push the visibility deadline out while the handler works, so no other consumer
    // receives the message in parallel however long the handler takes.
    const heartbeat = setInterval(
      () => {
        this.#changeVisibility(receipt, vt).catch((error: unknown) =>
          o.logger.warn(
            {
              queue: o.queue,
              ...errorFields(error),
            },
            'SQS visibility heartbeat failed',
          ),
        );
      },
      (vt * 1000) / 2,
    );
    // Once close() has released the message, extending it again would hide it from the next consumer.
    delivery.abort.signal.addEventListener('abort', () => clearInterval(heartbeat), { once: true });
    const context: MessageContext = {
      attempt,
      messageId: message.MessageId ?? receipt,
      topic,
      queue: o.queue,
      signal: delivery.abort.signal,
      extendVisibility: async (seconds: number) => {
        if (!Number.isInteger(seconds) || seconds < 0 || seconds > maxVisibility) {
          throw new InvalidArgumentError(`seconds must be an integer from 0 to ${maxVisibility}`);
        }
        await this.#changeVisibility(receipt, seconds);
      },
    };
    let outcome: Awaited<ReturnType<typeof runDelivery>>;
    try {
      outcome = await runDelivery(message.Body ?? '', context, o.policy, o.handler);
    } finally {
      clearInterval(heartbeat);
    }
    // close() gave up on this handler and already released the message.
    if (delivery.abort.signal.aborted) return;
    if (outcome.kind === 'ack') {
      await this.#deletes.add(receipt);
    } else if (outcome.kind === 'retry') {
      await this.#changeVisibility(
        receipt,
        Math.min(maxVisibility, Math.ceil(outcome.delayMs / 1000)),
      );
    } else {
      const group = message.Attributes?.MessageGroupId;
      await o.sqs.send(
        new SendMessageCommand({
          QueueUrl: o.deadUrl,
          MessageBody: message.Body ?? '',
          MessageAttributes: stringAttributes({
            [wire.topic]: topic,
            ...deadLetterHeaders(outcome.reason, outcome.error, attempt),
          }),
          ...(o.fifo
            ? {
                MessageGroupId: group ?? message.MessageId,
                MessageDeduplicationId: message.MessageId,
              }
            : {}),
        }),
      );
      // Delete only after the dead letter is stored: a crash in between leaves a duplicate.
      await this.#deletes.add(receipt);
    }
  }

  async #release(receipts: readonly string[]): Promise<void> {
    for (let i = 0; i < receipts.length; i += 10) {
      const chunk = receipts.slice(i, i + 10);
      await this.#o.sqs
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.#o.queueUrl,
            Entries: chunk.map((ReceiptHandle, j) => ({
              Id: String(j),
              ReceiptHandle,
              VisibilityTimeout: 0,
            })),
          }),
        )
        .catch((error: unknown) =>
          this.#o.logger.warn(
            {
              queue: this.#o.queue,
              ...errorFields(error),
            },
            'SQS release failed; messages reappear after their visibility timeout',
          ),
        );
    }
  }

  /**
   * Stop receiving (the long poll in progress ends within `waitTimeSeconds`; what it brings is
   * released at once), wait for handlers in flight, and release what they did not finish in time.
   */
  close(options?: { readonly timeoutMs?: number }): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopping = true;
      await this.#polling;
      const drained = await this.#inFlight.drain(options?.timeoutMs ?? 30_000);
      if (!drained) {
        const abandoned = [...this.#deliveries];
        for (const d of abandoned)
          d.abort.abort(new BrokerError('BROKER_CLOSED', 'the subscription closed'));
        await this.#release(abandoned.map((d) => d.receipt));
      }
      await this.#deletes.flush();
      this.#o.onClosed();
    })();
    return this.#closing;
  }
}
