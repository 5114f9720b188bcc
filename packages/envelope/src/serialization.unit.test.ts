import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claimEnvelope } from '../test/claimSchemas.js';
import {
  assertJson,
  defaultSerializationLimits,
  deserialize,
  type Envelope,
  parseJson,
  serialize,
} from './index.js';

const unsafeKeys = new Set(['__proto__', 'prototype', 'constructor']);

/** Keys that the parser refuses on purpose; generated payloads avoid them. */
function hasUnsafeKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(hasUnsafeKey);
  return Object.entries(value).some(([key, child]) => unsafeKeys.has(key) || hasUnsafeKey(child));
}

/** JSON has one zero: `-0` is written as `0`, as `JSON.stringify` does. */
function zeroSigned(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(zeroSigned);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, zeroSigned(v)]));
  }
  return value;
}

const token = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,40}$/);
const json = fc.jsonValue({ maxDepth: 6 }).filter((value) => !hasUnsafeKey(value));

const envelopeArbitrary: fc.Arbitrary<Envelope> = fc.record(
  {
    id: fc.uuid({ version: 7 }),
    type: fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.:-]{0,60}$/),
    schemaVersion: fc.integer({ min: 1, max: 10_000 }),
    occurredAt: fc
      .date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true })
      .map((date) => date.toISOString()),
    correlationId: token,
    causationId: token,
    source: token,
    actor: fc.record({ id: token, role: token }),
    tenantId: token,
    data: json,
    metadata: fc.dictionary(
      fc.string({ maxLength: 20 }).filter((key) => !unsafeKeys.has(key)),
      json,
      { maxKeys: 8 },
    ),
  },
  {
    requiredKeys: [
      'id',
      'type',
      'schemaVersion',
      'occurredAt',
      'correlationId',
      'causationId',
      'source',
      'actor',
      'data',
      'metadata',
    ],
  },
);

describe('serialize and deserialize', () => {
  it('round-trips any valid envelope exactly', () => {
    fc.assert(
      fc.property(envelopeArbitrary, (envelope) => {
        expect(deserialize(serialize(envelope))).toEqual(zeroSigned(envelope));
      }),
      { numRuns: 300 },
    );
  });

  it('writes -0 as 0, the one number JSON cannot tell apart', () => {
    expect(deserialize(serialize(claimEnvelope({ balance: -0 }))).data).toEqual({ balance: 0 });
  });

  it('refuses an envelope larger than maxBytes, counting UTF-8 bytes', () => {
    // 400k characters of three UTF-8 bytes each: under 1 MiB in UTF-16 units, over it in bytes.
    const envelope = claimEnvelope({ note: '€'.repeat(400_000) });
    expect(() => serialize(envelope)).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }),
    );
    expect(() => deserialize(JSON.stringify(envelope))).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }),
    );
    expect(() => serialize(envelope, { maxBytes: 2 * 1024 * 1024 })).not.toThrow();
  });

  it('refuses nesting deeper than maxDepth on both sides', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < defaultSerializationLimits.maxDepth + 1; i++) deep = { next: deep };
    expect(() => serialize(claimEnvelope(deep))).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_TOO_DEEP' }),
    );
    const text = JSON.stringify(claimEnvelope(deep));
    expect(() => deserialize(text)).toThrow(expect.objectContaining({ code: 'PAYLOAD_TOO_DEEP' }));
    expect(deserialize(text, { maxDepth: 100 }).data).toEqual(deep);
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['a function', () => 1],
    ['undefined inside an array', [undefined]],
    ['a bigint', 1n],
  ])('refuses a payload holding %s, which would not round-trip', (_, value) => {
    expect(() => serialize(claimEnvelope({ value }))).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_MALFORMED' }),
    );
  });

  it('names where a payload fails as a path, showing only keys that look like field names', () => {
    const lines = [
      { code: 'D0120', fee: 65 },
      { code: 'D1110', fee: Number.NaN },
    ];
    expect(() => serialize(claimEnvelope({ lines }))).toThrow(
      '/data/lines/1/fee is not a finite number',
    );
    // A map keyed by e-mail addresses: the key may identify a patient, so it is not quoted.
    const byEmail = { 'jane.doe@example.com': { visits: Number.POSITIVE_INFINITY } };
    expect(() => serialize(claimEnvelope(byEmail))).toThrow(
      '/data/*/visits is not a finite number',
    );
    expect(() => assertJson({ at: [0, new Date(0)] })).toThrow(
      '/at/1 is a Date instance; only plain JSON is stored',
    );
    expect(() => assertJson(() => 1)).toThrow('/ is a function, not JSON');
    expect(() => parseJson('{"a": [{"b": 1}, {"__proto__": {}}]}')).toThrow(
      'key "__proto__" at /a/1 is refused',
    );
  });

  it('refuses a cycle as too deep instead of looping', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => assertJson(cyclic)).toThrow(expect.objectContaining({ code: 'PAYLOAD_TOO_DEEP' }));
  });

  it('refuses text that is not JSON without quoting it', () => {
    const attempt = () => parseJson('{"patient": "Jane Roe", oops}');
    expect(attempt).toThrow(expect.objectContaining({ code: 'PAYLOAD_MALFORMED' }));
    expect(attempt).toThrow(/^text is not valid JSON$/);
  });

  it('refuses JSON that is not an envelope with INVALID_ARGUMENT', () => {
    expect(() => deserialize('{"type": "ClaimSubmitted"}')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it.each([
    ['__proto__', '{"__proto__": {"polluted": true}}'],
    ['an escaped __proto__', '{"\\u005f_proto__": {"polluted": true}}'],
    ['constructor.prototype', '{"constructor": {"prototype": {"polluted": true}}}'],
    ['a nested prototype key', '{"a": [{"prototype": 1}]}'],
  ])('refuses %s keys', (_, text) => {
    expect(() => parseJson(text)).toThrow(expect.objectContaining({ code: 'PAYLOAD_UNSAFE_KEY' }));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('accepts a key named constructor that holds a plain value', () => {
    expect(parseJson('{"constructor": "Acme Dental Lab"}')).toEqual({
      constructor: 'Acme Dental Lab',
    });
  });
});
