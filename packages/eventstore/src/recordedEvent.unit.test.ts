import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoFromEpochMs } from './recordedEvent.js';

// Date's range: ±8.64e15 ms around the epoch.
const limit = 8_640_000_000_000_000;

describe('isoFromEpochMs', () => {
  it('writes what toISOString writes, for any instant Date can hold', () => {
    fc.assert(
      fc.property(fc.integer({ min: -limit, max: limit }), (ms) => {
        expect(isoFromEpochMs(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 5000 },
    );
  });

  it('is right across day boundaries, before the epoch and in the forms node-postgres returns', () => {
    const cases = [
      0, -1, 1, 86_399_999, 86_400_000, -86_400_001, 253_402_300_799_999, 253_402_300_800_000,
    ];
    for (const ms of cases) {
      expect(isoFromEpochMs(ms)).toBe(new Date(ms).toISOString());
      expect(isoFromEpochMs(String(ms))).toBe(new Date(ms).toISOString());
      expect(isoFromEpochMs(BigInt(ms))).toBe(new Date(ms).toISOString());
    }
    // Consecutive instants of one day reuse the day's prefix, then a new day replaces it.
    const day = Date.parse('2026-11-28T00:00:00.000Z');
    for (const ms of [day + 5, day + 86_399_999, day + 86_400_000, day - 1]) {
      expect(isoFromEpochMs(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('refuses an instant Date cannot hold, as toISOString does', () => {
    for (const ms of [limit + 1, -limit - 1, limit + 86_400_000, Number.NaN, 'not a number']) {
      expect(() => new Date(Number(ms)).toISOString()).toThrow(RangeError);
      expect(() => isoFromEpochMs(ms)).toThrow(RangeError);
    }
  });
});
