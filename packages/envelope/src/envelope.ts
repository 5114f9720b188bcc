import { v7 as uuidv7 } from 'uuid';
import { InvalidArgumentError } from './errors.js';
import { traceMetadata } from './telemetry.js';

function withTrace(metadata: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  if (typeof metadata.traceparent === 'string') return metadata;
  const trace = traceMetadata();
  return trace.traceparent ? { ...metadata, ...trace } : metadata;
}

/**
 * Who caused an event: a person or a system, with the role it acted in.
 *
 * @example
 * ```ts
 * const actor: Actor = { id: 'staff-17', role: 'billing-clerk' };
 * ```
 */
export interface Actor {
  /** Staff, patient-portal user or service account id. Not a name: ids are not PHI, names are. */
  readonly id: string;
  /** The role the actor held, e.g. `billing-clerk`, `orthodontist`, `system`. */
  readonly role: string;
}

/**
 * The envelope every event travels in, through the store, the brokers and the sagas.
 *
 * `data` is the payload described by the schema registered for (`type`, `schemaVersion`);
 * everything else is the audit context regulators ask about: what, when, who, from where,
 * and as part of which workflow.
 *
 * @example
 * ```ts
 * function onClaimSubmitted(event: Envelope<'ClaimSubmitted', { claimId: string }>) {
 *   console.log(event.data.claimId, event.correlationId);
 * }
 * ```
 */
export interface Envelope<Type extends string = string, Data = unknown> {
  /** UUIDv7: unique, and time-ordered so ids sort by creation. */
  readonly id: string;
  /** Event type in the domain's words, e.g. `ClaimSubmitted`. */
  readonly type: Type;
  /** Version of the payload schema `data` was written with. */
  readonly schemaVersion: number;
  /** When it happened in the world, as the producer saw it (ISO 8601, UTC). */
  readonly occurredAt: string;
  /** Shared by every event of one workflow, e.g. a patient's journey from booking to payment. */
  readonly correlationId: string;
  /** Id of the event (or command) that caused this one; the root of a workflow is its own cause. */
  readonly causationId: string;
  /** The service that produced the event, e.g. `billing-service`. */
  readonly source: string;
  readonly actor: Actor;
  /** The organisation whose data this is, when the platform is multi-tenant. */
  readonly tenantId?: string;
  readonly data: Data;
  /** Free, non-PHI context: trace headers, request ids, feature flags. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/**
 * What a producer says about a new event; the rest is derived. Input of {@link createEnvelope}.
 *
 * @example
 * ```ts
 * const input: EnvelopeInput<'ClaimSubmitted'> = {
 *   type: 'ClaimSubmitted',
 *   data: { claimId: 'CLM-000123' },
 *   source: 'billing-service',
 *   actor: { id: 'staff-17', role: 'billing-clerk' },
 * };
 * ```
 */
export interface EnvelopeInput<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly data: Data;
  readonly source: string;
  readonly actor: Actor;
  /** @defaultValue 1 */
  readonly schemaVersion?: number;
  /** @defaultValue now */
  readonly occurredAt?: Date | string;
  /** Continue an existing workflow. @defaultValue the new event's own id (a new workflow) */
  readonly correlationId?: string;
  /** @defaultValue the new event's own id */
  readonly causationId?: string;
  readonly tenantId?: string;
  /** @defaultValue `{}` */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Supply an id to make a retried producer idempotent. @defaultValue a fresh UUIDv7 */
  readonly id?: string;
}

/**
 * What a child event says; audit context it does not give is inherited from its parent.
 * Input of {@link causedBy}.
 *
 * @example
 * ```ts
 * const input: ChildEnvelopeInput<'EligibilityVerified'> = {
 *   type: 'EligibilityVerified',
 *   data: { coverage: 'active' },
 * };
 * ```
 */
export type ChildEnvelopeInput<Type extends string = string, Data = unknown> = Omit<
  EnvelopeInput<Type, Data>,
  'correlationId' | 'causationId' | 'source' | 'actor' | 'tenantId'
> &
  Partial<Pick<EnvelopeInput<Type, Data>, 'source' | 'actor'>>;

// Allow-lists. All patterns are linear (no nested quantifiers) and every checked string has a
// length cap, so validation time is bounded whatever the input.
const patterns = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  /** Event type: `ClaimSubmitted`, `billing.ClaimSubmitted`, `claim:submitted`. */
  type: /^[A-Za-z][A-Za-z0-9_.:-]*$/,
  /** Service names, roles, tenant ids, correlation ids: printable ASCII words. */
  token: /^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$/,
  // `(?:\.\d{1,9}|)` rather than `(?:\.\d{1,9})?`: the same language, but without a quantifier
  // around a quantifier, so safe-regex2 (which the registry applies to schemas) accepts it too.
  timestamp: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9}|)(?:Z|[+-]\d{2}:\d{2})$/,
} as const;

/**
 * Upper bounds, in characters, on the envelope's own fields (the payload has its own limits).
 *
 * @example
 * ```ts
 * envelopeFieldLimits.type; // 128
 * ```
 */
export const envelopeFieldLimits = {
  type: 128,
  token: 128,
  actorId: 128,
  metadataKeys: 64,
} as const;

/**
 * The patterns the envelope's fields are checked against, for tooling and tests. All are linear
 * and judged safe by safe-regex2.
 *
 * @example
 * ```ts
 * envelopePatterns.type.test('ClaimSubmitted'); // true
 * ```
 */
export const envelopePatterns: Readonly<Record<keyof typeof patterns, RegExp>> = patterns;

function describe(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function checkString(field: string, value: unknown, pattern: RegExp, max: number): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > max ||
    !pattern.test(value)
  ) {
    // Never echo the value: an id or a type supplied by a caller may carry PHI.
    throw new InvalidArgumentError(
      `${field} must be 1-${max} characters matching ${pattern}; got ${describe(value)}`,
    );
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The number at `text[start, end)`, all ASCII digits (the timestamp pattern has checked that). */
function digits(text: string, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) n = n * 10 + text.charCodeAt(i) - 48;
  return n;
}

/**
 * The time a well-formed timestamp names, in epoch milliseconds, or NaN when it names none.
 * `Date.parse` rolls impossible days over (`2023-02-29` becomes March 1st); refuse them instead
 * of storing a date nobody wrote: the day must exist in its month, in the proleptic Gregorian
 * calendar that `Date` uses for every year, 0 to 99 included. Arithmetic rather than a second
 * `Date`: this runs on every envelope created, appended, published and received, and the `Date`
 * round trip was half of its time.
 */
function realTime(text: string): number {
  const time = Date.parse(text);
  if (Number.isNaN(time)) return Number.NaN;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  if (month < 1 || month > 12 || day < 1) return Number.NaN;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const length =
    month === 2
      ? leap
        ? 29
        : 28
      : month === 4 || month === 6 || month === 9 || month === 11
        ? 30
        : 31;
  return day <= length ? time : Number.NaN;
}

function normalizeTimestamp(field: string, value: unknown): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime()))
      throw new InvalidArgumentError(`${field} is an invalid Date`);
    return value.toISOString();
  }
  const time = realTime(checkString(field, value, patterns.timestamp, 40));
  if (Number.isNaN(time)) throw new InvalidArgumentError(`${field} is not a real date and time`);
  return new Date(time).toISOString();
}

/**
 * Check that `value` is a well-formed envelope and return it typed. Used on everything that
 * crosses a boundary (deserialization, broker messages, store reads of foreign rows). The payload
 * is not checked here: that is the schema registry's job.
 *
 * @example
 * ```ts
 * const envelope = assertEnvelope(JSON.parse(message.body));
 * ```
 * @throws InvalidArgumentError naming the field and the rule, never the value.
 */
export function assertEnvelope(value: unknown): Envelope {
  if (!isPlainObject(value)) {
    throw new InvalidArgumentError(`an envelope must be a plain object; got ${describe(value)}`);
  }
  const v = value;
  checkString('id', v.id, patterns.uuid, 36);
  checkString('type', v.type, patterns.type, envelopeFieldLimits.type);
  if (!Number.isSafeInteger(v.schemaVersion) || (v.schemaVersion as number) < 1) {
    throw new InvalidArgumentError(
      `schemaVersion must be a positive integer; got ${describe(v.schemaVersion)}`,
    );
  }
  checkString('occurredAt', v.occurredAt, patterns.timestamp, 40);
  if (Number.isNaN(realTime(v.occurredAt as string))) {
    throw new InvalidArgumentError('occurredAt is not a real date and time');
  }
  checkString('correlationId', v.correlationId, patterns.token, envelopeFieldLimits.token);
  checkString('causationId', v.causationId, patterns.token, envelopeFieldLimits.token);
  checkString('source', v.source, patterns.token, envelopeFieldLimits.token);
  if (!isPlainObject(v.actor)) {
    throw new InvalidArgumentError(
      `actor must be an object { id, role }; got ${describe(v.actor)}`,
    );
  }
  checkString('actor.id', v.actor.id, patterns.token, envelopeFieldLimits.actorId);
  checkString('actor.role', v.actor.role, patterns.token, envelopeFieldLimits.token);
  if (v.tenantId !== undefined) {
    checkString('tenantId', v.tenantId, patterns.token, envelopeFieldLimits.token);
  }
  if (v.data === undefined) throw new InvalidArgumentError('data is required (use null for none)');
  if (!isPlainObject(v.metadata)) {
    throw new InvalidArgumentError(`metadata must be a plain object; got ${describe(v.metadata)}`);
  }
  if (Object.keys(v.metadata).length > envelopeFieldLimits.metadataKeys) {
    throw new InvalidArgumentError(
      `metadata may hold at most ${envelopeFieldLimits.metadataKeys} keys`,
    );
  }
  return v as unknown as Envelope;
}

/**
 * Create an envelope for a new event.
 *
 * Without a `correlationId` the event starts a new workflow: its correlation and causation ids are
 * its own id. Use {@link causedBy} for events that follow from another one.
 *
 * @example
 * ```ts
 * const submitted = createEnvelope({
 *   type: 'ClaimSubmitted',
 *   data: { claimId: 'c-123', payerId: 'delta-dental' },
 *   source: 'billing-service',
 *   actor: { id: 'u-17', role: 'billing-clerk' },
 * });
 * ```
 * @throws InvalidArgumentError when a field is missing or breaks its allow-list.
 */
export function createEnvelope<Type extends string, Data>(
  input: EnvelopeInput<Type, Data>,
): Envelope<Type, Data> {
  if (!isPlainObject(input)) {
    throw new InvalidArgumentError(`createEnvelope expects an object; got ${describe(input)}`);
  }
  const id = input.id ?? uuidv7();
  const envelope: Envelope<Type, Data> = {
    id,
    type: input.type,
    schemaVersion: input.schemaVersion ?? 1,
    occurredAt: normalizeTimestamp('occurredAt', input.occurredAt ?? new Date()),
    correlationId: input.correlationId ?? id,
    causationId: input.causationId ?? id,
    source: input.source,
    actor: input.actor ? { id: input.actor.id, role: input.actor.role } : input.actor,
    ...(input.tenantId === undefined ? {} : { tenantId: input.tenantId }),
    data: input.data,
    // The active trace context travels with the event unless the producer set it explicitly.
    metadata: withTrace(input.metadata ?? {}),
  };
  assertEnvelope(envelope);
  return envelope;
}

/**
 * Create the envelope of an event caused by `parent`: same workflow (correlation id and tenant),
 * `causationId` set to the parent's id, and the parent's source and actor unless given.
 *
 * @example
 * ```ts
 * const verified = causedBy(scheduled, {
 *   type: 'EligibilityVerified',
 *   data: { coverage: 'active' },
 *   source: 'eligibility-service',
 * });
 * verified.correlationId === scheduled.correlationId; // true
 * verified.causationId === scheduled.id; // true
 * ```
 * @throws InvalidArgumentError when a field is missing or breaks its allow-list.
 */
export function causedBy<Type extends string, Data>(
  parent: Pick<Envelope, 'id' | 'correlationId' | 'source' | 'actor' | 'tenantId'>,
  input: ChildEnvelopeInput<Type, Data>,
): Envelope<Type, Data> {
  return createEnvelope({
    ...input,
    source: input.source ?? parent.source,
    actor: input.actor ?? parent.actor,
    correlationId: parent.correlationId,
    causationId: parent.id,
    ...(parent.tenantId === undefined ? {} : { tenantId: parent.tenantId }),
  });
}

/**
 * A fresh UUIDv7, the id format of every envelope: unique, and sorting in creation order.
 *
 * @example
 * ```ts
 * const id = newEventId(); // '01a220f0-b4d9-7714-ac17-bb513a8bf817'
 * ```
 */
export function newEventId(): string {
  return uuidv7();
}
