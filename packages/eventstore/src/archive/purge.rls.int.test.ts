import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { dropSchema, stream, uniqueSchema } from '../../test/fixtures.js';
import { createEventStore, type EventStore } from '../eventStore.js';
import { auditorRole } from '../migrations.js';
import { archive } from './archive.js';
import { insertOld, yearsAgo } from './archiveFixtures.js';
import { purgeArchived, setRetentionPolicy } from './purge.js';
import { createDirectoryTarget } from './target.js';
import { verifyArchive } from './verify.js';

/**
 * The production arrangement: the schema belongs to a role that is not a superuser, so forced
 * row-level security shows it one tenant at a time; the auditor archives and verifies, the owner
 * purges.
 */
describe.skipIf(!postgresUrl)('purging as an owner held to row-level security', () => {
  const schema = uniqueSchema('rls');
  const owner = `${schema}_owner`;
  const auditorLogin = `${schema}_audit`;
  let admin: pg.Client;
  const pools: pg.Pool[] = [];
  let ownerStore: EventStore;
  let auditorStore: EventStore;
  let directory: string;
  const held = { p1old: stream(), p2old: stream(), untenanted: stream(), p1recent: stream() };

  const as = (login: string) => {
    const url = new URL(postgresUrl!);
    url.username = login;
    const pool = new pg.Pool({ connectionString: url.toString(), max: 3 });
    pools.push(pool);
    return createEventStore({ pool, schema });
  };

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: postgresUrl! });
    await admin.connect();
    const database = decodeURIComponent(new URL(postgresUrl!).pathname.slice(1));
    await admin.query(`create role "${owner}" login createrole`);
    await admin.query(`grant create on database "${database}" to "${owner}"`);
    ownerStore = as(owner);
    await ownerStore.migrate();
    await admin.query(`create role "${auditorLogin}" login in role "${auditorRole(schema)}"`);
    auditorStore = as(auditorLogin);
    directory = await mkdtemp(join(tmpdir(), 'evident-rls-'));

    await insertOld(ownerStore, {
      stream: held.p1old,
      count: 2,
      recordedAt: yearsAgo(8),
      tenant: 'practice-1',
    });
    await insertOld(ownerStore, {
      stream: held.p2old,
      count: 3,
      recordedAt: yearsAgo(9),
      tenant: 'practice-2',
    });
    await insertOld(ownerStore, { stream: held.untenanted, count: 1, recordedAt: yearsAgo(8) });
    await insertOld(ownerStore, {
      stream: held.p1recent,
      count: 2,
      recordedAt: yearsAgo(2),
      tenant: 'practice-1',
    });
  });
  afterAll(async () => {
    for (const pool of pools) await pool.end();
    await dropSchema(postgresUrl!, schema);
    for (const role of [auditorLogin, owner]) {
      await admin.query(`drop owned by "${role}"`).catch(() => {});
      await admin.query(`drop role if exists "${role}"`);
    }
    await admin?.end();
    await rm(directory, { recursive: true, force: true });
  });

  const remaining = async () =>
    (
      await admin.query<{ stream_id: string; n: string }>(
        `select stream_id, count(*) as n from "${schema}".events group by stream_id`,
      )
    ).rows
      .map((r) => [r.stream_id, Number(r.n)])
      .sort();

  it("the owner cannot archive or verify every tenant's events; the auditor can", async () => {
    const target = createDirectoryTarget(directory);
    await expect(
      archive({ store: ownerStore, target, olderThan: yearsAgo(1) }),
    ).rejects.toMatchObject({
      code: 'ARCHIVE_NOT_PERMITTED',
    });
    expect((await archive({ store: auditorStore, target, olderThan: yearsAgo(1) })).events).toBe(8);
    await expect(verifyArchive({ target, store: ownerStore })).rejects.toMatchObject({
      code: 'ARCHIVE_NOT_PERMITTED',
    });
    expect(await verifyArchive({ target, store: auditorStore })).toMatchObject({
      ok: true,
      verifiedRuns: [0],
    });
  });

  it("purges every tenant's expired streams, one tenant at a time, and nothing else", async () => {
    await setRetentionPolicy(ownerStore, { purgeAllowed: true });
    expect(await purgeArchived({ store: ownerStore, streamsPerTransaction: 2 })).toEqual({
      streams: 3,
      events: 6,
    });
    expect(await remaining()).toEqual([[held.p1recent.id, 2]]);
  });
});
