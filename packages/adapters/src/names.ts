import { InvalidArgumentError } from '@evident/envelope';

const queuePattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/;
const namespacePattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$/;

/**
 * Check a subscription queue name: 1-48 letters, digits, `_` or `-`, starting with a letter or
 * digit — a name every broker accepts once prefixed and suffixed (SQS allows 80 characters, no dots).
 *
 * @throws InvalidArgumentError
 */
export function assertQueueName(queue: unknown): string {
  if (typeof queue !== 'string' || !queuePattern.test(queue)) {
    throw new InvalidArgumentError(
      `queue must be 1-48 letters, digits, _ or -, starting with a letter or digit (${queuePattern})`,
    );
  }
  return queue;
}

/**
 * Check a broker namespace (prefix of every exchange, topic and queue it declares): 1-20 letters,
 * digits, `_` or `-`.
 *
 * @throws InvalidArgumentError
 */
export function assertNamespace(namespace: unknown): string {
  if (typeof namespace !== 'string' || !namespacePattern.test(namespace)) {
    throw new InvalidArgumentError(
      `namespace must be 1-20 letters, digits, _ or -, starting with a letter or digit (${namespacePattern})`,
    );
  }
  return namespace;
}
