/**
 * The base error of every Evident package.
 *
 * Each package declares the codes it throws as a literal union and extends this class only where a
 * caller branches on the error (for example `ConcurrencyError`). Guards compare `code` through a
 * registry-wide brand rather than `instanceof`, so two copies of a package in one process agree.
 *
 * Messages never carry payload values: they may be PHI.
 */

import type { CompatibilityChange } from './compatibility.js';

const brand = Symbol.for('@evident/error');

/**
 * Codes thrown by @evident/envelope. Other packages declare their own and reuse
 * `INVALID_ARGUMENT` for bad arguments.
 *
 * @example
 * ```ts
 * const httpStatus = (code: EnvelopeErrorCode) => (code === 'PAYLOAD_TOO_LARGE' ? 413 : 422);
 * ```
 */
export type EnvelopeErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_ENVELOPE'
  | 'SCHEMA_INVALID'
  | 'SCHEMA_NOT_FOUND'
  | 'SCHEMA_VALIDATION_FAILED'
  | 'SCHEMA_INCOMPATIBLE'
  | 'UPCAST_FAILED'
  | 'PAYLOAD_TOO_LARGE'
  | 'PAYLOAD_TOO_DEEP'
  | 'PAYLOAD_MALFORMED'
  | 'PAYLOAD_UNSAFE_KEY';

/**
 * Options every Evident error takes.
 *
 * @example
 * ```ts
 * throw new EvidentError('SCHEMA_NOT_FOUND', 'no schema for ClaimSubmitted', { cause: error });
 * ```
 */
export interface EvidentErrorOptions {
  /** The error that led to this one, kept for debugging (never shown to end users). */
  readonly cause?: unknown;
}

/**
 * Base error with a machine-readable `code`.
 *
 * @example
 * ```ts
 * try {
 *   registry.validate(envelope);
 * } catch (error) {
 *   if (isEvidentError(error, 'SCHEMA_VALIDATION_FAILED')) respondWith422(error.code);
 *   else throw error;
 * }
 * ```
 */
export class EvidentError<Code extends string = string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options: EvidentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    Object.defineProperty(this, brand, { value: true, enumerable: false });
  }
}

/**
 * True when `error` is an Evident error, optionally with one of the given codes. Works across
 * duplicated copies of the package because it checks a global brand and the code, not the class.
 * (A `structuredClone`d error loses both; re-create errors that cross a worker boundary.)
 *
 * @example
 * ```ts
 * if (isEvidentError(error, 'SCHEMA_NOT_FOUND')) skipUnknownEvent();
 * ```
 */
export function isEvidentError<Code extends string = string>(
  error: unknown,
  ...codes: readonly Code[]
): error is EvidentError<Code> {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as Record<symbol, unknown>)[brand] !== true) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  return codes.length === 0 || (codes as readonly string[]).includes(code);
}

/**
 * A caller passed a value the API cannot accept; the message names the argument and the rule,
 * never the value. Code `INVALID_ARGUMENT`; other packages throw it too.
 *
 * @example
 * ```ts
 * if (!Number.isSafeInteger(version)) {
 *   throw new InvalidArgumentError('version must be a positive integer; got a string');
 * }
 * ```
 */
export class InvalidArgumentError extends EvidentError<'INVALID_ARGUMENT'> {
  constructor(message: string, options?: EvidentErrorOptions) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/**
 * One reason a payload failed its schema: where, and which rule — never the value.
 *
 * @example
 * ```ts
 * const issue: SchemaIssue = {
 *   path: '/serviceLines/0/code',
 *   keyword: 'pattern',
 *   reason: 'must match pattern "^D[0-9]{4}$"',
 *   params: { pattern: '^D[0-9]{4}$' },
 * };
 * ```
 */
export interface SchemaIssue {
  /**
   * JSON Pointer into the payload, e.g. `/patient/dateOfBirth`. A key that the schema does not
   * name (a map key, which may itself be PHI) is shown as `*`.
   */
  readonly path: string;
  /** The rule that failed, e.g. `required`, `type`, `maxLength`. */
  readonly keyword: string;
  /** A value-free explanation, e.g. `must have required property 'memberId'`. */
  readonly reason: string;
  /**
   * Details taken from the schema, never from the payload: `limit`, `allowedValues`,
   * `missingProperty`, `pattern`, `type`, …
   */
  readonly params?: Readonly<Record<string, unknown>>;
}

/**
 * A payload does not match the schema registered for its type and version. `issues` carry JSON
 * paths and reasons; the message sums up the first one. Neither ever holds a payload value.
 *
 * @example
 * ```ts
 * try {
 *   registry.validate(envelope);
 * } catch (error) {
 *   if (!isSchemaValidationError(error)) throw error;
 *   reply(422, { code: error.code, issues: error.issues });
 * }
 * ```
 */
export class SchemaValidationError extends EvidentError<'SCHEMA_VALIDATION_FAILED'> {
  readonly eventType: string;
  readonly schemaVersion: number;
  readonly issues: readonly SchemaIssue[];

  constructor(eventType: string, schemaVersion: number, issues: readonly SchemaIssue[]) {
    const first = issues[0];
    const detail = first ? `: ${first.path || '/'} ${first.reason}` : '';
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    super(
      'SCHEMA_VALIDATION_FAILED',
      `${eventType} v${schemaVersion} failed validation${detail}${more}`,
    );
    this.eventType = eventType;
    this.schemaVersion = schemaVersion;
    this.issues = issues;
  }

  /** Path of the first failing location (JSON Pointer). */
  get path(): string {
    return this.issues[0]?.path ?? '';
  }

  /** Reason of the first failure. */
  get reason(): string {
    return this.issues[0]?.reason ?? '';
  }
}

/**
 * `true` when `error` is a {@link SchemaValidationError} from any copy of this package.
 *
 * @example
 * ```ts
 * if (isSchemaValidationError(error)) console.error(error.path, error.reason);
 * ```
 */
export function isSchemaValidationError(error: unknown): error is SchemaValidationError {
  return isEvidentError(error, 'SCHEMA_VALIDATION_FAILED');
}

/**
 * A schema was refused at registration: it is not valid JSON Schema in ajv's strict mode, or it
 * could make validation slow (`$data`, an unsafe or unbounded `pattern`).
 *
 * @example
 * ```ts
 * try {
 *   registry.register('ClaimSubmitted', { version: 1, schema });
 * } catch (error) {
 *   if (isEvidentError(error, 'SCHEMA_INVALID')) console.error(error.message); // names the path
 *   throw error;
 * }
 * ```
 */
export class InvalidSchemaError extends EvidentError<'SCHEMA_INVALID'> {
  readonly eventType: string;
  readonly schemaVersion: number;
  /** JSON Pointer into the schema, e.g. `/properties/memberId/pattern`; `''` when not known. */
  readonly schemaPath: string;

  constructor(
    eventType: string,
    schemaVersion: number,
    schemaPath: string,
    reason: string,
    options?: EvidentErrorOptions,
  ) {
    super(
      'SCHEMA_INVALID',
      `${eventType} v${schemaVersion} schema refused at ${schemaPath || '/'}: ${reason}`,
      options,
    );
    this.eventType = eventType;
    this.schemaVersion = schemaVersion;
    this.schemaPath = schemaPath;
  }
}

/**
 * A new schema version would break payloads written with the previous one and no upcaster was
 * given to migrate them. `changes` lists every breaking change with its payload path.
 *
 * @example
 * ```ts
 * try {
 *   registry.register('ClaimSubmitted', { version: 3, schema: withoutPayerId });
 * } catch (error) {
 *   if (!isSchemaIncompatibleError(error)) throw error;
 *   for (const change of error.changes) console.error(change.path, change.message);
 * }
 * ```
 */
export class SchemaIncompatibleError extends EvidentError<'SCHEMA_INCOMPATIBLE'> {
  readonly eventType: string;
  readonly schemaVersion: number;
  /** The breaking changes, each with its JSON Pointer into the payload. */
  readonly changes: readonly CompatibilityChange[];

  constructor(eventType: string, schemaVersion: number, changes: readonly CompatibilityChange[]) {
    const shown = changes.slice(0, 5).map((change) => change.message);
    const more = changes.length > shown.length ? `; and ${changes.length - shown.length} more` : '';
    super(
      'SCHEMA_INCOMPATIBLE',
      `${eventType} v${schemaVersion} breaks payloads of v${schemaVersion - 1} and has no upcaster: ` +
        `${shown.join('; ')}${more}`,
    );
    this.eventType = eventType;
    this.schemaVersion = schemaVersion;
    this.changes = changes;
  }
}

/**
 * `true` when `error` is a {@link SchemaIncompatibleError} from any copy of this package.
 *
 * @example
 * ```ts
 * if (isSchemaIncompatibleError(error)) for (const c of error.changes) console.error(c.message);
 * ```
 */
export function isSchemaIncompatibleError(error: unknown): error is SchemaIncompatibleError {
  return isEvidentError(error, 'SCHEMA_INCOMPATIBLE');
}

/**
 * Upcasting a payload from one version to the next failed: the upcaster threw, returned something
 * that is not plain JSON, or returned data that does not match the next version. `issues` say
 * where; the payload is never quoted. When the upcaster threw, its error is the `cause`.
 *
 * @example
 * ```ts
 * try {
 *   registry.upcast(stored);
 * } catch (error) {
 *   if (isUpcastError(error)) deadLetter(stored.id, error.fromVersion, error.issues);
 *   else throw error;
 * }
 * ```
 */
export class UpcastError extends EvidentError<'UPCAST_FAILED'> {
  readonly eventType: string;
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly issues: readonly SchemaIssue[];

  constructor(
    eventType: string,
    fromVersion: number,
    toVersion: number,
    issues: readonly SchemaIssue[],
    options?: EvidentErrorOptions,
  ) {
    const first = issues[0];
    const detail = first
      ? `: ${first.path || '/'} ${first.reason}`
      : options?.cause === undefined
        ? ''
        : ': the upcaster threw (see cause)';
    super(
      'UPCAST_FAILED',
      `upcasting ${eventType} from v${fromVersion} to v${toVersion} failed${detail}`,
      options,
    );
    this.eventType = eventType;
    this.fromVersion = fromVersion;
    this.toVersion = toVersion;
    this.issues = issues;
  }
}

/**
 * `true` when `error` is an {@link UpcastError} from any copy of this package.
 *
 * @example
 * ```ts
 * if (isUpcastError(error)) console.error(error.eventType, error.fromVersion, error.issues);
 * ```
 */
export function isUpcastError(error: unknown): error is UpcastError {
  return isEvidentError(error, 'UPCAST_FAILED');
}
