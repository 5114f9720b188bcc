import { InvalidArgumentError } from '@evident/envelope';

/**
 * What an append expects of its stream:
 * - a number n ≥ 1: the stream is exactly at version n (0 means it does not exist yet);
 * - `'no_stream'`: the stream does not exist;
 * - `'exists'`: the stream exists, at any version;
 * - `'any'`: no expectation.
 */
export type ExpectedVersion = number | 'any' | 'no_stream' | 'exists';

/** The integer the append function takes for each expectation (see sql/0001_init.sql). */
export function expectedVersionCode(expected: unknown): number {
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) {
    return expected;
  }
  switch (expected) {
    case 'any':
      return -1;
    case 'no_stream':
      return -2;
    case 'exists':
      return -3;
  }
  const got =
    typeof expected === 'number' || typeof expected === 'string'
      ? `${JSON.stringify(expected)}`
      : typeof expected;
  throw new InvalidArgumentError(
    `expectedVersion must be a non-negative integer, "any", "no_stream" or "exists"; got ${got}`,
  );
}
