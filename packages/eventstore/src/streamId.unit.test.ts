import { isEvidentError } from '@evident/envelope';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareCheckpoints,
  decodeCheckpoint,
  encodeCheckpoint,
  startOfLog,
} from './checkpoint.js';
import { expectedVersionCode } from './expectedVersion.js';
import { assertIdentifier, assertStreamId } from './streamId.js';

describe('stream names', () => {
  it('accepts entity types and ids as integrators write them', () => {
    for (const s of [
      { type: 'claim', id: 'c-123' },
      { type: 'treatment-plan', id: '01a220d0-1bbf-769a-a1c7-96fe2a1256cf' },
      { type: 'saga:patient-onboarding', id: 'practice-9:p-77' },
      { type: 'x', id: 'A' },
    ]) {
      expect(assertStreamId(s)).toBe(s);
    }
  });

  it('refuses anything outside the ASCII allow-list, at any length over the limit', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), (id) => {
        const ok = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/.test(id);
        let accepted = true;
        try {
          assertStreamId({ type: 'claim', id });
        } catch (error) {
          accepted = false;
          expect(isEvidentError(error, 'INVALID_ARGUMENT')).toBe(true);
        }
        expect(accepted).toBe(ok);
      }),
    );
  });

  it('describes a refused value by its length, never by its content', () => {
    expect(() => assertStreamId({ type: 'claim', id: 'Jane Doe, DOB 1980-01-01' })).toThrow(
      /got a string of 24 characters$/,
    );
  });

  it('allows only lower-case identifiers short enough for derived role names', () => {
    expect(assertIdentifier('schema', 'evident_prod')).toBe('evident_prod');
    for (const bad of ['Evident', 'a-b', '1abc', 'x'.repeat(49), '', 'évident']) {
      expect(() => assertIdentifier('schema', bad)).toThrow(/schema must be/);
    }
  });
});

describe('expected versions', () => {
  it('maps the four forms to what the statements take', () => {
    expect(expectedVersionCode(7)).toBe(7);
    expect(expectedVersionCode(0)).toBe(0);
    expect(expectedVersionCode('any')).toBe(-1);
    expect(expectedVersionCode('no_stream')).toBe(-2);
    expect(expectedVersionCode('exists')).toBe(-3);
  });

  it('names the accepted forms and the bad value in its error', () => {
    expect(() => expectedVersionCode(-2)).toThrow(
      'expectedVersion must be a non-negative integer, "any", "no_stream" or "exists"; got -2',
    );
    expect(() => expectedVersionCode(2 ** 60)).toThrow(/non-negative integer/);
  });
});

describe('checkpoints', () => {
  it('compare as strings in (transaction, position) order', () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 62n }), fc.bigInt({ min: 0n, max: 2n ** 62n })),
        fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 62n }), fc.bigInt({ min: 0n, max: 2n ** 62n })),
        ([t1, p1], [t2, p2]) => {
          const a = encodeCheckpoint(t1, p1);
          const b = encodeCheckpoint(t2, p2);
          const expected = t1 === t2 ? Math.sign(Number(p1 - p2)) : Math.sign(Number(t1 - t2));
          expect(Math.sign(compareCheckpoints(a, b))).toBe(expected);
          expect(decodeCheckpoint(a)).toEqual({ transactionId: String(t1), position: String(p1) });
        },
      ),
    );
  });

  it('start before every other checkpoint and refuse foreign strings', () => {
    expect(compareCheckpoints(startOfLog, encodeCheckpoint(1n, 0n))).toBeLessThan(0);
    for (const bad of ['', '12', 'zzzzzzzzzzzzzzzz:0000000000000000', null]) {
      expect(() => decodeCheckpoint(bad)).toThrow(/checkpoint/);
    }
  });
});
