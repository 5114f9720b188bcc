import { InvalidArgumentError } from '@evident/envelope';

/**
 * A stream is named by its type (the kind of entity) and the entity's id:
 * `{ type: 'claim', id: 'c-123' }`.
 */
export interface StreamId {
  readonly type: string;
  readonly id: string;
}

// ASCII only, so look-alike characters (Cyrillic 'а', zero-width joiners) cannot create two
// streams that read the same; lengths in characters equal bytes.
export const streamTypePattern = /^[a-z][a-z0-9_.:-]*$/;
const streamIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/;
const identifierPattern = /^[a-z_][a-z0-9_]*$/;

export const streamIdLimits = { type: 63, id: 128 } as const;

function describe(value: unknown): string {
  return typeof value === 'string' ? `a string of ${value.length} characters` : typeof value;
}

/**
 * Check a stream name against the allow-list. Values are never echoed: an id can identify a
 * patient.
 *
 * @throws InvalidArgumentError
 */
export function assertStreamId(stream: unknown): StreamId {
  if (typeof stream !== 'object' || stream === null) {
    throw new InvalidArgumentError(`stream must be { type, id }; got ${describe(stream)}`);
  }
  const { type, id } = stream as Record<string, unknown>;
  if (
    typeof type !== 'string' ||
    type.length > streamIdLimits.type ||
    !streamTypePattern.test(type)
  ) {
    throw new InvalidArgumentError(
      `stream type must be 1-${streamIdLimits.type} characters of a-z, 0-9, _ . : - starting with a letter; got ${describe(type)}`,
    );
  }
  if (typeof id !== 'string' || id.length > streamIdLimits.id || !streamIdPattern.test(id)) {
    throw new InvalidArgumentError(
      `stream id must be 1-${streamIdLimits.id} characters of A-Z, a-z, 0-9, _ . : @ - starting with a letter or digit; got ${describe(id)}`,
    );
  }
  return stream as StreamId;
}

/**
 * Check a PostgreSQL identifier we create (schema and role names): lower-case ASCII, at most 48
 * characters so derived names (`<schema>_app`) stay under PostgreSQL's 63-byte limit.
 *
 * @throws InvalidArgumentError
 */
export function assertIdentifier(what: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 48 || !identifierPattern.test(value)) {
    throw new InvalidArgumentError(
      `${what} must be 1-48 characters of a-z, 0-9 and _ starting with a letter or _; got ${describe(value)}`,
    );
  }
  return value;
}

/** Quote an identifier for SQL (after it passed the allow-list, this is belt and braces). */
export function quoteIdentifier(value: string): string {
  return `"${value.replace(/"/g, '""')}"`;
}
