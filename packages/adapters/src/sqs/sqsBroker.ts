import {
  CreateTopicCommand,
  ListSubscriptionsByTopicCommand,
  ListTopicsCommand,
  type MessageAttributeValue,
  PublishBatchCommand,
  type PublishBatchCommandOutput,
  type PublishBatchRequestEntry,
  SetSubscriptionAttributesCommand,
  type SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  type Message,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type Envelope, InvalidArgumentError, silentLogger } from '@evident/envelope';
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
import { Batcher } from '../internal/batcher.js';
import { deliveryLimitFailure } from '../internal/delivery.js';
import { prepareOutgoing } from '../internal/outgoing.js';
import { probeReadiness } from '../internal/readiness.js';
import { instrumentBroker } from '../internal/telemetry.js';
import { readDeadLetter, wire } from '../internal/wire.js';
import type { BrokerLogger } from '../logger.js';
import { assertNamespace, assertQueueName } from '../names.js';
import { resolveRetryPolicy } from '../retryPolicy.js';
import { assertTopicPattern } from '../topicPattern.js';
import { SqsConsumer } from './consumer.js';
import { filterPolicy, queuePolicy, sqsNames } from './topology.js';

/** Options of {@link createSqsBroker}. */
export interface SqsBrokerOptions {
  /** A configured SQS client (region, credentials, endpoint); the broker never closes it. */
  readonly sqs: SQSClient;
  /** A configured SNS client; the broker never closes it. */
  readonly sns: SNSClient;
  /**
   * Name of the SNS topic and prefix of every queue (`<namespace>-<queue>`): 1-20 letters,
   * digits, `_` or `-`.
   * @defaultValue `evident`
   */
  readonly namespace?: string;
  /**
   * Use a FIFO topic and FIFO queues: messages with the same `orderingKey` (message group) are
   * delivered in order, one at a time, and a `deduplicationId` (by default the envelope id) seen
   * in the last 5 minutes is dropped. Costs throughput: 300 publishes/s per group without batching.
   * @defaultValue false
   */
  readonly fifo?: boolean;
  /**
   * Seconds a received message stays invisible; the consumer extends it every half of this while
   * the handler works. @defaultValue 30
   */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Long-poll wait per receive, 1-20 seconds. `close()` waits for the poll in progress, so this
   * bounds how long closing takes. @defaultValue 10
   */
  readonly waitTimeSeconds?: number;
  /**
   * Largest message accepted, body and attributes, in bytes: SNS's limit. Larger envelopes are
   * refused with `PAYLOAD_TOO_LARGE` before anything is sent. @defaultValue 262144
   */
  readonly maxMessageBytes?: number;
  /** Where failed receives, heartbeats and deletes are reported (never payloads). @defaultValue `console` */
  readonly logger?: BrokerLogger;
}

/** What an SQS broker has created, for operators and clean-up. */
export interface SqsTopology {
  readonly topicArn: string | undefined;
  readonly queueUrls: readonly string[];
  readonly subscriptionArns: readonly string[];
}

/** The SQS + SNS {@link Broker}. */
export interface SqsBroker extends Broker {
  readonly kind: 'sqs';
  /** The topic, queues and SNS subscriptions this instance has created or updated so far. */
  topology(): SqsTopology;
}

interface Entry {
  readonly entry: PublishBatchRequestEntry;
  readonly bytes: number;
}

const snsLimit = 262_144;

function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function publishFailure(error: unknown): BrokerError {
  const fault = (error as { $fault?: unknown })?.$fault;
  return fault === 'client'
    ? new BrokerError('PUBLISH_REJECTED', 'SNS refused the publish request', { cause: error })
    : new BrokerError('BROKER_UNAVAILABLE', 'SNS did not accept the publish request', {
        cause: error,
      });
}

/**
 * A broker on SQS with SNS fan-out: every message is published to one SNS topic; each
 * subscription is an SQS queue subscribed to it with raw delivery and a filter policy on the
 * topic attribute, a redrive policy to its dead-letter queue after `retry.attempts` receives, and
 * a long-polling consumer that extends visibility while handlers work and delays retries through
 * the visibility timeout. Publishes made close together go out as PublishBatch requests.
 *
 * No servers to run; the trade-offs against RabbitMQ: no priorities, no delays, and wildcard
 * topics only as `prefix.#` or `#`.
 *
 * @example
 * ```ts
 * import { SNSClient } from '@aws-sdk/client-sns';
 * import { SQSClient } from '@aws-sdk/client-sqs';
 * import { createSqsBroker } from '@evident/adapters/sqs';
 *
 * const broker = createSqsBroker({ sqs: new SQSClient({}), sns: new SNSClient({}), fifo: true });
 * await broker.subscribe({ queue: 'claims', topics: ['ClaimSubmitted'], handler: adjudicate });
 * await broker.publish(submitted, { orderingKey: submitted.data.claimId });
 * ```
 * @throws InvalidArgumentError for a bad option.
 */
export function createSqsBroker(options: SqsBrokerOptions): SqsBroker {
  return instrumentBroker(uninstrumented(options), 'aws_sqs');
}

function uninstrumented(options: SqsBrokerOptions): SqsBroker {
  if (!options?.sqs || !options.sns) {
    throw new InvalidArgumentError('createSqsBroker needs configured sqs and sns clients');
  }
  const { sqs, sns } = options;
  const ns = assertNamespace(options.namespace ?? 'evident');
  const fifo = options.fifo ?? false;
  if (typeof fifo !== 'boolean') throw new InvalidArgumentError('fifo must be a boolean');
  const visibilityTimeoutSeconds = integer(
    'visibilityTimeoutSeconds',
    options.visibilityTimeoutSeconds,
    30,
    2,
    43_200,
  );
  const waitTimeSeconds = integer('waitTimeSeconds', options.waitTimeSeconds, 10, 1, 20);
  const maxBytes = integer('maxMessageBytes', options.maxMessageBytes, snsLimit, 1024, snsLimit);
  const logger: BrokerLogger = options.logger ?? silentLogger;
  const capabilities: BrokerCapabilities = Object.freeze({
    priority: false,
    ordering: fifo,
    deduplication: fifo,
    delay: false,
  });
  const subscriptions = new Set<SqsConsumer>();
  const queueUrls = new Set<string>();
  const subscriptionArns = new Set<string>();
  const attemptsByQueue = new Map<string, number>();
  let topicArn: Promise<string> | undefined;
  let knownTopicArn: string | undefined;
  let closed = false;

  function ensureTopic(): Promise<string> {
    topicArn ??= sns
      .send(
        new CreateTopicCommand({
          Name: sqsNames.topic(ns, fifo),
          ...(fifo
            ? { Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' } }
            : {}),
        }),
      )
      .then((out) => {
        knownTopicArn = out.TopicArn!;
        return out.TopicArn!;
      })
      .catch((error: unknown) => {
        topicArn = undefined;
        throw error;
      });
    return topicArn;
  }

  const publisher = new Batcher<Entry>({
    maxItems: 10,
    maxBytes: snsLimit,
    size: (e) => e.bytes,
    // A FIFO group's messages must reach SNS in order: never two of its batches in flight at once.
    key: (e) => e.entry.MessageGroupId,
    concurrency: 8,
    send: async (entries) => {
      const arn = await ensureTopic();
      let out: PublishBatchCommandOutput;
      try {
        out = await sns.send(
          new PublishBatchCommand({
            TopicArn: arn,
            PublishBatchRequestEntries: entries.map((e, i) => ({ ...e.entry, Id: String(i) })),
          }),
        );
      } catch (error) {
        throw publishFailure(error);
      }
      const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
      return entries.map((_, i) => {
        const f = failed.get(String(i));
        if (!f) return { ok: true };
        const code = f.SenderFault ? 'PUBLISH_REJECTED' : 'BROKER_UNAVAILABLE';
        return {
          ok: false,
          error: new BrokerError(code, `SNS did not accept the message: ${f.Code}`),
        };
      });
    },
  });

  async function queueUrl(name: string, attributes: Record<string, string>): Promise<string> {
    try {
      const out = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      return out.QueueUrl!;
    } catch (error) {
      const n = (error as { name?: string }).name;
      if (n !== 'QueueDoesNotExist' && n !== 'AWS.SimpleQueueService.NonExistentQueue') throw error;
    }
    const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    return out.QueueUrl!;
  }

  async function queueArn(url: string): Promise<string> {
    const out = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    return out.Attributes!.QueueArn!;
  }

  async function subscribeQueue(topic: string, endpoint: string, filter: string | undefined) {
    let token: string | undefined;
    do {
      const page = await sns.send(
        new ListSubscriptionsByTopicCommand({ TopicArn: topic, NextToken: token }),
      );
      const found = page.Subscriptions?.find(
        (s) => s.Endpoint === endpoint && s.Protocol === 'sqs',
      );
      if (found?.SubscriptionArn) {
        // An existing subscription gets this subscribe's filter: the latest topics win.
        const arn = found.SubscriptionArn;
        for (const [AttributeName, AttributeValue] of [
          ['RawMessageDelivery', 'true'],
          ['FilterPolicy', filter ?? '{}'],
        ] as const) {
          await sns.send(
            new SetSubscriptionAttributesCommand({
              SubscriptionArn: arn,
              AttributeName,
              AttributeValue,
            }),
          );
        }
        return arn;
      }
      token = page.NextToken;
    } while (token);
    const out = await sns.send(
      new SubscribeCommand({
        TopicArn: topic,
        Protocol: 'sqs',
        Endpoint: endpoint,
        ReturnSubscriptionArn: true,
        Attributes: { RawMessageDelivery: 'true', ...(filter ? { FilterPolicy: filter } : {}) },
      }),
    );
    return out.SubscriptionArn!;
  }

  function assertOpen(): void {
    if (closed) throw new BrokerError('BROKER_CLOSED', 'the SQS broker is closed');
  }

  return {
    kind: 'sqs',
    capabilities,

    async publish(envelope: Envelope, publishOptions?: PublishOptions): Promise<void> {
      assertOpen();
      if (publishOptions?.delay !== undefined && publishOptions.delay !== 0) {
        throw new BrokerError(
          'UNSUPPORTED_OPTION',
          'the SQS broker cannot delay a message (SNS has no per-message delay); use RabbitMQ or a saga timer',
        );
      }
      const attributeBytes = (topic: string) =>
        wire.topic.length + 'String'.length + Buffer.byteLength(topic);
      const out = prepareOutgoing(
        envelope,
        publishOptions,
        (topic) => maxBytes - attributeBytes(topic),
      );
      const attributes: Record<string, MessageAttributeValue> = {
        [wire.topic]: { DataType: 'String', StringValue: out.topic },
      };
      await publisher.add({
        entry: {
          Id: '',
          Message: out.body,
          MessageAttributes: attributes,
          ...(fifo
            ? {
                MessageGroupId: out.orderingKey ?? out.envelopeId,
                MessageDeduplicationId: out.deduplicationId,
              }
            : {}),
        },
        bytes: Buffer.byteLength(out.body) + attributeBytes(out.topic),
      });
    },

    async subscribe<E extends Envelope>(o: SubscribeOptions<E>): Promise<Subscription> {
      assertOpen();
      const queue = assertQueueName(o.queue);
      if (!Array.isArray(o.topics) || o.topics.length === 0) {
        throw new InvalidArgumentError('topics must be a non-empty array of topic patterns');
      }
      const filter = filterPolicy(o.topics.map(assertTopicPattern));
      if (typeof o.handler !== 'function')
        throw new InvalidArgumentError('handler must be a function');
      const policy = resolveRetryPolicy(o.retry);
      const prefetch = integer('prefetch', o.prefetch, 10, 1, 1000);
      const topic = await ensureTopic();
      const fifoAttributes: Record<string, string> = fifo ? { FifoQueue: 'true' } : {};
      const deadUrl = await queueUrl(sqsNames.dead(ns, queue, fifo), fifoAttributes);
      queueUrls.add(deadUrl);
      const deadArn = await queueArn(deadUrl);
      await sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: deadUrl,
          Attributes: { MessageRetentionPeriod: String(14 * 24 * 60 * 60) },
        }),
      );
      const workUrl = await queueUrl(sqsNames.work(ns, queue, fifo), fifoAttributes);
      queueUrls.add(workUrl);
      const workArn = await queueArn(workUrl);
      // Set on every subscribe, so changed options (attempts, visibility) take effect.
      await sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: workUrl,
          Attributes: {
            VisibilityTimeout: String(visibilityTimeoutSeconds),
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: deadArn,
              maxReceiveCount: policy.attempts,
            }),
            Policy: queuePolicy(workArn, topic),
          },
        }),
      );
      subscriptionArns.add(await subscribeQueue(topic, workArn, filter));
      attemptsByQueue.set(queue, policy.attempts);
      const consumer: SqsConsumer = new SqsConsumer({
        sqs,
        queue,
        queueUrl: workUrl,
        deadUrl,
        fifo,
        handler: o.handler as MessageHandler<Envelope>,
        policy,
        prefetch,
        visibilityTimeoutSeconds,
        waitTimeSeconds,
        logger,
        onClosed: () => subscriptions.delete(consumer),
      });
      subscriptions.add(consumer);
      consumer.start();
      return consumer;
    },

    async deadLetters(
      queue: string,
      readOptions?: DeadLettersOptions,
    ): Promise<readonly DeadLetter[]> {
      assertOpen();
      const name = assertQueueName(queue);
      const limit = integer('limit', readOptions?.limit, 100, 1, 10_000);
      let url: string;
      try {
        url = (await sqs.send(new GetQueueUrlCommand({ QueueName: sqsNames.dead(ns, name, fifo) })))
          .QueueUrl!;
      } catch {
        return [];
      }
      const received: Message[] = [];
      try {
        while (received.length < limit) {
          const out = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: url,
              MaxNumberOfMessages: Math.min(10, limit - received.length),
              WaitTimeSeconds: received.length === 0 ? 1 : 0,
              VisibilityTimeout: 30,
              MessageAttributeNames: ['All'],
              MessageSystemAttributeNames: ['SentTimestamp'],
            }),
          );
          if (!out.Messages?.length) break;
          received.push(...out.Messages);
        }
      } finally {
        // Hand every message back at once: reading dead letters must not hide them.
        for (let i = 0; i < received.length; i += 10) {
          await sqs.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: url,
              Entries: received.slice(i, i + 10).map((m, j) => ({
                Id: String(j),
                ReceiptHandle: m.ReceiptHandle!,
                VisibilityTimeout: 0,
              })),
            }),
          );
        }
      }
      const attempts = attemptsByQueue.get(name) ?? 0;
      return received
        .sort(
          (a, b) =>
            Number(a.Attributes?.SentTimestamp ?? 0) - Number(b.Attributes?.SentTimestamp ?? 0),
        )
        .map((m) =>
          readDeadLetter({
            queue: name,
            messageId: m.MessageId ?? '',
            body: m.Body ?? '',
            headers: (key) => m.MessageAttributes?.[key]?.StringValue,
            brokerMoved: { attempts, error: deliveryLimitFailure(attempts) },
          }),
        );
    },

    topology(): SqsTopology {
      return {
        topicArn: knownTopicArn,
        queueUrls: [...queueUrls],
        subscriptionArns: [...subscriptionArns],
      };
    },

    ready(readyOptions) {
      return probeReadiness(closed, subscriptions.size, readyOptions?.timeout, (abortSignal) =>
        Promise.all([
          sqs.send(new ListQueuesCommand({ QueueNamePrefix: ns, MaxResults: 1 }), { abortSignal }),
          sns.send(new ListTopicsCommand({}), { abortSignal }),
        ]),
      );
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.close()));
      await publisher.flush();
    },
  };
}
