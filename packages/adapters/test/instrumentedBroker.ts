/**
 * A real broker with a hook in front of `publish`, for relay tests that need a publish to fail,
 * hang or be slow, and a record of what was published: which calls ran at once, in which order per
 * ordering key, and how each ended.
 */
import type { Envelope } from '@evident/envelope';
import type { Broker, PublishOptions } from '../src/index.js';

export interface PublishCall {
  readonly id: string;
  readonly key: string | undefined;
  readonly data: unknown;
  readonly outcome: 'confirmed' | 'failed';
}

export interface InstrumentedBroker extends Broker {
  /** Every publish call that has ended, in the order it ended. */
  readonly calls: PublishCall[];
  /** Most publish calls in progress at once so far. */
  readonly maxInFlight: number;
  /** Whether two publishes with the same ordering key were ever in progress at once. */
  readonly keyOverlapped: boolean;
}

/**
 * Wrap `inner`: `before` runs before each publish reaches the broker and may throw (a rejected
 * publish) or wait (a slow or hanging one).
 */
export function instrument(
  inner: Broker,
  before?: (envelope: Envelope, options: PublishOptions | undefined) => Promise<void> | void,
): InstrumentedBroker {
  const calls: PublishCall[] = [];
  const keys = new Set<string>();
  let inFlight = 0;
  let maxInFlight = 0;
  let keyOverlapped = false;
  return {
    kind: inner.kind,
    capabilities: inner.capabilities,
    calls,
    get maxInFlight() {
      return maxInFlight;
    },
    get keyOverlapped() {
      return keyOverlapped;
    },
    async publish(envelope, options) {
      const key = options?.orderingKey;
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      if (key !== undefined) {
        if (keys.has(key)) keyOverlapped = true;
        keys.add(key);
      }
      try {
        await before?.(envelope, options);
        await inner.publish(envelope, options);
        calls.push({ id: envelope.id, key, data: envelope.data, outcome: 'confirmed' });
      } catch (error) {
        calls.push({ id: envelope.id, key, data: envelope.data, outcome: 'failed' });
        throw error;
      } finally {
        inFlight -= 1;
        if (key !== undefined) keys.delete(key);
      }
    },
    subscribe: (options) => inner.subscribe(options),
    deadLetters: (queue, options) => inner.deadLetters(queue, options),
    ready: (options) => inner.ready(options),
    close: () => inner.close(),
  };
}
