/**
 * Quick start: one dental claim event, from the clerk's desk to a reader years later.
 *
 * Run it from the repository root with `pnpm demo`.
 */
import {
  createEnvelope,
  createSchemaRegistry,
  deserialize,
  isSchemaIncompatibleError,
  type JsonSchema,
  serialize,
} from '@evident/envelope';

// ClaimSubmitted v1: what the billing service first sent. Fees in dollars.
const claimSubmittedV1 = {
  type: 'object',
  additionalProperties: false,
  required: ['claimId', 'patientControlNumber', 'payerId', 'serviceLines'],
  properties: {
    claimId: { type: 'string', maxLength: 10, pattern: '^CLM-[0-9]{6}$' },
    // Identifies the patient at the practice: PHI, to be encrypted at rest and never logged.
    patientControlNumber: { type: 'string', maxLength: 38, phi: true },
    payerId: { type: 'string', maxLength: 32 },
    serviceLines: {
      type: 'array',
      minItems: 1,
      maxItems: 50,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'fee'],
        properties: {
          code: { type: 'string', maxLength: 5, pattern: '^D[0-9]{4}$' }, // a CDT procedure code
          fee: { type: 'number', minimum: 0 },
        },
      },
    },
  },
} as const satisfies JsonSchema;

// v2: fees in integer cents. Old payloads no longer match, so v2 brings an upcaster.
const serviceLineV2 = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'feeCents'],
  properties: {
    code: claimSubmittedV1.properties.serviceLines.items.properties.code,
    feeCents: { type: 'integer', minimum: 0 },
  },
} as const satisfies JsonSchema;
const claimSubmittedV2 = {
  ...claimSubmittedV1,
  properties: {
    ...claimSubmittedV1.properties,
    serviceLines: { ...claimSubmittedV1.properties.serviceLines, items: serviceLineV2 },
  },
} as const satisfies JsonSchema;

interface ClaimV1 {
  claimId: string;
  patientControlNumber: string;
  payerId: string;
  serviceLines: { code: string; fee: number }[];
}
type ClaimV2 = Omit<ClaimV1, 'serviceLines'> & {
  serviceLines: { code: string; feeCents: number }[];
};

const registry = createSchemaRegistry()
  .register('ClaimSubmitted', { version: 1, schema: claimSubmittedV1 })
  .register('ClaimSubmitted', {
    version: 2,
    schema: claimSubmittedV2,
    upcast: (claim: ClaimV1): ClaimV2 => ({
      ...claim,
      serviceLines: claim.serviceLines.map(({ code, fee }) => ({
        code,
        feeCents: Math.round(fee * 100),
      })),
    }),
  });
const versions = registry.upcastPath('ClaimSubmitted').map((v) => `v${v}`);
console.log(`registered ClaimSubmitted ${versions.join(', ')}`);
console.log(`  PHI fields: ${registry.phiPaths('ClaimSubmitted').join(', ')}`);

// A clerk submits a claim today: the event travels in an envelope with its audit context.
const clerk = { id: 'staff-17', role: 'billing-clerk' };
const submitted = createEnvelope({
  type: 'ClaimSubmitted',
  schemaVersion: 2,
  data: {
    claimId: 'CLM-000123',
    patientControlNumber: 'PCN-88412',
    payerId: 'delta-dental',
    serviceLines: [
      { code: 'D0120', feeCents: 5500 }, // periodic oral evaluation
      { code: 'D1110', feeCents: 9800 }, // adult prophylaxis
    ],
  },
  source: 'billing-service',
  actor: clerk,
});
const text = serialize(registry.validate(submitted));
console.log(`created and serialized ${submitted.type} ${submitted.id} (${text.length} bytes)`);

// Another service receives the text: parse it within limits, then check it against its schema.
const received = registry.validate(deserialize(text));
console.log(
  `deserialized and validated v${received.schemaVersion} (workflow ${received.correlationId})`,
);

// An invalid payload is reported by path and rule, never by value (values may be PHI).
const result = registry.check({
  ...submitted,
  data: { ...submitted.data, serviceLines: [{ code: 'X0120', feeCents: 5500 }] },
});
if (!result.ok) {
  const [issue] = result.issues;
  console.log(`refused an invalid payload: ${issue?.path} ${issue?.reason}`);
}

// An event stored as v1 years ago is read as the current version.
const storedV1 = createEnvelope({
  type: 'ClaimSubmitted',
  schemaVersion: 1,
  occurredAt: '2019-06-03T14:05:00Z',
  data: {
    claimId: 'CLM-000042',
    patientControlNumber: 'PCN-10231',
    payerId: 'delta-dental',
    serviceLines: [{ code: 'D0120', fee: 48.5 }],
  },
  source: 'billing-service',
  actor: clerk,
});
const current = registry.upcast(storedV1);
const [line] = (current.data as ClaimV2).serviceLines;
console.log(
  `upcast a stored v1 claim to v${current.schemaVersion}: fee $48.50 is now ${line?.feeCents} cents`,
);

// v3 would drop payerId and rename claimId: stored claims would break, so it is refused.
const { payerId: _payerId, claimId, ...kept } = claimSubmittedV2.properties;
try {
  registry.register('ClaimSubmitted', {
    version: 3,
    schema: {
      ...claimSubmittedV2,
      required: ['claimNumber', 'patientControlNumber', 'serviceLines'],
      properties: { ...kept, claimNumber: claimId },
    },
  });
} catch (error) {
  if (!isSchemaIncompatibleError(error)) throw error;
  console.log(`refused ClaimSubmitted v3 (${error.code}):`);
  for (const change of error.changes) console.log(`  ${change.kind}: ${change.message}`);
}
