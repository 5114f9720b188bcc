import { InvalidArgumentError } from '@evident/envelope';
import { wire } from '../internal/wire.js';

/**
 * Names of what the SQS adapter creates, for namespace `evident` and subscription queue `claims`:
 * - SNS topic `evident` (`evident.fifo` for a FIFO broker): every message is published there;
 * - SQS queue `evident-claims` (`evident-claims.fifo`): subscribed to the topic with raw message
 *   delivery and a filter policy on the `evident-topic` message attribute;
 * - SQS queue `evident-claims-dead` (`evident-claims-dead.fifo`): its dead-letter queue, the
 *   target of its redrive policy.
 */
export const sqsNames = {
  topic: (ns: string, fifo: boolean) => (fifo ? `${ns}.fifo` : ns),
  work: (ns: string, queue: string, fifo: boolean) => `${ns}-${queue}${fifo ? '.fifo' : ''}`,
  dead: (ns: string, queue: string, fifo: boolean) => `${ns}-${queue}-dead${fifo ? '.fifo' : ''}`,
};

/**
 * The SNS filter policy for a subscription's topic patterns: exact topics, `x.#` as `x` or a
 * prefix `x.`, and `#` alone as no filter (`undefined`). `*` cannot be expressed in SNS filters.
 *
 * @throws InvalidArgumentError for a pattern SNS cannot filter by.
 */
export function filterPolicy(patterns: readonly string[]): string | undefined {
  if (patterns.includes('#')) return undefined;
  const values: (string | { prefix: string })[] = [];
  for (const p of patterns) {
    const words = p.split('.');
    const head = words.slice(0, -1);
    if (words.at(-1) === '#' && head.length > 0 && !head.some((w) => w === '*' || w === '#')) {
      const exact = head.join('.');
      values.push(exact, { prefix: `${exact}.` });
    } else if (words.some((w) => w === '*' || w === '#')) {
      throw new InvalidArgumentError(
        'SQS subscriptions take exact topics, "prefix.#" or "#"; other wildcard patterns need RabbitMQ',
      );
    } else {
      values.push(p);
    }
  }
  return JSON.stringify({ [wire.topic]: values });
}

/** The queue policy that lets the topic (and only it) deliver to the queue. */
export function queuePolicy(queueArn: string, topicArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'evident-sns-delivery',
        Effect: 'Allow',
        Principal: { Service: 'sns.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: queueArn,
        Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
      },
    ],
  });
}
