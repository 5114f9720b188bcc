/**
 * The work table and trigger this package adds, as reviewed (checked-in dump), and the
 * least-privilege role services run as: it can start, run and signal sagas and act on them as an
 * operator, and cannot remove an instance.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { EventStore } from '@evident/eventstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { dumpOwnSchema } from '../scripts/schemaDump.js';
import { postgresFactory, type StoreFixture, sagaId } from '../test/fixtures.js';
import { createSagaRuntime, defineSaga, migrateSagas } from './index.js';

describe.skipIf(!postgresUrl)('schema (PostgreSQL)', () => {
  let fixture: StoreFixture;
  let owner: EventStore;
  let service: EventStore;

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    owner = fixture.store;
    // A service logs in with its own role, granted the store's application role.
    service = await fixture.connectAs('application');
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });

  it('matches the checked-in schema dump, so every schema change shows in review', async () => {
    const checkedIn = await readFile(
      fileURLToPath(new URL('../sql/schema.sql', import.meta.url)),
      'utf8',
    );
    expect(await dumpOwnSchema(postgresUrl!, owner.schema)).toBe(checkedIn);
  });

  it('migrates once: a second run applies nothing', async () => {
    expect(await migrateSagas(owner)).toEqual({ applied: [] });
  });

  it('keeps the trigger condition every append reads back small', async () => {
    // PostgreSQL deserializes a row trigger's WHEN condition at the start of every INSERT into
    // the table, whatever the stream: a list of event types as a text array serialized to
    // 4,860 characters and cost each append about 25 µs of server time (see 0003).
    const rows = await owner.database.query<{ length: number }>(
      `select length(t.tgqual) as length from pg_trigger t
        where t.tgname = 'saga_progress' and t.tgrelid = $1::regclass`,
      [`"${owner.schema}".events`],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.length).toBeLessThan(500); // 4,860 with the list of types
  });

  it('lets the application role start and run sagas, whose trigger keeps the work table as that role', async () => {
    const saga = defineSaga('eligibility-recheck', { version: 1 })
      .step('verifyInsuranceEligibility', { run: () => ({ eb01: '1' }) })
      .waitFor('ConsentSigned', { name: 'consent' });
    const runtime = createSagaRuntime({ store: service, sagas: [saga], workers: false });
    try {
      const id = sagaId('recheck');
      await runtime.start('eligibility-recheck', null, { id });
      await runtime.drain();
      expect(await runtime.get(id)).toMatchObject({
        status: 'waiting',
        waitingFor: 'ConsentSigned',
      });
      await runtime.resolve(id, {
        operator: { id: 'u-42', role: 'operations-lead' },
        reason: 'consent collected on paper at the front desk',
      });
      expect((await runtime.get(id))!.status).toBe('resolved');
    } finally {
      await runtime.stop();
    }
  });

  it('does not let the application role remove an instance', async () => {
    await expect(
      service.database.query(`delete from "${owner.schema}".saga_instances`),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      service.database.query(`truncate "${owner.schema}".saga_instances`),
    ).rejects.toMatchObject({ code: '42501' });
  });
});
