import { isEvidentError } from '@evident/envelope';
import { describe, expect, it } from 'vitest';
import { toMilliseconds } from './duration.js';

describe('durations', () => {
  it('reads milliseconds and numbers with a unit', () => {
    expect(toMilliseconds(1500)).toBe(1500);
    expect(toMilliseconds('500ms')).toBe(500);
    expect(toMilliseconds('30s')).toBe(30_000);
    expect(toMilliseconds('2m')).toBe(120_000);
    expect(toMilliseconds('6h')).toBe(21_600_000);
    expect(toMilliseconds('45d')).toBe(3_888_000_000);
    expect(toMilliseconds('2w')).toBe(1_209_600_000);
    expect(toMilliseconds('1.5s')).toBe(1500);
  });

  it('refuses what is not a duration of at most ten years, naming the field', () => {
    for (const bad of [
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '30',
      '30 s',
      '1y',
      's',
      '',
      '-5s',
      '11000d',
    ]) {
      let error: unknown;
      try {
        toMilliseconds(bad as never, 'retry.initialInterval');
      } catch (e) {
        error = e;
      }
      expect(isEvidentError(error, 'INVALID_ARGUMENT')).toBe(true);
      expect((error as Error).message).toMatch(/^retry\.initialInterval must/);
    }
  });
});
