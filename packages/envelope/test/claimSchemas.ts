import {
  type Actor,
  createEnvelope,
  createSchemaRegistry,
  type Envelope,
  type JsonSchema,
  type SchemaRegistry,
} from '../src/index.js';

/**
 * A string that looks like PHI and appears nowhere else: tests put it in payloads and assert it
 * never reaches an error message, an issue or a report.
 */
export const phiMarker = 'PHI-MARKER-Jane-Roe-1961-04-12';

export const clerk: Actor = { id: 'staff-17', role: 'billing-clerk' };

/** ClaimSubmitted v1: fees in dollars. */
export const claimV1 = {
  type: 'object',
  additionalProperties: false,
  required: ['claimId', 'patientControlNumber', 'payerId', 'serviceLines'],
  properties: {
    claimId: { type: 'string', maxLength: 32, pattern: '^CLM-[0-9]{4,12}$' },
    patientControlNumber: { type: 'string', minLength: 1, maxLength: 38, phi: true },
    payerId: { type: 'string', maxLength: 16, pattern: '^[A-Z0-9]{2,16}$' },
    serviceLines: {
      type: 'array',
      minItems: 1,
      maxItems: 50,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'fee'],
        properties: {
          code: { type: 'string', maxLength: 5, pattern: '^D[0-9]{4}$' },
          fee: { type: 'number', minimum: 0, maximum: 100_000 },
        },
      },
    },
  },
} as const satisfies JsonSchema;

/** ClaimSubmitted v2: fees in integer cents — a breaking change that needs an upcaster. */
export const claimV2 = {
  ...claimV1,
  properties: {
    ...claimV1.properties,
    serviceLines: {
      ...claimV1.properties.serviceLines,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'feeCents'],
        properties: {
          code: claimV1.properties.serviceLines.items.properties.code,
          feeCents: { type: 'integer', minimum: 0, maximum: 10_000_000 },
        },
      },
    },
  },
} as const satisfies JsonSchema;

/** ClaimSubmitted v3: a required `priority` with a default — compatible, upcast by defaults. */
export const claimV3 = {
  ...claimV2,
  required: [...claimV2.required, 'priority'],
  properties: {
    ...claimV2.properties,
    priority: { type: 'string', enum: ['routine', 'urgent'], default: 'routine' },
  },
} as const satisfies JsonSchema;

export interface ClaimV1 {
  claimId: string;
  patientControlNumber: string;
  payerId: string;
  serviceLines: { code: string; fee: number }[];
}

export interface ClaimV2 extends Omit<ClaimV1, 'serviceLines'> {
  serviceLines: { code: string; feeCents: number }[];
}

export const dollarsToCents = (claim: ClaimV1): ClaimV2 => ({
  ...claim,
  serviceLines: claim.serviceLines.map(({ code, fee }) => ({
    code,
    feeCents: Math.round(fee * 100),
  })),
});

/** A registry with ClaimSubmitted v1, v2 (upcaster) and v3 (defaults). */
export function claimRegistry(): SchemaRegistry {
  return createSchemaRegistry()
    .register('ClaimSubmitted', { version: 1, schema: claimV1 })
    .register('ClaimSubmitted', { version: 2, schema: claimV2, upcast: dollarsToCents })
    .register('ClaimSubmitted', { version: 3, schema: claimV3 });
}

export function claimV1Data(overrides: Partial<ClaimV1> = {}): ClaimV1 {
  return {
    claimId: 'CLM-000123',
    patientControlNumber: phiMarker,
    payerId: 'DELTA01',
    serviceLines: [
      { code: 'D0120', fee: 55 },
      { code: 'D1110', fee: 98.5 },
    ],
    ...overrides,
  };
}

export function claimEnvelope(data: unknown = claimV1Data(), schemaVersion = 1): Envelope {
  return createEnvelope({
    type: 'ClaimSubmitted',
    schemaVersion,
    data,
    source: 'billing-service',
    actor: clerk,
  });
}

/** Every `pattern` in a schema, with its JSON Pointer, for the hostile-input tests. */
export function patternsOf(schema: unknown, path = ''): { path: string; pattern: string }[] {
  if (typeof schema !== 'object' || schema === null) return [];
  const found: { path: string; pattern: string }[] = [];
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'pattern' && typeof value === 'string') found.push({ path, pattern: value });
    else found.push(...patternsOf(value, `${path}/${key}`));
  }
  return found;
}
