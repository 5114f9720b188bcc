export type {
  Broker,
  BrokerCapabilities,
  BrokerReadiness,
  DeadLettersOptions,
  MessageContext,
  MessageHandler,
  PublishOptions,
  SubscribeOptions,
  Subscription,
} from './broker.js';
export {
  type DeadLetter,
  type DeadLetterReason,
  describeFailure,
  type FailureInfo,
} from './deadLetter.js';
export { BrokerError, type BrokerErrorCode, isBrokerError } from './errors.js';
export type { BrokerLogger } from './logger.js';
export {
  type BackoffOptions,
  backoffDelay,
  defaultRetryPolicy,
  type RetryOptions,
  type RetryPolicy,
  resolveRetryPolicy,
} from './retryPolicy.js';
export { matchesTopic } from './topicPattern.js';
