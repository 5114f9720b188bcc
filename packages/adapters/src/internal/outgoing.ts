import { type Envelope, InvalidArgumentError, serialize } from '@evident/envelope';
import type { PublishOptions } from '../broker.js';
import { assertTopic } from '../topicPattern.js';

/** A publish call, checked and encoded, ready for any adapter. */
export interface Outgoing {
  readonly envelopeId: string;
  readonly body: string;
  readonly topic: string;
  readonly priority: number;
  readonly delayMs: number;
  readonly deduplicationId: string;
  readonly orderingKey: string | undefined;
}

// SQS's rule for group and de-duplication ids, the strictest of the brokers: printable ASCII.
const keyPattern = /^[\x21-\x7e]{1,128}$/;
const maxDelayMs = 24 * 24 * 60 * 60 * 1000; // under setTimeout's 2^31 ms ceiling

function checkKey(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !keyPattern.test(value)) {
    throw new InvalidArgumentError(
      `${name} must be 1-128 printable ASCII characters without spaces`,
    );
  }
  return value;
}

function checkInteger(name: string, value: unknown, max: number): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from 0 to ${max}`);
  }
  return value;
}

/**
 * Check publish options and serialize the envelope within `maxBytes`.
 *
 * @throws InvalidArgumentError, PayloadError
 */
export function prepareOutgoing(
  envelope: Envelope,
  options: PublishOptions | undefined,
  maxBytes: number | ((topic: string) => number) = 1024 * 1024,
): Outgoing {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidArgumentError('publish options must be an object');
  }
  const topic = assertTopic(options?.topic ?? envelope?.type);
  const limit = typeof maxBytes === 'function' ? maxBytes(topic) : maxBytes;
  const body = serialize(envelope, { maxBytes: limit });
  return {
    envelopeId: envelope.id,
    body,
    topic,
    priority: checkInteger('priority', options?.priority, 255),
    delayMs: checkInteger('delay', options?.delay, maxDelayMs),
    deduplicationId: checkKey('deduplicationId', options?.deduplicationId) ?? envelope.id,
    orderingKey: checkKey('orderingKey', options?.orderingKey),
  };
}
