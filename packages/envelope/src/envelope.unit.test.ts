import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clerk } from '../test/claimSchemas.js';
import { assertEnvelope, causedBy, createEnvelope, isEvidentError, newEventId } from './index.js';

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const booked = () =>
  createEnvelope({
    type: 'AppointmentBooked',
    data: { appointmentId: 'apt-1' },
    source: 'scheduling-service',
    actor: { id: 'staff-3', role: 'front-desk' },
    tenantId: 'practice-42',
  });

describe('createEnvelope', () => {
  it('fills in a UUIDv7 id, version 1, the current time and empty metadata', () => {
    const before = Date.now();
    const envelope = createEnvelope({
      type: 'ClaimSubmitted',
      data: { claimId: 'CLM-1' },
      source: 'billing-service',
      actor: clerk,
    });
    expect(envelope.id).toMatch(uuidV7);
    expect(envelope.schemaVersion).toBe(1);
    expect(Date.parse(envelope.occurredAt)).toBeGreaterThanOrEqual(before - 1);
    expect(envelope.metadata).toEqual({});
    expect(envelope).not.toHaveProperty('tenantId');
  });

  it('gives ids that sort in creation order', () => {
    const ids = Array.from({ length: 2_000 }, () => newEventId());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('starts a new workflow: correlation and causation are the event id', () => {
    const envelope = booked();
    expect(envelope.correlationId).toBe(envelope.id);
    expect(envelope.causationId).toBe(envelope.id);
    expect(booked().correlationId).not.toBe(envelope.correlationId);
  });

  it('continues a workflow when given a correlation id', () => {
    const envelope = createEnvelope({
      type: 'ClaimSubmitted',
      data: null,
      source: 'billing-service',
      actor: clerk,
      correlationId: 'journey-9',
    });
    expect(envelope.correlationId).toBe('journey-9');
    expect(envelope.causationId).toBe(envelope.id);
  });

  it('normalizes occurredAt to UTC ISO 8601', () => {
    const envelope = createEnvelope({
      type: 'ClaimSubmitted',
      data: null,
      source: 'billing-service',
      actor: clerk,
      occurredAt: '2025-03-01T09:30:00+02:00',
    });
    expect(envelope.occurredAt).toBe('2025-03-01T07:30:00.000Z');
  });

  it('keeps a supplied id so a retried producer stays idempotent', () => {
    const id = newEventId();
    const input = { type: 'ClaimSubmitted', data: 1, source: 'billing', actor: clerk, id };
    expect(createEnvelope(input).id).toBe(id);
    expect(createEnvelope(input).id).toBe(id);
  });

  it.each([
    ['a type with a space', { type: 'Claim Submitted' }],
    ['an empty source', { source: '' }],
    ['an actor without a role', { actor: { id: 'staff-1' } }],
    ['a day that does not exist', { occurredAt: '2023-02-29T10:00:00Z' }],
    ['an invalid Date', { occurredAt: new Date(Number.NaN) }],
    ['a schema version of 0', { schemaVersion: 0 }],
    ['an id that is not a UUID', { id: 'claim-1' }],
  ])('refuses %s with INVALID_ARGUMENT', (_, override) => {
    const input = { type: 'ClaimSubmitted', data: null, source: 'billing', actor: clerk };
    expect(() => createEnvelope({ ...input, ...override } as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it.each([
    ['2024-02-29', true],
    ['2000-02-29', true],
    ['0004-02-29', true],
    ['1900-02-29', false],
    ['0100-02-29', false],
    ['2023-04-31', false],
    ['2023-12-31', true],
    ['2023-00-10', false],
    ['2023-13-10', false],
    ['2023-01-00', false],
  ])('takes %s as a real day: %s', (day, real) => {
    const input = { type: 'ClaimSubmitted', data: null, source: 'billing', actor: clerk };
    const create = () => createEnvelope({ ...input, occurredAt: `${day}T10:00:00Z` });
    if (real) expect(create().occurredAt).toBe(`${day}T10:00:00.000Z`);
    else expect(create).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('accepts exactly the days of the proleptic Gregorian calendar, in every year 0-9999', () => {
    const two = (n: number) => String(n).padStart(2, '0');
    // The reference: a Date set to the day, which rolls an impossible one into the next month.
    const exists = (year: number, month: number, day: number) => {
      const date = new Date(0);
      date.setUTCFullYear(year, month - 1, day);
      return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.constantFrom('Z', '.5Z', '+05:30', '-11:00'),
        (year, month, day, zone) => {
          const occurredAt = `${String(year).padStart(4, '0')}-${two(month)}-${two(day)}T23:59:59${zone}`;
          const real = month >= 1 && month <= 12 && day >= 1 && exists(year, month, day);
          const input = { type: 'ClaimSubmitted', data: null, source: 'billing', actor: clerk };
          let accepted = true;
          try {
            createEnvelope({ ...input, occurredAt });
            assertEnvelope({ ...booked(), occurredAt });
          } catch {
            accepted = false;
          }
          expect(accepted).toBe(real);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('names the field but never echoes the value it refuses', () => {
    try {
      createEnvelope({ type: 'Jane Roe 1961', data: null, source: 'billing', actor: clerk });
      expect.unreachable();
    } catch (error) {
      expect(isEvidentError(error, 'INVALID_ARGUMENT')).toBe(true);
      expect((error as Error).message).toMatch(/^type must be/);
      expect((error as Error).message).not.toContain('Jane');
    }
  });
});

describe('causedBy', () => {
  it('keeps the correlation id and sets causation to the parent id', () => {
    const parent = booked();
    const child = causedBy(parent, { type: 'EligibilityVerified', data: { coverage: 'active' } });
    expect(child.correlationId).toBe(parent.correlationId);
    expect(child.causationId).toBe(parent.id);
    expect(child.id).not.toBe(parent.id);
  });

  it('inherits the tenant, source and actor unless the child names its own', () => {
    const parent = booked();
    const inherited = causedBy(parent, { type: 'ReminderScheduled', data: null });
    expect(inherited).toMatchObject({
      tenantId: 'practice-42',
      source: 'scheduling-service',
      actor: parent.actor,
    });
    const own = causedBy(parent, {
      type: 'EligibilityVerified',
      data: null,
      source: 'eligibility-service',
      actor: { id: 'svc-elig', role: 'system' },
    });
    expect(own).toMatchObject({
      tenantId: 'practice-42',
      source: 'eligibility-service',
      actor: { id: 'svc-elig', role: 'system' },
    });
  });

  it('chains: a grandchild is caused by the child and stays in the same workflow', () => {
    const root = booked();
    const child = causedBy(root, { type: 'EligibilityVerified', data: null });
    const grandchild = causedBy(child, { type: 'ClaimSubmitted', data: null });
    expect(grandchild.correlationId).toBe(root.id);
    expect(grandchild.causationId).toBe(child.id);
  });
});

describe('assertEnvelope', () => {
  it('returns a well-formed envelope unchanged', () => {
    const envelope = booked();
    expect(assertEnvelope(envelope)).toBe(envelope);
  });

  it.each([
    ['null', null],
    ['an array', []],
    ['an object without data', { ...booked(), data: undefined }],
    ['metadata that is an array', { ...booked(), metadata: [] }],
    [
      'too many metadata keys',
      {
        ...booked(),
        metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])),
      },
    ],
    ['a fractional schema version', { ...booked(), schemaVersion: 1.5 }],
  ])('refuses %s', (_, value) => {
    expect(() => assertEnvelope(value)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
