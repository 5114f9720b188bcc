import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CompatibilityChange, checkCompatibility, type JsonSchema } from './index.js';

type Mutable = Record<string, unknown> & {
  properties?: Record<string, Mutable>;
  required?: string[];
  items?: Mutable;
  enum?: unknown[];
};

const patient = (): Mutable => ({
  type: 'object',
  additionalProperties: false,
  required: ['memberId', 'address'],
  properties: {
    memberId: { type: 'string', maxLength: 20 },
    plan: { type: 'string', enum: ['ppo', 'hmo', 'indemnity'] },
    address: {
      type: 'object',
      required: ['zip'],
      properties: {
        zip: { type: 'string', minLength: 5, maxLength: 10, pattern: '^[0-9-]+$' },
        city: { type: 'string', maxLength: 60 },
      },
    },
    visits: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        properties: {
          code: { type: 'string', maxLength: 5 },
          fee: { type: 'integer', minimum: 0 },
        },
      },
    },
  },
});

const base = (): Mutable => ({
  type: 'object',
  required: ['patient'],
  properties: { patient: patient() },
});

/** Change a copy of the base schema and compare the result with the base. */
function afterChange(change: (schema: Mutable, patient: Mutable) => void) {
  const next = base();
  change(next, next.properties!.patient!);
  return checkCompatibility(base(), next);
}

const summary = (changes: readonly CompatibilityChange[]) =>
  changes.map(({ kind, path, breaking }) => ({ kind, path, breaking }));

describe('checkCompatibility: breaking changes', () => {
  it('finds nothing between a schema and itself', () => {
    expect(checkCompatibility(base(), base())).toEqual({ compatible: true, changes: [] });
  });

  it('rejects a removed field, with its path in the payload', () => {
    const report = afterChange((_, p) => delete p.properties!.address!.properties!.city);
    expect(report.compatible).toBe(false);
    expect(summary(report.changes)).toEqual([
      { kind: 'field-removed', path: '/patient/address/city', breaking: true },
    ]);
  });

  it('rejects a renamed field: removed, and added again under a new name with the same schema', () => {
    const report = afterChange((_, p) => {
      const address = p.properties!.address!.properties!;
      address.postalCode = address.zip!;
      delete address.zip;
      p.properties!.address!.required = ['postalCode'];
    });
    expect(summary(report.changes)).toEqual([
      { kind: 'field-renamed', path: '/patient/address/zip', breaking: true },
    ]);
    expect(report.changes[0]!.message).toBe(
      '/patient/address/zip renamed to /patient/address/postalCode',
    );
  });

  it('rejects a changed type', () => {
    const report = afterChange((_, p) => {
      p.properties!.memberId = { type: 'integer' };
    });
    expect(summary(report.changes)).toContainEqual({
      kind: 'type-changed',
      path: '/patient/memberId',
      breaking: true,
    });
    expect(report.changes[0]!.message).toBe(
      '/patient/memberId: type changed from string to integer',
    );
  });

  it('rejects a narrowed type: number to integer, or a union losing a member', () => {
    const narrowed = checkCompatibility({ type: 'number' }, { type: 'integer' });
    expect(summary(narrowed.changes)).toEqual([{ kind: 'type-changed', path: '', breaking: true }]);
    const union = checkCompatibility({ type: ['string', 'null'] }, { type: 'string' });
    expect(union.compatible).toBe(false);
  });

  it('rejects an existing field made required without a default', () => {
    const report = afterChange((_, p) => p.required!.push('plan'));
    expect(summary(report.changes)).toEqual([
      { kind: 'field-made-required', path: '/patient/plan', breaking: true },
    ]);
  });

  it('rejects a new required field without a default', () => {
    const report = afterChange((_, p) => {
      p.properties!.groupNumber = { type: 'string', maxLength: 20 };
      p.required!.push('groupNumber');
    });
    expect(summary(report.changes)).toEqual([
      { kind: 'field-added', path: '/patient/groupNumber', breaking: true },
    ]);
  });

  it('rejects an enum that lost a value', () => {
    const report = afterChange((_, p) => {
      p.properties!.plan!.enum = ['ppo', 'hmo'];
    });
    expect(summary(report.changes)).toEqual([
      { kind: 'enum-narrowed', path: '/patient/plan', breaking: true },
    ]);
    expect(report.changes[0]!.message).toBe('/patient/plan: enum lost "indemnity"');
  });

  it('rejects an enum where there was none, and a changed const', () => {
    expect(checkCompatibility({ type: 'string' }, { type: 'string', enum: ['a'] }).compatible).toBe(
      false,
    );
    const constant = checkCompatibility({ const: 'v1' }, { const: 'v2' });
    expect(summary(constant.changes)).toEqual([
      { kind: 'const-changed', path: '', breaking: true },
    ]);
  });

  it('rejects closing additional properties', () => {
    const report = afterChange((_, p) => {
      p.properties!.address!.additionalProperties = false;
    });
    expect(summary(report.changes)).toEqual([
      { kind: 'additional-properties-closed', path: '/patient/address', breaking: true },
    ]);
  });

  it.each([
    ['maxLength lowered', (p: Mutable) => (p.properties!.memberId!.maxLength = 10)],
    ['minLength raised', (p: Mutable) => (p.properties!.address!.properties!.zip!.minLength = 9)],
    [
      'pattern changed',
      (p: Mutable) => (p.properties!.address!.properties!.zip!.pattern = '^[0-9]+$'),
    ],
    ['maxItems lowered', (p: Mutable) => (p.properties!.visits!.maxItems = 10)],
    ['minItems added', (p: Mutable) => (p.properties!.visits!.minItems = 1)],
    ['minimum raised', (p: Mutable) => (p.properties!.visits!.items!.properties!.fee!.minimum = 1)],
    ['maximum added', (p: Mutable) => (p.properties!.visits!.items!.properties!.fee!.maximum = 9)],
  ])('rejects a tightened constraint: %s', (_, change) => {
    const report = afterChange((_, p) => change(p));
    expect(report.compatible).toBe(false);
    expect(report.changes.map((c) => c.kind)).toEqual(['constraint-tightened']);
  });

  it('rejects an array whose items changed incompatibly, with * for every item', () => {
    const report = afterChange((_, p) => {
      p.properties!.visits!.items!.properties!.code = { type: 'string', maxLength: 4 };
      delete p.properties!.visits!.items!.properties!.fee;
    });
    expect(summary(report.changes)).toEqual([
      { kind: 'field-removed', path: '/patient/visits/*/fee', breaking: true },
      { kind: 'constraint-tightened', path: '/patient/visits/*/code', breaking: true },
    ]);
  });

  it('reports every breaking change, not just the first', () => {
    const report = afterChange((_, p) => {
      delete p.properties!.memberId;
      p.properties!.plan!.enum = ['ppo'];
      p.properties!.address!.properties!.zip!.maxLength = 5;
    });
    expect(report.changes.filter((c) => c.breaking).map((c) => c.path)).toEqual([
      '/patient/memberId',
      '/patient/plan',
      '/patient/address/zip',
    ]);
  });

  it('refuses changed combinators and unmodelled keywords rather than guess', () => {
    const anyOf = checkCompatibility(
      { anyOf: [{ type: 'string' }, { type: 'integer' }] },
      { anyOf: [{ type: 'string' }] },
    );
    expect(summary(anyOf.changes)).toEqual([
      { kind: 'composition-changed', path: '', breaking: true },
    ]);
    const contains = checkCompatibility(
      { type: 'array', contains: { type: 'string' } },
      { type: 'array', contains: { type: 'integer' } },
    );
    expect(summary(contains.changes)).toEqual([
      { kind: 'keyword-changed', path: '', breaking: true },
    ]);
  });

  it('rejects a tuple position that changed, and a closed tail', () => {
    const report = checkCompatibility(
      { type: 'array', items: [{ type: 'string' }, { type: 'integer' }] },
      {
        type: 'array',
        items: [{ type: 'string' }, { type: 'string' }],
        additionalItems: false,
      },
    );
    expect(summary(report.changes)).toEqual([
      { kind: 'type-changed', path: '/1', breaking: true },
      { kind: 'type-changed', path: '/*', breaking: true },
    ]);
  });

  it('follows local $refs and compares what they point to', () => {
    const withAddress = (zip: JsonSchema): JsonSchema => ({
      type: 'object',
      definitions: { address: { type: 'object', properties: { zip } } },
      properties: { home: { $ref: '#/definitions/address' } },
    });
    const report = checkCompatibility(
      withAddress({ type: 'string', maxLength: 10 }),
      withAddress({ type: 'string', maxLength: 5 }),
    );
    expect(summary(report.changes)).toEqual([
      { kind: 'constraint-tightened', path: '/home/zip', breaking: true },
    ]);
  });

  it('terminates on recursive schemas', () => {
    const thread = (maxLength: number): JsonSchema => ({
      type: 'object',
      properties: {
        text: { type: 'string', maxLength },
        replies: { type: 'array', items: { $ref: '#' } },
      },
    });
    const report = checkCompatibility(thread(500), thread(400));
    expect(summary(report.changes)).toEqual([
      { kind: 'constraint-tightened', path: '/text', breaking: true },
    ]);
  });

  it('never lets anything through once nothing was allowed: false is only compatible with itself', () => {
    expect(checkCompatibility({ type: 'string' }, false).compatible).toBe(false);
    expect(checkCompatibility(false, { type: 'string' }).compatible).toBe(true);
  });
});

describe('checkCompatibility: additive changes', () => {
  it.each([
    [
      'an optional field added',
      (p: Mutable) => (p.properties!.groupNumber = { type: 'string', maxLength: 20 }),
      'field-added',
    ],
    [
      'a required field added with a default',
      (p: Mutable) => {
        p.properties!.relationship = { type: 'string', maxLength: 10, default: 'self' };
        p.required!.push('relationship');
      },
      'field-added',
    ],
    ['an enum widened', (p: Mutable) => p.properties!.plan!.enum!.push('epo'), 'enum-widened'],
    [
      'a maxLength raised',
      (p: Mutable) => (p.properties!.memberId!.maxLength = 40),
      'constraint-loosened',
    ],
    [
      'a pattern dropped',
      (p: Mutable) => delete p.properties!.address!.properties!.zip!.pattern,
      'constraint-loosened',
    ],
    [
      'a minimum dropped',
      (p: Mutable) => delete p.properties!.visits!.items!.properties!.fee!.minimum,
      'constraint-loosened',
    ],
    ['a field made optional', (p: Mutable) => (p.required = ['memberId']), 'field-made-optional'],
    [
      'additional properties opened',
      (p: Mutable) => delete p.additionalProperties,
      'additional-properties-opened',
    ],
    [
      'an integer widened to a number',
      (p: Mutable) => (p.properties!.visits!.items!.properties!.fee!.type = 'number'),
      'type-changed',
    ],
    [
      'an existing field made required with a default',
      (p: Mutable) => {
        p.properties!.plan!.default = 'ppo';
        p.required!.push('plan');
      },
      'field-made-required',
    ],
    ['a field marked phi', (p: Mutable) => (p.properties!.memberId!.phi = true), 'phi-changed'],
  ])('accepts %s and reports it as not breaking', (_, change, kind) => {
    const report = afterChange((_, p) => {
      change(p);
    });
    expect(report.compatible).toBe(true);
    expect(report.changes.map((c) => [c.kind, c.breaking])).toEqual([[kind, false]]);
  });

  it('ignores descriptions, titles and examples', () => {
    const report = afterChange((_, p) => {
      p.description = 'The patient, as the payer knows them';
      p.properties!.memberId!.examples = ['A123'];
    });
    expect(report).toEqual({ compatible: true, changes: [] });
  });

  it('accepts a multipleOf that divides the old one and rejects one that does not', () => {
    expect(
      checkCompatibility({ type: 'integer', multipleOf: 4 }, { type: 'integer', multipleOf: 2 })
        .compatible,
    ).toBe(true);
    expect(
      checkCompatibility({ type: 'integer', multipleOf: 2 }, { type: 'integer', multipleOf: 4 })
        .compatible,
    ).toBe(false);
  });
});

// ---- properties ----

const fieldName = fc.stringMatching(/^[a-z][a-zA-Z0-9]{0,7}$/);

const leafSchema: fc.Arbitrary<Mutable> = fc.oneof(
  fc.record(
    {
      type: fc.constant('string'),
      maxLength: fc.integer({ min: 1, max: 200 }),
      minLength: fc.integer({ min: 0, max: 1 }),
    },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    {
      type: fc.constantFrom('integer', 'number'),
      minimum: fc.integer({ min: -100, max: 0 }),
      maximum: fc.integer({ min: 1, max: 1_000 }),
    },
    { requiredKeys: ['type'] },
  ),
  fc.record({ type: fc.constant('boolean') }),
  fc.record({
    type: fc.constant('string'),
    enum: fc.uniqueArray(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 1, maxLength: 5 }),
  }),
);

const { object: objectSchema } = fc.letrec<{ node: Mutable; object: Mutable; array: Mutable }>(
  (tie) => ({
    node: fc.oneof(
      { maxDepth: 3, depthIdentifier: 'schema' },
      leafSchema,
      tie('object'),
      tie('array'),
    ),
    array: fc.record({ type: fc.constant('array'), items: tie('node') }),
    object: fc
      .uniqueArray(fc.tuple(fieldName, tie('node')), {
        selector: ([name]) => name,
        minLength: 1,
        maxLength: 5,
      })
      .chain((entries) =>
        fc.record(
          {
            type: fc.constant('object'),
            properties: fc.constant(Object.fromEntries(entries)),
            required: fc.subarray(entries.map(([name]) => name)),
            additionalProperties: fc.boolean(),
          },
          { requiredKeys: ['type', 'properties', 'required'] },
        ),
      ),
  }),
);

interface Site {
  readonly path: string;
  readonly schema: Mutable;
}

/** Every schema node under `schema`, with its payload path. */
function sites(schema: Mutable, path = ''): Site[] {
  const found: Site[] = [{ path, schema }];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    found.push(...sites(child, `${path}/${name}`));
  }
  if (schema.items) found.push(...sites(schema.items, `${path}/*`));
  return found;
}

interface Mutation {
  readonly what: string;
  readonly path: string;
  readonly apply: () => void;
}

function freshName(schema: Mutable): string {
  let name = 'addedField';
  while (Object.hasOwn(schema.properties ?? {}, name)) name += 'X';
  return name;
}

/** Changes that keep every old payload valid, one list per schema node. */
function additiveMutations(site: Site, extra: Mutable): Mutation[] {
  const s = site.schema;
  const list: Mutation[] = [];
  if (s.type === 'object') {
    const name = freshName(s);
    list.push({
      what: 'optional field added',
      path: `${site.path}/${name}`,
      apply: () => {
        s.properties![name] = extra;
      },
    });
    list.push({
      what: 'required field added with a default',
      path: `${site.path}/${name}`,
      apply: () => {
        s.properties![name] = { ...extra, default: null };
        s.required = [...(s.required ?? []), name];
      },
    });
    if ((s.required ?? []).length > 0) {
      list.push({
        what: 'field made optional',
        path: `${site.path}/${s.required![0]}`,
        apply: () => {
          s.required = s.required!.slice(1);
        },
      });
    }
    if (s.additionalProperties === false) {
      list.push({ what: 'opened', path: site.path, apply: () => delete s.additionalProperties });
    }
  }
  if (Array.isArray(s.enum)) {
    list.push({
      what: 'enum widened',
      path: site.path,
      apply: () => {
        s.enum = [...s.enum!, 'zzzzzzz'];
      },
    });
  }
  if (typeof s.maxLength === 'number') {
    list.push({
      what: 'maxLength raised',
      path: site.path,
      apply: () => {
        s.maxLength = (s.maxLength as number) + 1;
      },
    });
  }
  if (typeof s.minimum === 'number') {
    list.push({ what: 'minimum dropped', path: site.path, apply: () => delete s.minimum });
  }
  if (s.type === 'integer') {
    list.push({
      what: 'integer widened to number',
      path: site.path,
      apply: () => {
        s.type = 'number';
      },
    });
  }
  return list;
}

/** Changes that make some old payload invalid. */
function breakingMutations(site: Site, extra: Mutable): Mutation[] {
  const s = site.schema;
  const list: Mutation[] = [];
  if (s.type === 'object') {
    const name = freshName(s);
    list.push({
      what: 'required field added without a default',
      path: `${site.path}/${name}`,
      apply: () => {
        s.properties![name] = extra;
        s.required = [...(s.required ?? []), name];
      },
    });
    const optional = Object.keys(s.properties ?? {}).find((n) => !(s.required ?? []).includes(n));
    if (optional !== undefined) {
      list.push({
        what: 'field made required',
        path: `${site.path}/${optional}`,
        apply: () => {
          s.required = [...(s.required ?? []), optional];
        },
      });
    }
    if (s.additionalProperties !== false) {
      list.push({
        what: 'closed',
        path: site.path,
        apply: () => {
          s.additionalProperties = false;
        },
      });
    }
  }
  if (Array.isArray(s.enum) && s.enum.length > 1) {
    list.push({
      what: 'enum narrowed',
      path: site.path,
      apply: () => {
        s.enum = s.enum!.slice(1);
      },
    });
  }
  if (s.type === 'string') {
    list.push({
      what: 'maxLength lowered',
      path: site.path,
      apply: () => {
        s.maxLength = typeof s.maxLength === 'number' ? s.maxLength - 1 : 10;
      },
    });
    list.push({
      what: 'type changed',
      path: site.path,
      apply: () => {
        s.type = 'boolean';
      },
    });
  }
  if (s.type === 'number') {
    list.push({
      what: 'number narrowed to integer',
      path: site.path,
      apply: () => {
        s.type = 'integer';
      },
    });
  }
  if (typeof s.minimum === 'number') {
    list.push({
      what: 'minimum raised',
      path: site.path,
      apply: () => {
        s.minimum = (s.minimum as number) + 1;
      },
    });
  }
  return list;
}

/** Pick the `pick`-th mutation available anywhere in a copy of `schema`, apply it, report. */
function mutated(
  schema: Mutable,
  extra: Mutable,
  pick: number,
  mutations: (site: Site, extra: Mutable) => Mutation[],
) {
  const next = structuredClone(schema);
  const available = sites(next).flatMap((site) => mutations(site, extra));
  const mutation = available[pick % available.length]!;
  mutation.apply();
  return { mutation, report: checkCompatibility(schema, next) };
}

describe('checkCompatibility (properties)', () => {
  it('accepts every additive change it generates, and reports it as not breaking', () => {
    fc.assert(
      fc.property(objectSchema, leafSchema, fc.nat(), (schema, extra, pick) => {
        const { mutation, report } = mutated(schema, extra, pick, additiveMutations);
        expect(report.compatible, mutation.what).toBe(true);
        expect(report.changes.length, mutation.what).toBeGreaterThan(0);
        expect(report.changes.some((c) => c.path === mutation.path)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects every removal it generates, naming the removed field', () => {
    fc.assert(
      fc.property(objectSchema, fc.nat(), (schema, pick) => {
        const next = structuredClone(schema);
        const fields = sites(next).flatMap((site) =>
          Object.keys(site.schema.properties ?? {}).map((name) => ({ site, name })),
        );
        const { site, name } = fields[pick % fields.length]!;
        delete site.schema.properties![name];
        site.schema.required = (site.schema.required ?? []).filter((n) => n !== name);
        const report = checkCompatibility(schema, next);
        expect(report.compatible).toBe(false);
        expect(report.changes).toContainEqual(
          expect.objectContaining({
            kind: 'field-removed',
            path: `${site.path}/${name}`,
            breaking: true,
          }),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('rejects every other breaking change it generates, at its path', () => {
    fc.assert(
      fc.property(objectSchema, leafSchema, fc.nat(), (schema, extra, pick) => {
        const { mutation, report } = mutated(schema, extra, pick, breakingMutations);
        expect(report.compatible, mutation.what).toBe(false);
        expect(
          report.changes.some((c) => c.breaking && c.path === mutation.path),
          mutation.what,
        ).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('finds no change between any schema and a copy of itself', () => {
    fc.assert(
      fc.property(objectSchema, (schema) => {
        expect(checkCompatibility(schema, structuredClone(schema)).changes).toEqual([]);
      }),
    );
  });
});
