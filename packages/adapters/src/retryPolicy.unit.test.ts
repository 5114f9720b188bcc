import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  backoffDelays,
  defaultRetryPolicy,
  resolveRetryPolicy,
} from './retryPolicy.js';

describe('retry policy', () => {
  it('fills in the defaults: 5 attempts from 1 s doubling up to a minute', () => {
    expect(resolveRetryPolicy(undefined)).toEqual(defaultRetryPolicy);
    expect(resolveRetryPolicy({ attempts: 3 })).toEqual({
      attempts: 3,
      backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    });
  });

  it('grows the delay by the factor per attempt and caps it at maxMs', () => {
    const policy = resolveRetryPolicy({
      attempts: 6,
      backoff: { initialMs: 100, factor: 3, maxMs: 2000 },
    });
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(policy, a))).toEqual([
      100, 300, 900, 2000, 2000,
    ]);
    expect(backoffDelays(policy)).toEqual([100, 300, 900, 2000]);
  });

  it.each([
    [{ attempts: 0 }, /retry.attempts must be an integer from 1 to 100; got 0/],
    [{ attempts: 1.5 }, /retry.attempts/],
    [{ backoff: { factor: 0.5 } }, /retry.backoff.factor/],
    [
      { backoff: { initialMs: 5000, maxMs: 1000 } },
      /retry.backoff.maxMs must be an integer from 5000/,
    ],
  ])('refuses %j with a message naming the field', (options, message) => {
    expect(() => resolveRetryPolicy(options)).toThrow(message);
  });
});
