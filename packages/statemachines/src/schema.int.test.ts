/**
 * The tables this package adds, as reviewed (checked-in dump), and the least-privilege role
 * services run as: it can step machines, whose trigger writes jobs and timers as that role, and
 * run workers.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createEnvelope } from '@evident/envelope';
import type { EventStore } from '@evident/eventstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { documentReview } from '../examples/documentReview.js';
import { dumpOwnSchema } from '../scripts/schemaDump.js';
import { clerk, entity, postgresFactory, type StoreFixture } from '../test/fixtures.js';
import { claimMachine } from '../test/machines.js';
import { createDurableMachine, migrateStateMachines } from './index.js';
import { fireTimersNow } from './testing.js';

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
    expect(await migrateStateMachines(owner)).toEqual({ applied: [] });
  });

  it('keeps the trigger condition every append reads back small', async () => {
    // PostgreSQL deserializes a row trigger's WHEN condition at the start of every INSERT into
    // the table, whatever the stream; a list of event types in it cost each append about 6 µs
    // of server time (see 0002).
    const rows = await owner.database.query<{ length: number }>(
      `select length(t.tgqual) as length from pg_trigger t
        where t.tgname = 'machine_effects' and t.tgrelid = $1::regclass`,
      [`"${owner.schema}".events`],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.length).toBeLessThan(600); // 1,236 with the list of types, 419 without
  });

  it('schedules nothing for another event that happens to carry an `effects` field', async () => {
    const stream = { type: 'claim', id: entity('effects-lookalike') };
    await service.append(
      stream,
      [
        createEnvelope({
          type: 'ClaimNoted',
          data: {
            effects: {
              actions: [{ index: 0, type: 'notifyPayer', params: {} }],
              schedule: [{ id: 'recheck', delay: 0, event: { type: 'RECHECK' } }],
            },
          },
          source: 'billing-service',
          actor: clerk,
        }),
      ],
      { expectedVersion: 'no_stream' },
    );
    const jobs = await owner.database.query(
      `select 1 from "${owner.schema}".machine_jobs where entity_id = $1
       union all
       select 1 from "${owner.schema}".machine_timers where entity_id = $1`,
      [stream.id],
    );
    expect(jobs).toEqual([]);
  });

  it('lets the application role step machines, schedule and run jobs and timers', async () => {
    const runs: string[] = [];
    const claims = createDurableMachine(claimMachine, {
      store: service,
      streamType: 'claim',
      actions: { notifyPayer: (job) => void runs.push(job.idempotencyKey) },
    });
    const id = entity('c');
    const result = await claims.send(id, { type: 'ClaimSubmitted', lines: 1 }, { actor: clerk });
    expect(result.actionOutcomes).toEqual([{ type: 'notifyPayer', outcome: 'done' }]);
    expect(runs).toEqual([`claim/${id}/2/0`]);

    const reviews = createDurableMachine(documentReview, {
      store: service,
      streamType: 'document',
    });
    const doc = entity('doc');
    await reviews.send(doc, { type: 'SUBMIT', pages: 1 }, { actor: clerk });
    expect(await fireTimersNow(reviews as never, doc)).toBe(1);
    expect((await reviews.load(doc))!.value).toBe('expired');
  });

  it('does not let the application role remove the record of what ran', async () => {
    await expect(
      service.database.query(`delete from "${owner.schema}".machine_jobs`),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      service.database.query(`truncate "${owner.schema}".machine_timers`),
    ).rejects.toMatchObject({ code: '42501' });
  });
});
