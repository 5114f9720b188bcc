import { deserialize, type Envelope } from '@evident/envelope';
import type { MessageContext, MessageHandler } from '../broker.js';
import { type DeadLetterReason, describeFailure, type FailureInfo } from '../deadLetter.js';
import { backoffDelay, type RetryPolicy } from '../retryPolicy.js';
import { brokerMetrics } from './telemetry.js';

/** What to do with a delivery once its handler has run (or was not run). */
export type Outcome =
  | { readonly kind: 'ack' }
  | { readonly kind: 'retry'; readonly delayMs: number; readonly error: FailureInfo }
  | { readonly kind: 'dead'; readonly reason: DeadLetterReason; readonly error: FailureInfo };

/** The error stored for a message delivered more often than its policy allows. */
export const deliveryLimitFailure = (attempts: number): FailureInfo => ({
  name: 'DeliveryLimitExceeded',
  code: 'DELIVERY_LIMIT',
  message: `delivered more than ${attempts} times without an outcome`,
});

/**
 * The decision every adapter shares: decode the body (malformed → dead letter, the handler never
 * sees it), refuse a message past its attempts (its consumer kept crashing), run the handler, and
 * turn its result into ack, retry after backoff, or dead letter with the error.
 */
export async function runDelivery(
  body: string,
  context: MessageContext,
  policy: RetryPolicy,
  handler: MessageHandler<Envelope>,
): Promise<Outcome> {
  if (context.attempt > policy.attempts) {
    return { kind: 'dead', reason: 'delivery_limit', error: deliveryLimitFailure(policy.attempts) };
  }
  let envelope: Envelope;
  try {
    envelope = deserialize(body);
  } catch (error) {
    return { kind: 'dead', reason: 'malformed_message', error: describeFailure(error) };
  }
  try {
    await handler(envelope, context);
    return { kind: 'ack' };
  } catch (error) {
    const failure = describeFailure(error);
    const attributes = { 'messaging.consumer.group.name': context.queue };
    if (context.attempt < policy.attempts) {
      brokerMetrics().retries.add(1, attributes);
      return { kind: 'retry', delayMs: backoffDelay(policy, context.attempt), error: failure };
    }
    brokerMetrics().deadLetters.add(1, { ...attributes, 'evident.reason': 'handler_failed' });
    return { kind: 'dead', reason: 'handler_failed', error: failure };
  }
}
