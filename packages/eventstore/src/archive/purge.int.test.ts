import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import {
  events,
  postgresFactory,
  type StoreFixture,
  settled,
  stream,
} from '../../test/fixtures.js';
import type { EventStore } from '../eventStore.js';
import { createEventStore } from '../eventStore.js';
import { verifyAll } from '../integrity.js';
import { applicationRole } from '../migrations.js';
import type { RecordedEvent } from '../recordedEvent.js';
import { archive } from './archive.js';
import { insertOld, readWholeLog, yearsAgo } from './archiveFixtures.js';
import { getRetentionPolicy, purgeArchived, setRetentionPolicy } from './purge.js';
import { replay } from './replay.js';
import { type ArchiveTarget, createDirectoryTarget } from './target.js';
import { verifyArchive } from './verify.js';

/**
 * The one way events leave the store. Setup, in log order: A (8 years old, 3 events), B (2 years
 * old, inside retention), C (live), then D (8 years old, after the archive's end: not archived).
 */
describe.skipIf(!postgresUrl)('purging archived events on PostgreSQL', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  let directory: string;
  let target: ArchiveTarget;
  let login: string;
  let appPool: pg.Pool;
  const a = stream();
  const b = stream();
  const d = stream();
  let before: RecordedEvent[];

  const table = () => `"${store.schema}".events`;
  const count = async (s: { type: string; id: string }) =>
    Number(
      (
        await store.database.query<{ n: string }>(
          `select count(*) as n from ${table()} where stream_type = $1 and stream_id = $2`,
          [s.type, s.id],
        )
      )[0]!.n,
    );

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    directory = await mkdtemp(join(tmpdir(), 'evident-purge-'));
    target = createDirectoryTarget(directory);
    await insertOld(store, { stream: a, count: 3, recordedAt: yearsAgo(8) });
    await insertOld(store, { stream: b, count: 2, recordedAt: yearsAgo(2) });
    const live = await store.append(stream(), events(1), { expectedVersion: 'no_stream' });
    await settled(store, live.checkpoint);
    await archive({ store, target, olderThan: yearsAgo(1) });
    const last = await insertOld(store, { stream: d, count: 2, recordedAt: yearsAgo(8) });
    await settled(store, last);
    before = await readWholeLog(store);

    login = `${store.schema}_svc`;
    await store.database.query(
      `create role "${login}" login in role "${applicationRole(store.schema)}"`,
    );
    const url = new URL(postgresUrl!);
    url.username = login;
    appPool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  });
  afterAll(async () => {
    await appPool?.end();
    await store?.database.query(`drop role if exists "${login}"`);
    await fixture?.cleanup();
    await rm(directory, { recursive: true, force: true });
  });

  it('keeps everything while the retention policy does not allow purging (the default)', async () => {
    expect(await getRetentionPolicy(store)).toMatchObject({
      retainFor: '7 years',
      purgeAllowed: false,
    });
    await expect(purgeArchived({ store })).rejects.toMatchObject({ code: 'PURGE_NOT_ALLOWED' });
    expect(await count(a)).toBe(3);
  });

  it('purges nothing until the archive holding the events has been verified', async () => {
    await setRetentionPolicy(store, { purgeAllowed: true });
    expect(await purgeArchived({ store })).toEqual({ streams: 0, events: 0 });
    expect(await count(a)).toBe(3);
  });

  it('refuses a hand-written DELETE, even by the owner with the purge flag set', async () => {
    await verifyArchive({ target, store });
    for (const s of [b, d]) {
      await expect(
        store.database.transaction(async (tx) => {
          await tx.query("select set_config('evident.purge', 'on', true)");
          await tx.query(`delete from ${table()} where stream_type = $1 and stream_id = $2`, [
            s.type,
            s.id,
          ]);
        }),
      ).rejects.toMatchObject({ code: 'EV001' });
    }
    // Eligible rows, but without the purge's flag: refused too.
    await expect(
      store.database.query(`delete from ${table()} where stream_type = $1 and stream_id = $2`, [
        a.type,
        a.id,
      ]),
    ).rejects.toMatchObject({ code: 'EV001' });
    await expect(store.database.query(`truncate ${table()}`)).rejects.toMatchObject({
      code: 'EV001',
    });
    expect([await count(a), await count(b), await count(d)]).toEqual([3, 2, 2]);
  });

  it('does not let the application role purge, change the policy or delete at all', async () => {
    await expect(
      appPool.query(`select * from "${store.schema}".purge_archived_events(10)`),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(appPool.query(`delete from ${table()}`)).rejects.toMatchObject({ code: '42501' });
    const appStore = createEventStore({ pool: appPool, schema: store.schema });
    await expect(purgeArchived({ store: appStore })).rejects.toMatchObject({
      code: 'PURGE_NOT_PERMITTED',
    });
    await expect(setRetentionPolicy(appStore, { retainFor: '1 day' })).rejects.toMatchObject({
      code: 'PURGE_NOT_PERMITTED',
    });
    expect(await count(a)).toBe(3);
  });

  it('purges only whole streams past retention that a verified archive holds, and logs the purge', async () => {
    const result = await purgeArchived({ store, target });
    expect(result).toEqual({ streams: 1, events: 3 });
    expect([await count(a), await count(b), await count(d)]).toEqual([0, 2, 2]);
    const [log] = await store.database.query<{ events: string; purged_by: string }>(
      `select events, purged_by from "${store.schema}".archive_purges`,
    );
    expect(log).toMatchObject({ events: '3', purged_by: expect.any(String) });
    const [purged] = await store.database.query<{ version: string }>(
      `select version from "${store.schema}".purged_streams where stream_id = $1`,
      [a.id],
    );
    expect(purged).toEqual({ version: '3' });
    // A whole stream purged on purpose is not a broken hash chain. (The fixture's hand-inserted
    // streams carry no hashes and show as unchained; they are not the point here.)
    const broken = (await verifyAll(store)).broken;
    expect(broken.filter((link) => link.stream.id === a.id)).toEqual([]);
    expect(broken.every((link) => link.reason === 'unchained')).toBe(true);
    // Appending to a purged stream continues its versions: its id is never reused.
    await expect(
      store.append(a, events(1), { expectedVersion: 'no_stream' }),
    ).rejects.toMatchObject({
      code: 'CONCURRENCY_CONFLICT',
    });
  });

  it('replays the purged events from the archive, the rest from the store, as before the purge', async () => {
    const seen: RecordedEvent[] = [];
    await replay({ store, archive: target, into: (e) => void seen.push(e) });
    expect(seen).toEqual(before);
    // Without the archive, the store alone would miss them: refused rather than silently short.
    await expect(replay({ store, into: () => {} })).rejects.toMatchObject({
      code: 'ARCHIVE_INCOMPLETE',
    });
  });

  it('refuses to purge when the archive fails verification', async () => {
    await setRetentionPolicy(store, { retainFor: '1 year' });
    const { writeFile, readdir } = await import('node:fs/promises');
    const folder = (await readdir(directory)).find((f) => f.startsWith('type='))!;
    const day = (await readdir(join(directory, folder)))[0]!;
    const file = (await readdir(join(directory, folder, day)))[0]!;
    await writeFile(join(directory, folder, day, file), 'not parquet');
    await expect(purgeArchived({ store, target })).rejects.toMatchObject({
      code: 'ARCHIVE_CORRUPT',
    });
    // The failed verification withdrew the mark: the purge function itself refuses now.
    expect(await purgeArchived({ store })).toEqual({ streams: 0, events: 0 });
    expect(await count(b)).toBe(2);
  });
});
