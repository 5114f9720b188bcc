import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ClaimV1,
  claimEnvelope,
  claimRegistry,
  claimV1,
  claimV1Data,
  claimV2,
  claimV3,
  dollarsToCents,
} from '../test/claimSchemas.js';
import {
  createSchemaRegistry,
  type Envelope,
  isEvidentError,
  isSchemaIncompatibleError,
  isSchemaValidationError,
  isUpcastError,
  type JsonSchema,
  type SchemaIssue,
} from './index.js';

function thrown(attempt: () => unknown): unknown {
  try {
    attempt();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const v1Only = () =>
  createSchemaRegistry().register('ClaimSubmitted', { version: 1, schema: claimV1 });

describe('register', () => {
  it('accepts versions 1, 2, 3 in order and lists types and versions', () => {
    const registry = claimRegistry().register('EligibilityVerified', {
      version: 1,
      schema: { type: 'object' },
    });
    expect(registry.types()).toEqual(['ClaimSubmitted', 'EligibilityVerified']);
    expect(registry.latestVersion('ClaimSubmitted')).toBe(3);
    expect(registry.upcastPath('ClaimSubmitted')).toEqual([1, 2, 3]);
    expect(registry.upcastPath('ClaimSubmitted', 2)).toEqual([2, 3]);
    expect(registry.has('ClaimSubmitted', 3)).toBe(true);
    expect(registry.has('ClaimSubmitted', 4)).toBe(false);
    expect(registry.has('ClaimDenied')).toBe(false);
  });

  it.each([
    ['a first version other than 1', 'ClaimSubmitted', 2],
    ['a version that skips one', 'ClaimSubmitted', 3],
    ['a fractional version', 'ClaimSubmitted', 1.5],
    ['a type with spaces', 'Claim Submitted', 1],
  ])('refuses %s with INVALID_ARGUMENT', (_, type, version) => {
    const registry = createSchemaRegistry();
    if (version === 3) registry.register(type, { version: 1, schema: claimV1 });
    expect(() => registry.register(type, { version, schema: claimV1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('refuses an upcaster on version 1 and an upcaster that is not a function', () => {
    const registry = createSchemaRegistry();
    expect(() =>
      registry.register('ClaimSubmitted', { version: 1, schema: claimV1, upcast: (d) => d }),
    ).toThrow(/no earlier version/);
    registry.register('ClaimSubmitted', { version: 1, schema: claimV1 });
    expect(() =>
      registry.register('ClaimSubmitted', { version: 2, schema: claimV2, upcast: 'x' as never }),
    ).toThrow(/upcast must be a function/);
  });

  it('keeps its own frozen copy of the schema', () => {
    const schema = structuredClone(claimV1) as unknown as { required: string[] };
    const registry = createSchemaRegistry().register('ClaimSubmitted', { version: 1, schema });
    schema.required.push('somethingElse');
    expect(registry.schema('ClaimSubmitted').required).not.toContain('somethingElse');
    expect(Object.isFrozen(registry.schema('ClaimSubmitted').properties)).toBe(true);
  });

  it('leaves the registry unchanged when a registration fails', () => {
    const registry = v1Only();
    expect(() => registry.register('ClaimSubmitted', { version: 2, schema: claimV2 })).toThrow();
    expect(registry.latestVersion('ClaimSubmitted')).toBe(1);
    registry.register('ClaimSubmitted', { version: 2, schema: claimV2, upcast: dollarsToCents });
    expect(registry.latestVersion('ClaimSubmitted')).toBe(2);
  });
});

describe('schemas refused at registration', () => {
  const refuse = (schema: unknown) =>
    thrown(() =>
      createSchemaRegistry().register('ClaimSubmitted', {
        version: 1,
        schema: schema as JsonSchema,
      }),
    ) as { code: string; schemaPath: string; message: string };

  it('refuses $data anywhere with SCHEMA_INVALID and its path', () => {
    const error = refuse({
      type: 'object',
      properties: {
        paid: { type: 'integer' },
        billed: { type: 'integer', minimum: { $data: '1/paid' } },
      },
    });
    expect(error).toMatchObject({
      code: 'SCHEMA_INVALID',
      schemaPath: '/properties/billed/minimum/$data',
    });
  });

  it('refuses $async, which would make every payload pass', () => {
    expect(refuse({ $async: true, type: 'object' })).toMatchObject({
      code: 'SCHEMA_INVALID',
      schemaPath: '/$async',
    });
  });

  it('refuses a pattern with nested quantifiers', () => {
    const error = refuse({
      type: 'object',
      properties: { memberId: { type: 'string', maxLength: 20, pattern: '^([A-Z]+)+$' } },
    });
    expect(error).toMatchObject({
      code: 'SCHEMA_INVALID',
      schemaPath: '/properties/memberId/pattern',
    });
    expect(error.message).toMatch(/exponential time/);
  });

  it('refuses a pattern without a maxLength, or with one above the ceiling', () => {
    const noMax = {
      type: 'object',
      properties: { code: { type: 'string', pattern: '^D[0-9]{4}$' } },
    };
    expect(refuse(noMax)).toMatchObject({ schemaPath: '/properties/code/pattern' });
    const huge = {
      type: 'object',
      properties: { code: { type: 'string', maxLength: 1_000_000, pattern: '^D[0-9]{4}$' } },
    };
    expect(refuse(huge).message).toMatch(/maxLength of at most 1024/);
    expect(() =>
      createSchemaRegistry({ maxPatternedStringLength: 2_000_000 }).register('X', {
        version: 1,
        schema: huge,
      }),
    ).not.toThrow();
  });

  it('checks patterns inside arrays, definitions and combinators too', () => {
    const error = refuse({
      type: 'object',
      definitions: { code: { type: 'string', pattern: '(a|a)*$' } },
      properties: { lines: { type: 'array', items: { $ref: '#/definitions/code' } } },
    });
    expect(error.schemaPath).toBe('/definitions/code/pattern');
    expect(
      refuse({
        type: 'object',
        anyOf: [{ type: 'object', properties: { a: { type: 'string', pattern: 'x' } } }],
      }).schemaPath,
    ).toBe('/anyOf/0/properties/a/pattern');
  });

  it('refuses patternProperties unless property names are bounded and the key is safe', () => {
    expect(
      refuse({ type: 'object', patternProperties: { '^x-': { type: 'string' } } }).schemaPath,
    ).toBe('/patternProperties');
    expect(
      refuse({
        type: 'object',
        propertyNames: { maxLength: 40 },
        patternProperties: { '^(x+)+$': { type: 'string' } },
      }).schemaPath,
    ).toBe('/patternProperties/^(x+)+$');
  });

  it('points at the place in the schema that ajv refused', () => {
    expect(
      refuse({ type: 'object', properties: { a: { type: 'string', format: 'date' } } }).schemaPath,
    ).toBe('/properties/a');
    expect(
      refuse({ type: 'object', properties: { a: { type: 'integer', maximum: 'ten' } } }).schemaPath,
    ).toBe('/properties/a/maximum');
  });

  it('refuses what ajv strict mode refuses: unknown keywords, formats and loose types', () => {
    expect(
      refuse({ type: 'object', properties: { a: { type: 'string', maxlength: 3 } } }).code,
    ).toBe('SCHEMA_INVALID');
    expect(
      refuse({ type: 'object', properties: { a: { type: 'string', format: 'date' } } }).code,
    ).toBe('SCHEMA_INVALID');
    expect(refuse({ properties: { a: { type: 'string' } } }).message).toMatch(/strict mode/);
    expect(refuse({ type: 'object', properties: { a: { type: 'string', phi: 'yes' } } }).code).toBe(
      'SCHEMA_INVALID',
    );
  });

  it('refuses $id: schemas are named by type and version', () => {
    expect(refuse({ $id: 'https://example.org/claim.json', type: 'object' })).toMatchObject({
      code: 'SCHEMA_INVALID',
      schemaPath: '/$id',
    });
  });

  it('refuses something that is not a JSON Schema object', () => {
    expect(refuse(true).code).toBe('SCHEMA_INVALID');
    expect(refuse({ type: 'object', default: new Date(0) }).code).toBe('SCHEMA_INVALID');
    expect(refuse({ type: 'number', maximum: Number.POSITIVE_INFINITY }).code).toBe(
      'SCHEMA_INVALID',
    );
  });
});

describe('versions that break the previous one', () => {
  it('refuses a breaking version without an upcaster, listing every breaking change', () => {
    const error = thrown(() =>
      v1Only().register('ClaimSubmitted', { version: 2, schema: claimV2 }),
    );
    expect(isSchemaIncompatibleError(error)).toBe(true);
    if (!isSchemaIncompatibleError(error)) return;
    expect(error.code).toBe('SCHEMA_INCOMPATIBLE');
    expect(error.changes.map((c) => [c.kind, c.path])).toEqual([
      ['field-removed', '/serviceLines/*/fee'],
      ['field-added', '/serviceLines/*/feeCents'],
    ]);
    expect(error.message).toBe(
      'ClaimSubmitted v2 breaks payloads of v1 and has no upcaster: /serviceLines/*/fee removed; ' +
        '/serviceLines/*/feeCents: required field added without a default',
    );
  });

  it('reports a removed field and a narrowed enum together', () => {
    const registry = claimRegistry();
    const { payerId: _removed, ...properties } = claimV3.properties;
    const v4 = {
      ...claimV3,
      required: claimV3.required.filter((name) => name !== 'payerId'),
      properties: { ...properties, priority: { type: 'string', enum: ['routine'] } },
    };
    const error = thrown(() => registry.register('ClaimSubmitted', { version: 4, schema: v4 }));
    expect(isSchemaIncompatibleError(error) && error.changes.map((c) => [c.kind, c.path])).toEqual([
      ['field-removed', '/payerId'],
      ['enum-narrowed', '/priority'],
    ]);
  });

  it('accepts a breaking version with an upcaster as an explicit migration', () => {
    expect(() =>
      v1Only().register('ClaimSubmitted', { version: 2, schema: claimV2, upcast: dollarsToCents }),
    ).not.toThrow();
  });

  it('accepts a compatible version without an upcaster', () => {
    const v2 = {
      ...claimV1,
      properties: { ...claimV1.properties, note: { type: 'string', maxLength: 200 } },
    };
    expect(() => v1Only().register('ClaimSubmitted', { version: 2, schema: v2 })).not.toThrow();
  });
});

describe('validate and check', () => {
  it('returns a valid envelope as is', () => {
    const envelope = claimEnvelope();
    expect(claimRegistry().validate(envelope)).toBe(envelope);
    expect(claimRegistry().check(envelope)).toEqual({ ok: true });
  });

  it('throws SchemaValidationError with a JSON path and a reason', () => {
    const data = claimV1Data({
      serviceLines: [
        { code: 'D0120', fee: 55 },
        { code: 'X999', fee: 1 },
      ],
    });
    const error = thrown(() => claimRegistry().validate(claimEnvelope(data)));
    expect(isSchemaValidationError(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'SCHEMA_VALIDATION_FAILED',
      eventType: 'ClaimSubmitted',
      schemaVersion: 1,
      issues: [
        {
          path: '/serviceLines/1/code',
          keyword: 'pattern',
          reason: 'must match pattern "^D[0-9]{4}$"',
          params: { pattern: '^D[0-9]{4}$' },
        },
      ],
    });
  });

  it('reports a missing field with the name from the schema', () => {
    const { payerId: _missing, ...data } = claimV1Data();
    const result = claimRegistry().check(claimEnvelope(data));
    expect(result).toEqual({
      ok: false,
      issues: [
        {
          path: '',
          keyword: 'required',
          reason: "must have required property 'payerId'",
          params: { missingProperty: 'payerId' },
        },
      ],
    });
  });

  it('validates each version against its own schema', () => {
    const v2data = dollarsToCents(claimV1Data());
    expect(claimRegistry().check(claimEnvelope(v2data, 2))).toEqual({ ok: true });
    expect(claimRegistry().check(claimEnvelope(v2data, 1)).ok).toBe(false);
  });

  it('throws SCHEMA_NOT_FOUND for an unknown type or version, from validate and check', () => {
    const registry = claimRegistry();
    const unknownType = createSchemaRegistry();
    for (const attempt of [
      () => unknownType.validate(claimEnvelope()),
      () => unknownType.check(claimEnvelope()),
      () => registry.validate(claimEnvelope(claimV1Data(), 9)),
      () => registry.check(claimEnvelope(claimV1Data(), 9)),
      () => registry.latestVersion('ClaimDenied'),
      () => registry.upcastPath('ClaimSubmitted', 4),
      () => registry.phiPaths('ClaimSubmitted', 0),
    ]) {
      expect(isEvidentError(thrown(attempt), 'SCHEMA_NOT_FOUND')).toBe(true);
    }
    expect((thrown(() => registry.check(claimEnvelope(claimV1Data(), 9))) as Error).message).toBe(
      'ClaimSubmitted has no schema version 9; registered: 1 to 3',
    );
  });

  it('never names a type that breaks the allow-list in a SCHEMA_NOT_FOUND message', () => {
    const error = thrown(() =>
      claimRegistry().check({ type: 'Jane Roe', schemaVersion: 1, data: {} }),
    ) as Error;
    expect(error.message).toBe('no schema is registered for an event type with an invalid name');
  });

  it('does not mutate the payload, even where the schema has defaults', () => {
    const data = dollarsToCents(claimV1Data());
    const before = structuredClone(data);
    expect(claimRegistry().check(claimEnvelope(data, 3)).ok).toBe(false);
    expect(data).toEqual(before);
  });

  it('ignores properties inherited from Object.prototype when checking required', () => {
    const schema = {
      type: 'object',
      required: ['toString'],
      properties: { toString: { type: 'string' } },
    };
    const registry = createSchemaRegistry().register('Probe', { version: 1, schema });
    const result = registry.check({ type: 'Probe', schemaVersion: 1, data: {} });
    expect(result.ok).toBe(false);
  });

  it('reports payloads that are not plain JSON as issues from check and PayloadError from validate', () => {
    const registry = createSchemaRegistry().register('Probe', {
      version: 1,
      schema: { type: 'object' },
    });
    const envelope = { ...claimEnvelope(), type: 'Probe', data: { when: new Date(0) } };
    expect(registry.check(envelope)).toEqual({
      ok: false,
      issues: [expect.objectContaining({ keyword: 'PAYLOAD_MALFORMED' })],
    });
    expect(() => registry.validate(envelope)).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_MALFORMED' }),
    );
  });

  it('masks keys the schema does not name, which may be PHI, as * in issue paths', () => {
    const schema = {
      type: 'object',
      properties: {
        balances: { type: 'object', additionalProperties: { type: 'integer' } },
      },
    };
    const registry = createSchemaRegistry().register('LedgerUpdated', { version: 1, schema });
    const result = registry.check({
      type: 'LedgerUpdated',
      schemaVersion: 1,
      data: { balances: { 'Jane Roe': 'lots' } },
    });
    expect(result).toEqual({
      ok: false,
      issues: [
        {
          path: '/balances/*',
          keyword: 'type',
          reason: 'must be integer',
          params: { type: 'integer' },
        },
      ],
    });
  });
});

describe('upcast', () => {
  it('brings a v1 envelope to the latest version through every step', () => {
    const stored = claimEnvelope();
    const current = claimRegistry().upcast(stored);
    expect(current).toEqual({
      ...stored,
      schemaVersion: 3,
      data: {
        ...claimV1Data(),
        serviceLines: [
          { code: 'D0120', feeCents: 5500 },
          { code: 'D1110', feeCents: 9850 },
        ],
        priority: 'routine',
      },
    });
  });

  it('changes only schemaVersion and data, and never mutates its input', () => {
    const stored = claimEnvelope();
    const copy = structuredClone(stored);
    const current = claimRegistry().upcast(stored);
    expect(stored).toEqual(copy);
    const { data: _d, schemaVersion: _v, ...rest } = current;
    const { data: _sd, schemaVersion: _sv, ...storedRest } = stored;
    expect(rest).toEqual(storedRest);
  });

  it('returns an envelope already at the latest version as is', () => {
    const latest = claimEnvelope({ ...dollarsToCents(claimV1Data()), priority: 'urgent' }, 3);
    expect(claimRegistry().upcast(latest)).toBe(latest);
  });

  it('applies the new defaults on a copy when a compatible version has no upcaster', () => {
    const v2data = dollarsToCents(claimV1Data());
    const stored = claimEnvelope(v2data, 2);
    expect(claimRegistry().upcast(stored).data).toEqual({ ...v2data, priority: 'routine' });
    expect(v2data).not.toHaveProperty('priority');
  });

  it('hands the upcaster a copy it may mutate', () => {
    const registry = v1Only().register('ClaimSubmitted', {
      version: 2,
      schema: claimV2,
      upcast: (claim: ClaimV1) => {
        for (const line of claim.serviceLines as unknown as { feeCents: number; fee?: number }[]) {
          line.feeCents = Math.round((line.fee ?? 0) * 100);
          delete line.fee;
        }
        return claim;
      },
    });
    const stored = claimEnvelope();
    const before = structuredClone(stored);
    expect(registry.upcast(stored).schemaVersion).toBe(2);
    expect(stored).toEqual(before);
  });

  it('validates the upcaster output every time and fails with UPCAST_FAILED', () => {
    const registry = v1Only().register('ClaimSubmitted', {
      version: 2,
      schema: claimV2,
      upcast: (claim: ClaimV1) => ({ ...claim, serviceLines: [] }),
    });
    const error = thrown(() => registry.upcast(claimEnvelope()));
    expect(isUpcastError(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'UPCAST_FAILED',
      fromVersion: 1,
      toVersion: 2,
      issues: [{ path: '/serviceLines', keyword: 'minItems' }],
    });
  });

  it('wraps a throwing upcaster, keeping its error as the cause', () => {
    const failure = new Error('upcaster bug');
    const registry = v1Only().register('ClaimSubmitted', {
      version: 2,
      schema: claimV2,
      upcast: () => {
        throw failure;
      },
    });
    const error = thrown(() => registry.upcast(claimEnvelope()));
    expect(error).toMatchObject({ code: 'UPCAST_FAILED', cause: failure, issues: [] });
  });

  it('refuses an upcaster that returns a promise or other non-JSON', () => {
    const registry = v1Only().register('ClaimSubmitted', {
      version: 2,
      schema: claimV2,
      upcast: async (claim: ClaimV1) => dollarsToCents(claim),
    });
    expect(() => registry.upcast(claimEnvelope())).toThrow(
      expect.objectContaining({
        code: 'UPCAST_FAILED',
        issues: [expect.objectContaining({ keyword: 'PAYLOAD_MALFORMED' })],
      }),
    );
  });

  it('never writes defaults into objects the upcaster shares with others', () => {
    const shared = Object.freeze({ code: 'D0120', feeCents: 0 });
    const v3 = {
      ...claimV2,
      properties: {
        ...claimV2.properties,
        serviceLines: {
          ...claimV2.properties.serviceLines,
          items: {
            ...claimV2.properties.serviceLines.items,
            properties: {
              ...claimV2.properties.serviceLines.items.properties,
              units: { type: 'integer', minimum: 1, default: 1 },
            },
          },
        },
      },
    };
    const registry = v1Only()
      .register('ClaimSubmitted', {
        version: 2,
        schema: claimV2,
        upcast: (claim: ClaimV1) => ({ ...claim, serviceLines: [shared] }),
      })
      .register('ClaimSubmitted', { version: 3, schema: v3 });
    const lines = (registry.upcast(claimEnvelope()).data as { serviceLines: unknown[] })
      .serviceLines;
    expect(lines).toEqual([{ code: 'D0120', feeCents: 0, units: 1 }]);
    expect(shared).toEqual({ code: 'D0120', feeCents: 0 });
  });

  it('refuses to upcast a stored payload that does not match its own version', () => {
    const broken = claimEnvelope(claimV1Data({ payerId: 'lower-case' }));
    expect(() => claimRegistry().upcast(broken)).toThrow(
      expect.objectContaining({ code: 'SCHEMA_VALIDATION_FAILED' }),
    );
  });
});

describe('upcast chains (property)', () => {
  const line = fc.record({
    code: fc.stringMatching(/^D[0-9]{4}$/),
    fee: fc.integer({ min: 0, max: 1_000_000 }).map((cents) => cents / 100),
  });
  const claim: fc.Arbitrary<ClaimV1> = fc.record({
    claimId: fc.stringMatching(/^CLM-[0-9]{4,12}$/),
    patientControlNumber: fc.string({ minLength: 1, maxLength: 38 }),
    payerId: fc.stringMatching(/^[A-Z0-9]{2,16}$/),
    serviceLines: fc.array(line, { minLength: 1, maxLength: 10 }),
  });

  it('equals applying each step directly, in order', () => {
    const registry = claimRegistry();
    fc.assert(
      fc.property(claim, (data) => {
        const direct = { ...dollarsToCents(structuredClone(data)), priority: 'routine' };
        expect(registry.upcast(claimEnvelope(data)).data).toEqual(direct);
      }),
      { numRuns: 200 },
    );
  });

  it('equals upcasting to v2 first and then from v2 to v3', () => {
    const full = claimRegistry();
    const upToV2 = v1Only().register('ClaimSubmitted', {
      version: 2,
      schema: claimV2,
      upcast: dollarsToCents,
    });
    fc.assert(
      fc.property(claim, (data) => {
        const stored = claimEnvelope(data);
        const viaV2: Envelope = full.upcast(upToV2.upcast(stored));
        expect(full.upcast(stored)).toEqual(viaV2);
      }),
      { numRuns: 200 },
    );
  });
});

describe('phiPaths', () => {
  it('lists the fields marked phi: true, for the latest version by default', () => {
    expect(claimRegistry().phiPaths('ClaimSubmitted')).toEqual(['/patientControlNumber']);
    expect(claimRegistry().phiPaths('ClaimSubmitted', 1)).toEqual(['/patientControlNumber']);
  });

  it('finds phi fields in nested objects, arrays, maps, references and branches', () => {
    const schema = {
      type: 'object',
      definitions: {
        person: {
          type: 'object',
          properties: { name: { type: 'string', phi: true }, role: { type: 'string' } },
        },
      },
      properties: {
        patient: {
          type: 'object',
          properties: {
            dateOfBirth: { type: 'string', phi: true },
            address: { type: 'object', properties: { zip: { type: 'string', phi: true } } },
          },
        },
        guarantors: { type: 'array', items: { $ref: '#/definitions/person' } },
        notesByVisit: { type: 'object', additionalProperties: { type: 'string', phi: true } },
        contact: {
          type: 'object',
          anyOf: [
            { type: 'object', properties: { email: { type: 'string', phi: true } } },
            { type: 'object', properties: { phone: { type: 'string', phi: true } } },
          ],
        },
        chart: { type: 'object', phi: true },
      },
    };
    const registry = createSchemaRegistry().register('PatientRegistered', { version: 1, schema });
    expect(registry.phiPaths('PatientRegistered')).toEqual([
      '/chart',
      '/contact/email',
      '/contact/phone',
      '/guarantors/*/name',
      '/notesByVisit/*',
      '/patient/address/zip',
      '/patient/dateOfBirth',
    ]);
  });

  it('terminates on recursive schemas', () => {
    const schema = {
      type: 'object',
      properties: {
        note: { type: 'string', phi: true },
        replies: { type: 'array', items: { $ref: '#' } },
      },
    };
    const registry = createSchemaRegistry().register('ThreadPosted', { version: 1, schema });
    expect(registry.phiPaths('ThreadPosted')).toEqual(['/note', '/replies/*/note']);
  });
});

describe('issues', () => {
  it('carry a path, a keyword and a reason, and params only from the schema', () => {
    const schema = {
      type: 'object',
      additionalProperties: false,
      properties: { status: { type: 'string', enum: ['draft', 'submitted'] } },
    };
    const registry = createSchemaRegistry().register('ClaimStatusChanged', { version: 1, schema });
    const check = (data: unknown): readonly SchemaIssue[] => {
      const result = registry.check({ type: 'ClaimStatusChanged', schemaVersion: 1, data });
      return result.ok ? [] : result.issues;
    };
    expect(check({ status: 'Jane' })).toEqual([
      {
        path: '/status',
        keyword: 'enum',
        reason: 'must be equal to one of the allowed values',
        params: { allowedValues: ['draft', 'submitted'] },
      },
    ]);
    expect(check({ 'Jane Roe': 1 })).toEqual([
      { path: '', keyword: 'additionalProperties', reason: 'must NOT have additional properties' },
    ]);
  });
});
