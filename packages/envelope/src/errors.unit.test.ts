import { describe, expect, it } from 'vitest';
import {
  EvidentError,
  InvalidArgumentError,
  isEvidentError,
  isSchemaIncompatibleError,
  isSchemaValidationError,
  isUpcastError,
  PayloadError,
  SchemaIncompatibleError,
  SchemaValidationError,
  UpcastError,
} from './index.js';

/** What an EvidentError from a second copy of the package looks like to this copy. */
function fromAnotherCopy(code: string): unknown {
  class OtherCopyError extends Error {
    readonly code = code;
  }
  const error = new OtherCopyError('from a duplicated dependency');
  Object.defineProperty(error, Symbol.for('@evident/error'), { value: true });
  return error;
}

describe('EvidentError', () => {
  it('keeps code, name, message and cause', () => {
    const cause = new Error('socket hang up');
    const error = new EvidentError('SCHEMA_NOT_FOUND', 'no schema', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('SCHEMA_NOT_FOUND');
    expect(error.name).toBe('EvidentError');
    expect(error.message).toBe('no schema');
    expect(error.cause).toBe(cause);
  });

  it('names subclasses after themselves', () => {
    expect(new InvalidArgumentError('x').name).toBe('InvalidArgumentError');
    expect(new PayloadError('PAYLOAD_TOO_DEEP', 'x').name).toBe('PayloadError');
  });

  it('leaves cause unset when none is given', () => {
    expect(Object.hasOwn(new EvidentError('X', 'x'), 'cause')).toBe(false);
  });
});

describe('isEvidentError', () => {
  it('recognizes any Evident error, and filters by code when codes are given', () => {
    const error = new InvalidArgumentError('bad');
    expect(isEvidentError(error)).toBe(true);
    expect(isEvidentError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect(isEvidentError(error, 'SCHEMA_NOT_FOUND', 'INVALID_ARGUMENT')).toBe(true);
    expect(isEvidentError(error, 'SCHEMA_NOT_FOUND')).toBe(false);
  });

  it('agrees with an error thrown by another copy of the package, by brand and code', () => {
    const foreign = fromAnotherCopy('CONCURRENCY_CONFLICT');
    expect(foreign).not.toBeInstanceOf(EvidentError);
    expect(isEvidentError(foreign)).toBe(true);
    expect(isEvidentError(foreign, 'CONCURRENCY_CONFLICT')).toBe(true);
    expect(isSchemaValidationError(fromAnotherCopy('SCHEMA_VALIDATION_FAILED'))).toBe(true);
    expect(isSchemaIncompatibleError(fromAnotherCopy('SCHEMA_INCOMPATIBLE'))).toBe(true);
    expect(isUpcastError(fromAnotherCopy('UPCAST_FAILED'))).toBe(true);
  });

  it('refuses look-alikes without the brand, and non-objects', () => {
    expect(isEvidentError({ code: 'INVALID_ARGUMENT', message: 'x' })).toBe(false);
    expect(isEvidentError(Object.assign(new Error('x'), { code: 'INVALID_ARGUMENT' }))).toBe(false);
    expect(isEvidentError(null)).toBe(false);
    expect(isEvidentError('INVALID_ARGUMENT')).toBe(false);
  });

  it('refuses a branded object whose code is not a string', () => {
    const odd = { code: 42 };
    Object.defineProperty(odd, Symbol.for('@evident/error'), { value: true });
    expect(isEvidentError(odd)).toBe(false);
  });

  it('does not survive structuredClone, which drops the brand and the code', () => {
    // Errors crossing a worker or process boundary must be re-created from their code.
    const cloned = structuredClone(new InvalidArgumentError('bad'));
    expect(isEvidentError(cloned)).toBe(false);
  });
});

describe('schema errors', () => {
  it('sums up a validation failure by its first issue', () => {
    const error = new SchemaValidationError('ClaimSubmitted', 2, [
      {
        path: '/serviceLines/0/code',
        keyword: 'pattern',
        reason: 'must match pattern "^D[0-9]{4}$"',
      },
      { path: '/payerId', keyword: 'required', reason: "must have required property 'payerId'" },
    ]);
    expect(error.message).toBe(
      'ClaimSubmitted v2 failed validation: /serviceLines/0/code must match pattern "^D[0-9]{4}$" (and 1 more)',
    );
    expect(error.path).toBe('/serviceLines/0/code');
    expect(error.reason).toBe('must match pattern "^D[0-9]{4}$"');
  });

  it('lists at most five breaking changes in the message but keeps them all', () => {
    const changes = Array.from({ length: 7 }, (_, i) => ({
      kind: 'field-removed' as const,
      path: `/f${i}`,
      breaking: true,
      message: `/f${i} removed`,
    }));
    const error = new SchemaIncompatibleError('ClaimSubmitted', 3, changes);
    expect(error.message).toBe(
      'ClaimSubmitted v3 breaks payloads of v2 and has no upcaster: /f0 removed; /f1 removed; /f2 removed; /f3 removed; /f4 removed; and 2 more',
    );
    expect(error.changes).toHaveLength(7);
  });

  it('points an upcast failure at its cause when the upcaster threw', () => {
    const cause = new TypeError('fee is undefined');
    const error = new UpcastError('ClaimSubmitted', 1, 2, [], { cause });
    expect(error.message).toBe(
      'upcasting ClaimSubmitted from v1 to v2 failed: the upcaster threw (see cause)',
    );
    expect(error.cause).toBe(cause);
  });
});
