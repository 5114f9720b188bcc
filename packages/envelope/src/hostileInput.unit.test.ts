import safeRegex from 'safe-regex2';
import { afterEach, describe, expect, it } from 'vitest';
import {
  claimEnvelope,
  claimRegistry,
  claimV1,
  claimV1Data,
  claimV2,
  claimV3,
  clerk,
  patternsOf,
} from '../test/claimSchemas.js';
import {
  assertEnvelope,
  assertJson,
  createEnvelope,
  createSchemaRegistry,
  deserialize,
  type Envelope,
  envelopeFieldLimits,
  envelopePatterns,
  isEvidentError,
  parseJson,
  serialize,
} from './index.js';

// The one place a unit test measures time: hostile input must be refused in bounded time, and a
// second is orders of magnitude above what each refusal takes, so a slow machine still passes.
const bound = 1_000;

function rejectsQuickly(attempt: () => unknown, ...codes: string[]): void {
  const started = performance.now();
  let caught: unknown;
  try {
    attempt();
  } catch (error) {
    caught = error;
  }
  const elapsed = performance.now() - started;
  expect(
    isEvidentError(caught, ...codes),
    `expected ${codes.join('|')}, got ${String(caught)}`,
  ).toBe(true);
  expect(elapsed).toBeLessThan(bound);
}

const nothingPolluted = () => {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
};

afterEach(nothingPolluted);

const text = (envelope: Envelope, data: string) =>
  JSON.stringify({ ...envelope, data: '__DATA__' }).replace('"__DATA__"', data);

describe('deep nesting', () => {
  const depth = 100_000;

  it.each([
    ['arrays', '['.repeat(depth) + ']'.repeat(depth)],
    ['objects', '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)],
    ['an envelope payload', text(claimEnvelope(), '['.repeat(depth) + ']'.repeat(depth))],
    ['unbalanced brackets', '['.repeat(depth)],
  ])('refuses JSON text of %s nested 100,000 deep', (_, json) => {
    rejectsQuickly(() => deserialize(json), 'PAYLOAD_TOO_DEEP');
    rejectsQuickly(() => parseJson(json), 'PAYLOAD_TOO_DEEP');
  });

  it('is not fooled by brackets inside strings', () => {
    const json = JSON.stringify({ note: '['.repeat(depth) });
    expect(parseJson(json)).toEqual({ note: '['.repeat(depth) });
  });

  it('refuses an in-memory value nested 100,000 deep everywhere it can enter', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < depth; i++) deep = [deep];
    const envelope = claimEnvelope(deep);
    rejectsQuickly(() => assertJson(deep), 'PAYLOAD_TOO_DEEP');
    rejectsQuickly(() => serialize(envelope), 'PAYLOAD_TOO_DEEP');
    const recursive = createSchemaRegistry().register('Tree', {
      version: 1,
      schema: { type: 'array', items: { anyOf: [{ type: 'string' }, { $ref: '#' }] } },
    });
    const tree = { ...envelope, type: 'Tree' };
    // Without the depth check first, ajv would recurse until the stack overflows.
    rejectsQuickly(() => recursive.validate(tree), 'PAYLOAD_TOO_DEEP');
    rejectsQuickly(() => recursive.upcast(tree), 'PAYLOAD_TOO_DEEP');
    expect(recursive.check(tree)).toMatchObject({
      ok: false,
      issues: [{ keyword: 'PAYLOAD_TOO_DEEP' }],
    });
  });
});

describe('huge values', () => {
  const fifty = 'a'.repeat(50 * 1024 * 1024);

  it('refuses a 50 MB string in JSON text before parsing it', () => {
    rejectsQuickly(() => deserialize(`"${fifty}"`), 'PAYLOAD_TOO_LARGE');
    rejectsQuickly(() => deserialize(text(claimEnvelope(), `"${fifty}"`)), 'PAYLOAD_TOO_LARGE');
  });

  it('refuses a 50 MB string in a payload on serialization', () => {
    rejectsQuickly(() => serialize(claimEnvelope({ note: fifty })), 'PAYLOAD_TOO_LARGE');
  });

  it('refuses a 50 MB string in a schema field by its maxLength', () => {
    const envelope = claimEnvelope(claimV1Data({ patientControlNumber: fifty }));
    const registry = claimRegistry();
    rejectsQuickly(() => registry.validate(envelope), 'SCHEMA_VALIDATION_FAILED');
  });

  it('refuses a 50 MB string in any envelope field by its length, before any pattern', () => {
    const input = { type: 'ClaimSubmitted', data: null, source: 'billing', actor: clerk };
    for (const override of [
      { type: fifty },
      { source: fifty },
      { correlationId: fifty },
      { tenantId: fifty },
      { id: fifty },
      { occurredAt: fifty },
      { actor: { id: fifty, role: 'clerk' } },
    ]) {
      rejectsQuickly(() => createEnvelope({ ...input, ...override }), 'INVALID_ARGUMENT');
    }
  });

  it('refuses a huge array by size as text and by maxItems in memory', () => {
    rejectsQuickly(() => parseJson(`[${'0,'.repeat(5_000_000)}0]`), 'PAYLOAD_TOO_LARGE');
    const lines = Array.from({ length: 200_000 }, () => ({ code: 'D0120', fee: 1 }));
    const envelope = claimEnvelope(claimV1Data({ serviceLines: lines }));
    const registry = claimRegistry();
    rejectsQuickly(() => registry.validate(envelope), 'SCHEMA_VALIDATION_FAILED');
  });
});

/** Inputs shaped to make a backtracking engine retry: long runs that fail at the very end. */
function redosShapes(): string[] {
  const run = 50_000;
  const shapes: string[] = [];
  for (const c of ['a', 'A', 'z', '0', '9', '-', '_', '.', ':', '/', '@', ' ', 'D', 'é']) {
    shapes.push(c.repeat(run) + '!', c.repeat(run) + '\n', `A${c.repeat(run)}!`);
  }
  shapes.push(
    'Aa0'.repeat(run / 3) + '!',
    'a-'.repeat(run / 2) + '!',
    'a.b:'.repeat(run / 4) + ' ',
    `2024-01-01T00:00:00.${'1'.repeat(run)}!`,
    `2024-01-01T00:00:00${'+00:00'.repeat(run / 6)}`,
    `CLM-${'0'.repeat(run)}!`,
    `D${'0'.repeat(run)}!`,
    `${'0'.repeat(8)}-${'0'.repeat(run)}`,
  );
  return shapes;
}

const shippedSchemas = { claimV1, claimV2, claimV3 };
const schemaPatterns = Object.entries(shippedSchemas).flatMap(([name, schema]) =>
  patternsOf(schema).map(({ path, pattern }) => ({ name: `${name}${path}`, path, pattern })),
);

describe('ReDoS-shaped strings', () => {
  const shapes = redosShapes();

  it('ships only patterns that safe-regex2 judges safe', () => {
    for (const pattern of Object.values(envelopePatterns)) expect(safeRegex(pattern)).toBe(true);
    for (const { pattern } of schemaPatterns) expect(safeRegex(pattern)).toBe(true);
  });

  it.each(Object.entries(envelopePatterns))(
    'runs the envelope pattern %s over every shape in bounded time',
    (_, pattern) => {
      const started = performance.now();
      for (const shape of shapes) pattern.test(shape);
      expect(performance.now() - started).toBeLessThan(bound);
    },
  );

  it.each(schemaPatterns)(
    'runs the schema pattern $name over every shape in bounded time',
    ({ pattern }) => {
      const regex = new RegExp(pattern, 'u');
      const started = performance.now();
      for (const shape of shapes) regex.test(shape);
      expect(performance.now() - started).toBeLessThan(bound);
    },
  );

  it('refuses every shape in every envelope field with INVALID_ARGUMENT', () => {
    const valid = claimEnvelope();
    for (const shape of shapes) {
      for (const field of ['id', 'type', 'occurredAt', 'correlationId', 'causationId', 'source']) {
        rejectsQuickly(() => assertEnvelope({ ...valid, [field]: shape }), 'INVALID_ARGUMENT');
      }
      rejectsQuickly(
        () => assertEnvelope({ ...valid, actor: { id: shape, role: shape } }),
        'INVALID_ARGUMENT',
      );
    }
  });

  it('refuses every shape in every patterned claim field with SCHEMA_VALIDATION_FAILED', () => {
    const registry = claimRegistry();
    for (const shape of shapes) {
      for (const data of [
        claimV1Data({ claimId: shape }),
        claimV1Data({ payerId: shape }),
        claimV1Data({ serviceLines: [{ code: shape, fee: 1 }] }),
      ]) {
        rejectsQuickly(() => registry.validate(claimEnvelope(data)), 'SCHEMA_VALIDATION_FAILED');
      }
    }
  });

  it('never runs a slow pattern over long input: maxLength fails first', () => {
    // Quadratic on a run of letters; safe-regex2 allows it, the required maxLength bounds it.
    const registry = createSchemaRegistry().register('NoteAdded', {
      version: 1,
      schema: { type: 'string', maxLength: 64, pattern: '^[a-z]*[a-z]*!$' },
    });
    const envelope = { ...claimEnvelope(), type: 'NoteAdded', data: 'a'.repeat(50_000) };
    rejectsQuickly(() => registry.validate(envelope), 'SCHEMA_VALIDATION_FAILED');
  });

  it('refuses an exponential pattern at registration, so it never meets input', () => {
    rejectsQuickly(
      () =>
        createSchemaRegistry().register('NoteAdded', {
          version: 1,
          schema: { type: 'string', maxLength: 64, pattern: '^(a+)+$' },
        }),
      'SCHEMA_INVALID',
    );
  });

  it('keeps the envelope field limits small enough to bound every check', () => {
    for (const limit of Object.values(envelopeFieldLimits)) expect(limit).toBeLessThanOrEqual(128);
  });
});

describe('prototype pollution', () => {
  it.each([
    ['__proto__', '{"__proto__": {"polluted": true}}'],
    ['__proto__ written with escapes', '{"\\u005F\\u005Fproto\\u005F\\u005F": {"polluted": true}}'],
    ['constructor.prototype', '{"constructor": {"prototype": {"polluted": true}}}'],
    [
      'a deeply nested __proto__',
      `${'{"a":'.repeat(50)}{"__proto__":{"polluted":true}}${'}'.repeat(50)}`,
    ],
    ['__proto__ inside an array', '[{"x": 1}, {"__proto__": {"polluted": true}}]'],
  ])('refuses %s in JSON text', (_, json) => {
    rejectsQuickly(() => parseJson(json), 'PAYLOAD_UNSAFE_KEY');
    rejectsQuickly(() => deserialize(text(claimEnvelope(), json)), 'PAYLOAD_UNSAFE_KEY');
  });

  it('refuses a payload carrying an own __proto__ key in every entry point', () => {
    // JSON.parse makes "__proto__" an own key; merging such an object is how pollution happens.
    const data = JSON.parse('{"claimId": "CLM-0001", "__proto__": {"polluted": true}}');
    const envelope = claimEnvelope(data);
    rejectsQuickly(() => serialize(envelope), 'PAYLOAD_UNSAFE_KEY');
    rejectsQuickly(() => assertJson(data), 'PAYLOAD_UNSAFE_KEY');
    rejectsQuickly(() => claimRegistry().validate(envelope), 'PAYLOAD_UNSAFE_KEY');
    rejectsQuickly(() => claimRegistry().upcast(envelope), 'PAYLOAD_UNSAFE_KEY');
    expect(claimRegistry().check(envelope)).toMatchObject({
      ok: false,
      issues: [{ keyword: 'PAYLOAD_UNSAFE_KEY' }],
    });
  });

  it('refuses constructor.prototype in metadata as well', () => {
    const metadata = JSON.parse('{"constructor": {"prototype": {"polluted": true}}}');
    rejectsQuickly(() => serialize({ ...claimEnvelope(), metadata }), 'PAYLOAD_UNSAFE_KEY');
  });

  it('refuses an upcaster that smuggles __proto__ into its output', () => {
    const registry = createSchemaRegistry()
      .register('ClaimSubmitted', { version: 1, schema: claimV1 })
      .register('ClaimSubmitted', {
        version: 2,
        schema: claimV2,
        upcast: () => JSON.parse('{"__proto__": {"polluted": true}}'),
      });
    rejectsQuickly(() => registry.upcast(claimEnvelope()), 'UPCAST_FAILED');
  });
});
