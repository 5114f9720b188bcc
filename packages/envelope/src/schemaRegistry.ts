import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { checkCompatibility } from './compatibility.js';
import {
  assertEnvelope,
  type Envelope,
  envelopeFieldLimits,
  envelopePatterns,
} from './envelope.js';
import {
  EvidentError,
  InvalidArgumentError,
  InvalidSchemaError,
  isEvidentError,
  SchemaIncompatibleError,
  type SchemaIssue,
  SchemaValidationError,
  UpcastError,
} from './errors.js';
import {
  escapePointer,
  forEachSubschema,
  isObject,
  type JsonSchema,
  pointerKeys,
} from './jsonSchema.js';
import { collectPhiPaths } from './phiPaths.js';
import { findSchemaDefect } from './schemaSafety.js';
import {
  assertJson,
  defaultSerializationLimits,
  type PayloadError,
  type SerializationLimits,
} from './serialization.js';

/**
 * Turns the payload of version N-1 into the payload of version N. It receives a private copy, so
 * it may mutate it; it must return plain JSON, synchronously. Its output is validated against
 * version N every time it runs. Whatever it throws becomes the `cause` of an {@link UpcastError}:
 * keep payload values out of its messages too.
 *
 * @example
 * ```ts
 * const feesInCents: Upcaster<ClaimV1, ClaimV2> = (claim) => ({
 *   ...claim,
 *   serviceLines: claim.serviceLines.map(({ code, fee }) => ({ code, feeCents: Math.round(fee * 100) })),
 * });
 * ```
 */
export type Upcaster<Previous = unknown, Next = unknown> = (data: Previous) => Next;

/**
 * One version of an event type's payload schema, as given to {@link SchemaRegistry.register}.
 *
 * @example
 * ```ts
 * const v2: SchemaVersion<ClaimV1, ClaimV2> = { version: 2, schema: claimV2, upcast: feesInCents };
 * ```
 */
export interface SchemaVersion<Previous = unknown, Next = unknown> {
  /** 1 for the first version, then one more than the latest registered. */
  readonly version: number;
  /** JSON Schema (draft-07), checked by ajv in strict mode; `phi: true` marks PHI fields. */
  readonly schema: JsonSchema;
  /**
   * Migrates payloads of the previous version. Required when the new schema breaks old payloads;
   * without one, old payloads are upcast by filling in the new schema's defaults.
   * @defaultValue none: apply the new version's defaults
   */
  readonly upcast?: Upcaster<Previous, Next>;
}

/**
 * Options of {@link createSchemaRegistry}.
 *
 * @example
 * ```ts
 * const registry = createSchemaRegistry({ maxPatternedStringLength: 2048, limits: { maxDepth: 16 } });
 * ```
 */
export interface SchemaRegistryOptions {
  /**
   * Largest `maxLength` a string with a `pattern` may declare (and largest `propertyNames`
   * `maxLength` beside `patternProperties`), so a regular expression never scans long input.
   * safe-regex2 catches exponential patterns; this bound keeps polynomial ones (`\d*\d*x`) cheap.
   * @defaultValue 1024
   */
  readonly maxPatternedStringLength?: number;
  /**
   * Repetition limit handed to safe-regex2 when judging a `pattern`.
   * @defaultValue 25
   */
  readonly regexRepetitionLimit?: number;
  /**
   * Depth limit applied to payloads before validation (only `maxDepth` is used here).
   * @defaultValue {@link defaultSerializationLimits}
   */
  readonly limits?: SerializationLimits;
}

/**
 * The answer of {@link SchemaRegistry.check}.
 *
 * @example
 * ```ts
 * const result = registry.check(envelope);
 * if (!result.ok) deadLetter(envelope.id, result.issues);
 * ```
 */
export type SchemaCheckResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly issues: readonly SchemaIssue[] };

/**
 * Payload schemas per event type and version, with validation and upcasting. Made by
 * {@link createSchemaRegistry}; its methods do not depend on `this`, so they can be passed around.
 *
 * @example
 * ```ts
 * const onMessage = (text: string) => handle(registry.upcast(deserialize(text)));
 * ```
 */
export interface SchemaRegistry {
  /**
   * Register the next version of an event type's schema and return the registry.
   *
   * @throws InvalidArgumentError when the type name, version number or upcaster is malformed,
   *   or the version is not the next one.
   * @throws InvalidSchemaError (`SCHEMA_INVALID`) when ajv's strict mode refuses the schema, or it
   *   uses `$data`/`$async`, or a `pattern` is unsafe or has no `maxLength` beside it.
   * @throws SchemaIncompatibleError (`SCHEMA_INCOMPATIBLE`) when the version breaks payloads of
   *   the previous one and no `upcast` is given.
   */
  register<Previous = unknown, Next = unknown>(
    type: string,
    definition: SchemaVersion<Previous, Next>,
  ): SchemaRegistry;
  /**
   * Check an envelope and its payload against the schema of its type and version; return it.
   *
   * @throws SchemaValidationError (`SCHEMA_VALIDATION_FAILED`) with value-free issues.
   * @throws EvidentError `SCHEMA_NOT_FOUND` for an unknown type or version.
   * @throws InvalidArgumentError when the envelope itself is malformed.
   * @throws PayloadError when the payload is not plain JSON or nests too deep.
   */
  validate<E extends Envelope>(envelope: E): E;
  /**
   * Like {@link SchemaRegistry.validate}, but a payload that does not match (or is not plain
   * JSON, or nests too deep) is reported as issues instead of thrown.
   *
   * @throws EvidentError `SCHEMA_NOT_FOUND` for an unknown type or version: a deployment problem,
   *   not a property of the payload.
   */
  check(envelope: Pick<Envelope, 'type' | 'schemaVersion' | 'data'>): SchemaCheckResult;
  /**
   * Bring an envelope to the latest version of its type, upcasting v1→v2→v3… Only
   * `schemaVersion` and `data` change; the input is never mutated. An envelope already at the
   * latest version is validated and returned as is.
   *
   * @throws UpcastError (`UPCAST_FAILED`) when a step fails; issues never quote the payload.
   * @throws the errors of {@link SchemaRegistry.validate} for the stored version.
   */
  upcast<E extends Envelope>(envelope: E): Envelope<E['type']>;
  /**
   * The versions a payload goes through on the way to the latest: `[1, 2, 3]`.
   *
   * @throws EvidentError `SCHEMA_NOT_FOUND` for an unknown type or version.
   */
  upcastPath(type: string, fromVersion?: number): readonly number[];
  /**
   * The newest registered version of a type: what {@link SchemaRegistry.upcast} brings events to.
   * @throws EvidentError `SCHEMA_NOT_FOUND` for an unknown type.
   */
  latestVersion(type: string): number;
  /** Whether a schema is registered for the type (and version, when given). */
  has(type: string, version?: number): boolean;
  /** Registered event types, sorted. */
  types(): readonly string[];
  /**
   * The registered schema (frozen).
   * @throws EvidentError `SCHEMA_NOT_FOUND`.
   */
  schema(type: string, version?: number): JsonSchema;
  /**
   * Payload paths of the fields marked `phi: true`, sorted, e.g. `['/patientControlNumber']`;
   * `*` stands for every array item or map key.
   * @defaultValue version: the latest
   * @throws EvidentError `SCHEMA_NOT_FOUND`.
   */
  phiPaths(type: string, version?: number): readonly string[];
}

interface RegisteredVersion {
  readonly version: number;
  readonly schema: JsonSchema;
  readonly validate: ValidateFunction;
  /** Same schema, compiled with `useDefaults`: only ever run on private copies. */
  readonly validateWithDefaults: ValidateFunction;
  readonly upcast: Upcaster | undefined;
  readonly phiPaths: readonly string[];
  /** Every property name the schema mentions; other keys are masked in issue paths. */
  readonly names: ReadonlySet<string>;
}

// Parameters ajv takes from the schema. Others (`additionalProperty`, `propertyName`) come from
// the payload and are dropped.
const schemaParams = new Set([
  'allowedValue',
  'allowedValues',
  'comparison',
  'deps',
  'depsCount',
  'format',
  'i',
  'j',
  'limit',
  'missingProperty',
  'multipleOf',
  'passingSchemas',
  'pattern',
  'property',
  'type',
]);

function createAjv(useDefaults: boolean): Ajv {
  const ajv = new Ajv({
    strict: true,
    allErrors: false,
    $data: false,
    useDefaults,
    // Never copy the payload or the schema into errors.
    verbose: false,
    messages: true,
    // Properties on Object.prototype never satisfy `required`.
    ownProperties: true,
    coerceTypes: false,
    removeAdditional: false,
  });
  ajv.addKeyword({
    keyword: 'phi',
    schemaType: 'boolean',
    metaSchema: { type: 'boolean' },
  });
  return ajv;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function collectNames(schema: unknown, into: Set<string>): Set<string> {
  if (!isObject(schema)) return into;
  for (const keyword of ['properties', 'dependencies'] as const) {
    const map = schema[keyword];
    if (isObject(map)) for (const name of Object.keys(map)) into.add(name);
  }
  if (Array.isArray(schema.required)) {
    for (const name of schema.required) if (typeof name === 'string') into.add(name);
  }
  forEachSubschema(schema, (subschema) => collectNames(subschema, into));
  return into;
}

/** ajv's instance path with every key the schema does not name replaced by `*`. */
function maskedPath(instancePath: string, data: unknown, names: ReadonlySet<string>): string {
  let current: unknown = data;
  let path = '';
  for (const key of pointerKeys(instancePath)) {
    if (Array.isArray(current)) {
      path += `/${key}`;
      current = current[Number(key)];
    } else {
      path += names.has(key) ? `/${escapePointer(key)}` : '/*';
      current = isObject(current) && Object.hasOwn(current, key) ? current[key] : undefined;
    }
  }
  return path;
}

function toIssues(
  errors: readonly ErrorObject[] | null | undefined,
  data: unknown,
  names: ReadonlySet<string>,
): SchemaIssue[] {
  return (errors ?? []).map((error) => {
    const params = Object.fromEntries(
      Object.entries(error.params).filter(([key]) => schemaParams.has(key)),
    );
    return {
      path: maskedPath(error.instancePath, data, names),
      keyword: error.keyword,
      reason: error.message ?? `does not satisfy ${error.keyword}`,
      ...(Object.keys(params).length > 0 ? { params } : {}),
    };
  });
}

function payloadIssue(error: PayloadError): SchemaIssue {
  return { path: '', keyword: error.code, reason: error.message };
}

/**
 * The schema location in an ajv compile error: `… at path "#/properties/a"` (strict mode) or
 * `schema is invalid: data/properties/a/maximum must be …` (meta-schema); `''` when absent.
 */
function ajvSchemaPath(message: string): string {
  const strict = /\bat (?:path )?"#([^"]*)"/.exec(message);
  if (strict) return strict[1] ?? '';
  const meta = /^schema is invalid: data((?:\/[^\s]*)?) /.exec(message);
  return meta?.[1] ?? '';
}

/** A name for an event type that is safe to print even when it came from hostile input. */
function typeLabel(type: unknown): string {
  return typeof type === 'string' &&
    type.length <= envelopeFieldLimits.type &&
    envelopePatterns.type.test(type)
    ? type
    : 'an event type with an invalid name';
}

/**
 * Create a registry of payload schemas: one JSON Schema per event type and version, compiled once
 * by ajv in strict mode, with backward-compatibility enforced between consecutive versions.
 *
 * Evolution rules: version N must accept every payload of version N-1 (see
 * {@link checkCompatibility}). A breaking version is accepted only with an `upcast` function,
 * which is then the explicit migration from N-1 to N; its output is validated against N every time
 * it runs. A compatible version without an upcaster upcasts old payloads by applying its
 * `default`s (on a copy: the caller's data is never mutated).
 *
 * @example
 * ```ts
 * const registry = createSchemaRegistry()
 *   .register('ClaimSubmitted', { version: 1, schema: claimV1 })
 *   .register('ClaimSubmitted', { version: 2, schema: claimV2 }); // adds `priority` with a default
 *
 * registry.validate(envelope); // returns it, or throws SchemaValidationError
 * const current = registry.upcast(storedV1); // schemaVersion 2, priority filled in
 * registry.phiPaths('ClaimSubmitted'); // ['/patientControlNumber']
 * ```
 * @throws InvalidArgumentError when an option is out of range.
 */
export function createSchemaRegistry(options: SchemaRegistryOptions = {}): SchemaRegistry {
  const limits = {
    maxPatternedStringLength: options.maxPatternedStringLength ?? 1024,
    regexRepetitionLimit: options.regexRepetitionLimit ?? 25,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new InvalidArgumentError(`${name} must be a positive integer; got ${String(value)}`);
    }
  }
  const payloadLimits = { ...defaultSerializationLimits, ...options.limits };
  const ajv = createAjv(false);
  const ajvWithDefaults = createAjv(true);
  const byType = new Map<string, RegisteredVersion[]>();

  const notFound = (type: unknown, version?: unknown) => {
    const label = typeLabel(type);
    const versions = typeof type === 'string' ? byType.get(type) : undefined;
    if (!versions) {
      return new EvidentError('SCHEMA_NOT_FOUND', `no schema is registered for ${label}`);
    }
    const shown = Number.isSafeInteger(version) ? `version ${String(version)}` : 'that version';
    return new EvidentError(
      'SCHEMA_NOT_FOUND',
      `${label} has no schema ${shown}; registered: 1 to ${versions.length}`,
    );
  };

  const versionsOf = (type: unknown): RegisteredVersion[] => {
    const versions = typeof type === 'string' ? byType.get(type) : undefined;
    if (!versions) throw notFound(type);
    return versions;
  };

  const lookup = (type: unknown, version: unknown): RegisteredVersion => {
    const versions = versionsOf(type);
    const entry =
      typeof version === 'number' && Number.isSafeInteger(version)
        ? versions[version - 1]
        : undefined;
    if (!entry) throw notFound(type, version);
    return entry;
  };

  const compile = (ajvInstance: Ajv, type: string, version: number, schema: JsonSchema) => {
    try {
      return ajvInstance.compile(schema);
    } catch (cause) {
      // ajv's message names the rule and where it broke; schemas hold no payload values.
      const reason = cause instanceof Error ? cause.message : 'ajv refused it';
      throw new InvalidSchemaError(type, version, ajvSchemaPath(reason), reason, { cause });
    }
  };

  const register = (type: string, definition: SchemaVersion<never, unknown>): SchemaRegistry => {
    if (
      typeof type !== 'string' ||
      type.length > envelopeFieldLimits.type ||
      !envelopePatterns.type.test(type)
    ) {
      throw new InvalidArgumentError(
        `an event type must be 1-${envelopeFieldLimits.type} characters matching ${envelopePatterns.type}`,
      );
    }
    if (!isObject(definition)) {
      throw new InvalidArgumentError(`${type}: register expects { version, schema, upcast? }`);
    }
    const versions = byType.get(type) ?? [];
    const expected = versions.length + 1;
    const { version, upcast } = definition;
    if (version !== expected) {
      throw new InvalidArgumentError(
        `${type}: the next version to register is ${expected}; got ${String(version)}`,
      );
    }
    if (upcast !== undefined && typeof upcast !== 'function') {
      throw new InvalidArgumentError(`${type} v${version}: upcast must be a function`);
    }
    if (upcast !== undefined && version === 1) {
      throw new InvalidArgumentError(`${type} v1: there is no earlier version to upcast from`);
    }
    const defect = findSchemaDefect(definition.schema, limits);
    if (defect) throw new InvalidSchemaError(type, version, defect.path, defect.reason);
    // Our own frozen copy: later changes to the caller's object cannot change what was checked.
    const schema = deepFreeze(structuredClone(definition.schema));
    const validate = compile(ajv, type, version, schema);
    const validateWithDefaults = compile(ajvWithDefaults, type, version, schema);

    const previous = versions.at(-1);
    if (previous) {
      const { changes } = checkCompatibility(previous.schema, schema);
      const breaking = changes.filter((change) => change.breaking);
      if (breaking.length > 0 && upcast === undefined) {
        throw new SchemaIncompatibleError(type, version, breaking);
      }
    }
    versions.push({
      version,
      schema,
      validate,
      validateWithDefaults,
      upcast: upcast as Upcaster | undefined,
      phiPaths: Object.freeze(collectPhiPaths(schema)),
      names: collectNames(schema, new Set()),
    });
    byType.set(type, versions);
    return registry;
  };

  /** Issues of `data` against one version, or a thrown PayloadError when it is not plain JSON. */
  const issuesOf = (entry: RegisteredVersion, data: unknown): SchemaIssue[] => {
    assertJson(data, payloadLimits);
    return entry.validate(data) ? [] : toIssues(entry.validate.errors, data, entry.names);
  };

  const validate = <E extends Envelope>(envelope: E): E => {
    assertEnvelope(envelope);
    const entry = lookup(envelope.type, envelope.schemaVersion);
    const issues = issuesOf(entry, envelope.data);
    if (issues.length > 0) {
      throw new SchemaValidationError(envelope.type, envelope.schemaVersion, issues);
    }
    return envelope;
  };

  const check = (
    envelope: Pick<Envelope, 'type' | 'schemaVersion' | 'data'>,
  ): SchemaCheckResult => {
    if (!isObject(envelope)) {
      throw new InvalidArgumentError('check expects an envelope { type, schemaVersion, data }');
    }
    const entry = lookup(envelope.type, envelope.schemaVersion);
    try {
      const issues = issuesOf(entry, envelope.data);
      return issues.length > 0 ? { ok: false, issues } : { ok: true };
    } catch (error) {
      if (isEvidentError(error, 'PAYLOAD_TOO_DEEP', 'PAYLOAD_MALFORMED', 'PAYLOAD_UNSAFE_KEY')) {
        return { ok: false, issues: [payloadIssue(error as PayloadError)] };
      }
      throw error;
    }
  };

  /** One step up: `data` is a private copy the step may change. */
  const step = (type: string, target: RegisteredVersion, data: unknown): unknown => {
    const from = target.version - 1;
    let next = data;
    if (target.upcast) {
      try {
        next = target.upcast(data);
      } catch (cause) {
        throw new UpcastError(type, from, target.version, [], { cause });
      }
      try {
        assertJson(next, payloadLimits);
      } catch (error) {
        if (!isEvidentError(error)) throw error;
        throw new UpcastError(type, from, target.version, [payloadIssue(error as PayloadError)]);
      }
      // The upcaster may have returned shared objects (a constant, its input's parts): copy
      // before defaults are written into it.
      next = structuredClone(next);
    }
    if (!target.validateWithDefaults(next)) {
      const issues = toIssues(target.validateWithDefaults.errors, next, target.names);
      throw new UpcastError(type, from, target.version, issues);
    }
    return next;
  };

  const upcast = <E extends Envelope>(envelope: E): Envelope<E['type']> => {
    validate(envelope);
    const versions = versionsOf(envelope.type);
    if (envelope.schemaVersion === versions.length) return envelope;
    let data: unknown = structuredClone(envelope.data);
    for (const target of versions.slice(envelope.schemaVersion)) {
      data = step(envelope.type, target, data);
    }
    return { ...envelope, schemaVersion: versions.length, data };
  };

  const upcastPath = (type: string, fromVersion = 1): readonly number[] => {
    const versions = versionsOf(type);
    lookup(type, fromVersion);
    return versions.slice(fromVersion - 1).map((entry) => entry.version);
  };

  const registry: SchemaRegistry = {
    register,
    validate,
    check,
    upcast,
    upcastPath,
    latestVersion: (type) => versionsOf(type).length,
    has: (type, version) => {
      const versions = byType.get(type);
      if (!versions) return false;
      return version === undefined || versions[version - 1] !== undefined;
    },
    types: () => [...byType.keys()].sort(),
    schema: (type, version) => lookup(type, version ?? versionsOf(type).length).schema,
    phiPaths: (type, version) => lookup(type, version ?? versionsOf(type).length).phiPaths,
  };
  return registry;
}
