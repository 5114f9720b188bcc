import { deserialize, type Envelope } from '@evident/envelope';
import type { DeadLetter, DeadLetterReason, FailureInfo } from '../deadLetter.js';

/**
 * Names of the headers (RabbitMQ) and message attributes (SQS) the adapters read and write. They
 * are part of the wire format: a consumer of one version must read what a publisher of another wrote.
 */
export const wire = {
  topic: 'evident-topic',
  attempt: 'evident-attempt',
  orderingKey: 'evident-ordering-key',
  delay: 'evident-delay',
  reason: 'evident-dead-letter-reason',
  errorName: 'evident-error-name',
  errorCode: 'evident-error-code',
  errorMessage: 'evident-error-message',
  attempts: 'evident-attempts',
  deadLetteredAt: 'evident-dead-lettered-at',
} as const;

const reasons: readonly DeadLetterReason[] = [
  'handler_failed',
  'malformed_message',
  'delivery_limit',
];

/** Headers that carry a dead letter's reason and error. */
export function deadLetterHeaders(
  reason: DeadLetterReason,
  error: FailureInfo,
  attempts: number,
): Record<string, string> {
  return {
    [wire.reason]: reason,
    [wire.errorName]: error.name,
    ...(error.code === undefined ? {} : { [wire.errorCode]: error.code }),
    [wire.errorMessage]: error.message,
    [wire.attempts]: String(attempts),
    [wire.deadLetteredAt]: new Date().toISOString(),
  };
}

/** Read a dead letter back; messages moved by the broker itself have no error headers. */
export function readDeadLetter(input: {
  readonly queue: string;
  readonly messageId: string;
  readonly body: string;
  readonly headers: (name: string) => string | undefined;
  /** What the broker says when it moved the message itself (redrive, delivery limit). */
  readonly brokerMoved: { readonly attempts: number; readonly error: FailureInfo };
}): DeadLetter {
  const h = input.headers;
  const stated = h(wire.reason) as DeadLetterReason | undefined;
  const reason: DeadLetterReason = stated && reasons.includes(stated) ? stated : 'delivery_limit';
  let envelope: Envelope | undefined;
  try {
    envelope = deserialize(input.body);
  } catch {
    envelope = undefined;
  }
  const code = h(wire.errorCode);
  const error: FailureInfo = stated
    ? {
        name: h(wire.errorName) ?? 'Error',
        ...(code === undefined ? {} : { code }),
        message: h(wire.errorMessage) ?? '',
      }
    : input.brokerMoved.error;
  const attempts = Number(h(wire.attempts));
  const at = h(wire.deadLetteredAt);
  return {
    queue: input.queue,
    messageId: input.messageId,
    topic: h(wire.topic) ?? envelope?.type ?? '',
    reason,
    error,
    attempts: Number.isInteger(attempts) && attempts > 0 ? attempts : input.brokerMoved.attempts,
    ...(at === undefined ? {} : { deadLetteredAt: at }),
    ...(envelope === undefined ? {} : { envelope }),
    body: input.body,
  };
}
