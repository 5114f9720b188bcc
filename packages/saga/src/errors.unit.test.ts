import { EvidentError } from '@evident/envelope';
import { describe, expect, it } from 'vitest';
import { recordError } from './errors.js';
import {
  IllegalCompensationError,
  isIllegalCompensationError,
  isSagaError,
  isSagaTimeoutError,
  SagaError,
  SagaTimeoutError,
} from './index.js';

describe('errors', () => {
  it('carry a literal code, a name and their cause', () => {
    const cause = new Error('socket hang up');
    const error = new SagaError('SAGA_NOT_FOUND', 'no saga instance with that id', { cause });
    expect(error).toMatchObject({ code: 'SAGA_NOT_FOUND', name: 'SagaError', cause });
    expect(new SagaTimeoutError('attempt', 'eligibility', 30_000)).toMatchObject({
      name: 'SagaTimeoutError',
      code: 'SAGA_TIMEOUT',
      scope: 'attempt',
      timeoutMs: 30_000,
      message: 'attempt eligibility timed out after 30000 ms',
    });
  });

  it('are recognized by code, so a second copy of the package agrees', () => {
    // What another copy's errors look like here: Evident errors with the same codes.
    const foreignTimeout = new EvidentError('SAGA_TIMEOUT', 'elsewhere');
    const foreignIllegal = new EvidentError('COMPENSATION_ILLEGAL', 'elsewhere');
    expect(isSagaTimeoutError(foreignTimeout)).toBe(true);
    expect(isIllegalCompensationError(foreignIllegal)).toBe(true);
    expect(isSagaError(foreignTimeout)).toBe(true);
    expect(isSagaError(foreignTimeout, 'SAGA_NOT_FOUND')).toBe(false);
    expect(isSagaError(new EvidentError('CONCURRENCY_CONFLICT', 'x'))).toBe(false);
    expect(isSagaError(new Error('plain'))).toBe(false);
    expect(
      isIllegalCompensationError(new IllegalCompensationError('assign', 'closed', 'pending')),
    ).toBe(true);
  });

  it('are recorded without stack or payload, messages cut to 500 characters', () => {
    const recorded = recordError(
      Object.assign(new Error('x'.repeat(2000)), { code: 'A7', detail: { ssn: '1' } }),
    );
    expect(recorded).toEqual({ name: 'Error', code: 'A7', message: 'x'.repeat(500) });
    expect(recordError('a string')).toEqual({
      name: 'NonError',
      message: 'a non-error was thrown (string)',
    });
  });
});
