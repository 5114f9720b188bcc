import { describe, expect, it } from 'vitest';
import {
  type ClaimV1,
  claimEnvelope,
  claimRegistry,
  claimV1,
  claimV1Data,
  claimV2,
  clerk,
  phiMarker,
} from '../test/claimSchemas.js';
import {
  assertEnvelope,
  assertJson,
  checkCompatibility,
  createEnvelope,
  createSchemaRegistry,
  deserialize,
  isEvidentError,
  parseJson,
  serialize,
} from './index.js';

/** Everything an error would put in a log line: message, stack, and its own fields. */
function everythingSaid(error: unknown): string {
  expect(isEvidentError(error), String(error)).toBe(true);
  const { cause: _cause, ...fields } = error as Error & Record<string, unknown>;
  return `${String(error)}\n${(error as Error).stack}\n${JSON.stringify(fields)}`;
}

function expectSilentAboutMarker(attempt: () => unknown): void {
  let caught: unknown;
  try {
    attempt();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a throw').toBeDefined();
  expect(everythingSaid(caught)).not.toContain(phiMarker);
  expect(everythingSaid(caught)).not.toContain('Jane');
}

// One schema that exercises most ajv keywords, each failing on a payload holding the marker.
const visitSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 12, pattern: '^[A-Z]+$' },
    status: { type: 'string', enum: ['scheduled', 'seen'] },
    kind: { const: 'dental' },
    age: { type: 'integer' },
    notes: { type: 'array', uniqueItems: true, items: { type: 'string' } },
    byName: {
      type: 'object',
      propertyNames: { maxLength: 8, pattern: '^[a-z]+$' },
      additionalProperties: { type: 'integer' },
    },
    referral: { type: 'object', required: ['from'], properties: { from: { type: 'string' } } },
    insurer: {
      type: 'object',
      properties: { plan: { type: 'string' }, memberId: { type: 'string' } },
      dependencies: { plan: ['memberId'] },
    },
    either: { anyOf: [{ type: 'integer' }, { type: 'boolean' }] },
    never: { not: { type: 'string' } },
  },
};

describe('no payload value reaches an error message or issue', () => {
  const registry = createSchemaRegistry().register('VisitRecorded', {
    version: 1,
    schema: visitSchema,
  });
  const visit = (data: unknown) => ({ ...claimEnvelope(), type: 'VisitRecorded', data });

  it.each([
    ['maxLength', { name: phiMarker }],
    ['pattern', { name: 'jane roe' }],
    ['enum', { status: phiMarker }],
    ['const', { kind: phiMarker }],
    ['type', { age: phiMarker }],
    ['uniqueItems', { notes: [phiMarker, phiMarker] }],
    ['propertyNames', { byName: { [phiMarker]: 1 } }],
    ['a map value under a PHI key', { byName: { [phiMarker]: 'x' } }],
    ['additionalProperties', { [phiMarker]: phiMarker }],
    ['required in a nested object', { referral: { [phiMarker]: true } }],
    ['dependencies', { insurer: { plan: phiMarker } }],
    ['anyOf', { either: phiMarker }],
    ['not', { never: phiMarker }],
  ])('on a %s failure', (_, data) => {
    expectSilentAboutMarker(() => registry.validate(visit(data)));
    const result = registry.check(visit(data));
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain(phiMarker);
  });

  it('on a payload that is not plain JSON, under a key that is PHI', () => {
    const data = { byName: { [phiMarker]: Number.NaN, 'Jane Roe': new Date(0) } };
    expectSilentAboutMarker(() => registry.validate(visit(data)));
    expect(JSON.stringify(registry.check(visit(data)))).not.toContain(phiMarker);
    expectSilentAboutMarker(() => serialize(visit(data)));
    expectSilentAboutMarker(() => assertJson({ [phiMarker]: [() => phiMarker] }));
  });

  it('on serialization limits and malformed or unsafe JSON', () => {
    expectSilentAboutMarker(() => serialize(claimEnvelope({ note: phiMarker.repeat(40_000) })));
    expectSilentAboutMarker(() => parseJson(`{"note": "${phiMarker}", }`));
    expectSilentAboutMarker(() => parseJson(`{"${phiMarker}": {"__proto__": {"x": 1}}}`));
    expectSilentAboutMarker(() => parseJson(`${'['.repeat(100)}"${phiMarker}"${']'.repeat(100)}`));
    expectSilentAboutMarker(() => deserialize(`{"id": "${phiMarker}"}`));
  });

  it('on envelope fields that break their allow-lists', () => {
    const input = { type: 'ClaimSubmitted', data: null, source: 'billing', actor: clerk };
    for (const override of [
      { type: phiMarker.replaceAll('-', ' ') },
      { source: `${phiMarker} ` },
      { actor: { id: `${phiMarker}!`, role: 'clerk' } },
      { correlationId: ` ${phiMarker}` },
      { tenantId: `${phiMarker}#` },
      { id: phiMarker },
      { occurredAt: phiMarker },
    ]) {
      expectSilentAboutMarker(() => createEnvelope({ ...input, ...override }));
    }
    expectSilentAboutMarker(() => assertEnvelope({ ...claimEnvelope(), metadata: phiMarker }));
  });

  it('on upcasts whose output does not match, or is not JSON', () => {
    const bad = (upcast: (claim: ClaimV1) => unknown) =>
      createSchemaRegistry()
        .register('ClaimSubmitted', { version: 1, schema: claimV1 })
        .register('ClaimSubmitted', { version: 2, schema: claimV2, upcast });
    expectSilentAboutMarker(() =>
      bad((claim) => ({ ...claim, payerId: phiMarker })).upcast(claimEnvelope()),
    );
    expectSilentAboutMarker(() =>
      bad((claim) => ({ ...claim, [phiMarker]: Symbol('x') })).upcast(claimEnvelope()),
    );
    expectSilentAboutMarker(() =>
      bad(() => {
        throw new Error(`the upcaster's own message may hold ${phiMarker}`);
      }).upcast(claimEnvelope()),
    );
  });

  it('on stored payloads that fail their own version before an upcast', () => {
    expectSilentAboutMarker(() =>
      claimRegistry().upcast(claimEnvelope(claimV1Data({ payerId: phiMarker }))),
    );
  });

  it('in compatibility reports, which speak only of the schema', () => {
    const report = checkCompatibility(visitSchema, { type: 'object' });
    expect(report.compatible).toBe(false);
    expect(JSON.stringify(report)).not.toContain(phiMarker);
  });
});
