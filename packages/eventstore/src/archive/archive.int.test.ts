import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import {
  events,
  pgliteFactory,
  postgresFactory,
  type StoreFactory,
  type StoreFixture,
  settled,
  stream,
} from '../../test/fixtures.js';
import type { EventStore } from '../eventStore.js';
import type { RecordedEvent } from '../recordedEvent.js';
import { archive } from './archive.js';
import { insertOld, readWholeLog, yearsAgo } from './archiveFixtures.js';
import type { ArchiveManifest } from './manifest.js';
import { openParquet } from './parquet.js';
import { replay } from './replay.js';
import { type ArchiveTarget, createDirectoryTarget } from './target.js';
import { verifyArchive } from './verify.js';

function archiveContract(factory: StoreFactory) {
  let fixture: StoreFixture;
  let store: EventStore;
  let directory: string;
  let target: ArchiveTarget;

  beforeEach(async () => {
    fixture = await factory();
    store = fixture.store;
    directory = await mkdtemp(join(tmpdir(), 'evident-archive-'));
    target = createDirectoryTarget(directory);
  });
  afterEach(async () => {
    await fixture?.cleanup();
    await rm(directory, { recursive: true, force: true });
  });

  const manifestOf = async (run: number): Promise<ArchiveManifest> =>
    JSON.parse(
      await readFile(
        join(directory, `_manifests/run-${String(run).padStart(8, '0')}.json`),
        'utf8',
      ),
    );

  const archivedRows = async (manifest: ArchiveManifest) => {
    const rows = [];
    for (const file of manifest.files) {
      const parquet = openParquet(await readFile(join(directory, file.path)), file.path);
      rows.push(...(await parquet.read(0, parquet.rows)));
    }
    return rows;
  };

  const collect = async (options: Omit<Parameters<typeof replay>[0], 'into'>) => {
    const seen: RecordedEvent[] = [];
    const result = await replay({ ...options, into: (e) => void seen.push(e) });
    return { seen, result };
  };

  /** readAll of a recordedAt window: what a replay of the same window must deliver. */
  const window = (log: RecordedEvent[], from: Date, to: Date, types?: string[]) =>
    log.filter(
      (e) =>
        Date.parse(e.recordedAt) >= from.getTime() &&
        Date.parse(e.recordedAt) < to.getTime() &&
        (!types || types.includes(e.type)),
    );

  it('archives events recorded before the cut-off to Parquet files by type and day, with a manifest', async () => {
    const day = new Date('2019-03-04T10:00:00.000Z');
    await insertOld(store, { stream: stream(), count: 3, recordedAt: day });
    await insertOld(store, {
      stream: stream(),
      type: 'ClaimDenied',
      count: 2,
      recordedAt: new Date('2019-03-05T23:59:59.999Z'),
    });
    const live = await store.append(stream(), events(2), { expectedVersion: 'no_stream' });
    await settled(store, live.checkpoint);

    const result = await archive({ store, target, olderThan: yearsAgo(1) });
    expect(result.run).toBe(0);
    expect(result.events).toBe(5);
    expect(result.files.map((f) => f.path).sort()).toEqual([
      'type=ClaimDenied/date=2019-03-05/part-0-0.parquet',
      'type=ClaimSubmitted/date=2019-03-04/part-0-0.parquet',
    ]);
    const manifest = await manifestOf(0);
    expect(manifest).toMatchObject({
      run: 0,
      events: 5,
      fromCheckpoint: '0000000000000000:0000000000000000',
    });
    expect(manifest.files.map((f) => f.rows).sort()).toEqual([2, 3]);
    for (const file of manifest.files) {
      const bytes = await readFile(join(directory, file.path));
      const { createHash } = await import('node:crypto');
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(file.sha256);
    }
    const log = await readWholeLog(store);
    const rows = await archivedRows(manifest);
    expect(rows.map((r) => r.checkpoint).sort()).toEqual(log.slice(0, 5).map((e) => e.checkpoint));
    expect(result.throughCheckpoint).toBe(log[4]!.checkpoint);
    // Nothing left the store.
    expect(log).toHaveLength(7);
  });

  it('continues where the previous run ended and never writes an event twice', async () => {
    await insertOld(store, { stream: stream(), count: 4, recordedAt: yearsAgo(3) });
    const first = await archive({ store, target, olderThan: yearsAgo(1) });
    expect(first.events).toBe(4);
    await insertOld(store, { stream: stream(), count: 3, recordedAt: yearsAgo(2) });
    const last = await insertOld(store, {
      stream: stream(),
      type: 'ClaimDenied',
      count: 2,
      recordedAt: yearsAgo(3),
    });
    await settled(store, last);
    const second = await archive({ store, target, olderThan: yearsAgo(1), batchSize: 2 });
    expect(second).toMatchObject({ run: 1, events: 5, fromCheckpoint: first.throughCheckpoint });
    const third = await archive({ store, target, olderThan: yearsAgo(1) });
    expect(third).toMatchObject({
      run: null,
      events: 0,
      throughCheckpoint: second.throughCheckpoint,
    });

    const rows = [
      ...(await archivedRows(await manifestOf(0))),
      ...(await archivedRows(await manifestOf(1))),
    ];
    const ids = rows.map((r) => r.eventId);
    expect(new Set(ids).size).toBe(9);
    expect(rows.map((r) => r.checkpoint).sort()).toEqual(
      (await readWholeLog(store)).map((e) => e.checkpoint),
    );
  });

  it('stops at the first event recorded after the cut-off, so the archive is a prefix of the log', async () => {
    await insertOld(store, { stream: stream(), count: 2, recordedAt: yearsAgo(3) });
    await store.append(stream(), events(1), { expectedVersion: 'no_stream' });
    const last = await insertOld(store, { stream: stream(), count: 2, recordedAt: yearsAgo(3) });
    await settled(store, last);
    const result = await archive({ store, target, olderThan: yearsAgo(1) });
    const log = await readWholeLog(store);
    expect(result.events).toBe(2);
    expect(result.throughCheckpoint).toBe(log[1]!.checkpoint);
  });

  it('splits a run over several files when it holds more than rowsPerFile events', async () => {
    const last = await insertOld(store, { stream: stream(), count: 5, recordedAt: yearsAgo(3) });
    await settled(store, last);
    const result = await archive({ store, target, olderThan: yearsAgo(1), rowsPerFile: 2 });
    expect(result.files.map((f) => [f.path.replace(/^.*\//, ''), f.rows])).toEqual([
      ['part-0-0.parquet', 2],
      ['part-0-1.parquet', 2],
      ['part-0-2.parquet', 1],
    ]);
    const { seen } = await collect({ archive: target });
    expect(seen.map((e) => e.checkpoint)).toEqual(
      (await readWholeLog(store)).map((e) => e.checkpoint),
    );
  });

  it('replays a window across the archive and the live store exactly as readAll reads it', async () => {
    const base = yearsAgo(3);
    const at = (days: number) => new Date(base.getTime() + days * 86_400_000);
    await insertOld(store, { stream: stream(), count: 3, recordedAt: at(0) });
    await insertOld(store, { stream: stream(), type: 'ClaimDenied', count: 2, recordedAt: at(1) });
    await insertOld(store, { stream: stream(), count: 2, recordedAt: at(2) });
    await insertOld(store, { stream: stream(), type: 'ClaimDenied', count: 2, recordedAt: at(3) });
    await archive({ store, target, olderThan: at(2) });
    // Not archived: one old stretch after the cut-off and the live appends.
    await insertOld(store, { stream: stream(), count: 2, recordedAt: at(1) });
    const live = await store.append(stream(), events(3), { expectedVersion: 'no_stream' });
    await settled(store, live.checkpoint);
    const log = await readWholeLog(store);

    const from = new Date(at(1).getTime() - 1);
    const to = new Date(Date.now() + 60_000);
    const all = await collect({ store, archive: target, from, to });
    expect(all.seen).toEqual(window(log, from, to));
    expect(all.result).toMatchObject({ events: all.seen.length, fromArchive: 2, fromStore: 9 });

    const denied = await collect({
      store,
      archive: target,
      from: at(0),
      to: at(3),
      types: ['ClaimDenied'],
    });
    expect(denied.seen).toEqual(window(log, at(0), at(3), ['ClaimDenied']));
    expect(denied.seen).toHaveLength(2);

    const everything = await collect({ store, archive: target });
    expect(everything.seen).toEqual(log);
    const archiveOnly = await collect({ archive: target });
    expect(archiveOnly.seen).toEqual(log.slice(0, archiveOnly.seen.length));
    expect(archiveOnly.result.fromArchive).toBe(5);
  });

  it('refuses to replay an archive whose runs do not chain from the start of the log', async () => {
    await insertOld(store, { stream: stream(), count: 2, recordedAt: yearsAgo(3) });
    await archive({ store, target, olderThan: yearsAgo(1) });
    const last = await insertOld(store, { stream: stream(), count: 2, recordedAt: yearsAgo(3) });
    await settled(store, last);
    await archive({ store, target, olderThan: yearsAgo(1) });
    await unlink(join(directory, '_manifests/run-00000000.json'));
    await expect(collect({ store, archive: target })).rejects.toMatchObject({
      code: 'ARCHIVE_INCOMPLETE',
    });
  });

  it('verifies an archive against its checksums and the store, and detects a file altered after archiving', async () => {
    const last = await insertOld(store, { stream: stream(), count: 3, recordedAt: yearsAgo(3) });
    await settled(store, last);
    const { files } = await archive({ store, target, olderThan: yearsAgo(1) });
    const clean = await verifyArchive({ target, store });
    expect(clean).toMatchObject({ ok: true, runs: 1, files: 1, events: 3, verifiedRuns: [0] });

    const path = join(directory, files[0]!.path);
    const bytes = await readFile(path);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    await writeFile(path, bytes);
    const tampered = await verifyArchive({ target, store });
    expect(tampered.ok).toBe(false);
    expect(tampered.problems).toEqual([
      { kind: 'checksum_mismatch', run: 0, path: files[0]!.path },
    ]);
    expect(tampered.verifiedRuns).toEqual([]);
    const [row] = await store.database.query<{ verified_at: unknown }>(
      `select verified_at from "${store.schema}".archive_runs`,
    );
    expect(row!.verified_at).toBeNull();
    await expect(collect({ archive: target })).rejects.toMatchObject({ code: 'ARCHIVE_CORRUPT' });
  });

  it('detects an archived event that differs from the store, without a checksum to catch it', async () => {
    const last = await insertOld(store, { stream: stream(), count: 2, recordedAt: yearsAgo(3) });
    await settled(store, last);
    const result = await archive({ store, target, olderThan: yearsAgo(1) });
    // A forger who rewrites the file and its manifest (but cannot touch the store's record).
    const file = result.files[0]!;
    const parquet = openParquet(await readFile(join(directory, file.path)), file.path);
    const rows = await parquet.read(0, parquet.rows);
    const { encodeParquet } = await import('./parquet.js');
    const forged = encodeParquet([{ ...rows[0]!, data: '{"fee": 0}' }, rows[1]!], 'forger');
    await writeFile(join(directory, file.path), forged);
    const { sha256 } = await import('./manifest.js');
    const manifest = await manifestOf(0);
    const edited = {
      ...manifest,
      files: [{ ...file, sha256: sha256(forged), bytes: forged.byteLength }],
    };
    await writeFile(join(directory, '_manifests/run-00000000.json'), JSON.stringify(edited));
    const verification = await verifyArchive({ target, store });
    expect(verification.problems.map((p) => p.kind).sort()).toEqual([
      'event_mismatch',
      'manifest_mismatch',
    ]);
    // Against itself only, the forgery is consistent: the store is what catches it.
    expect((await verifyArchive({ target })).ok).toBe(true);
  });

  it('archives nothing and records no run when no event is older than the cut-off', async () => {
    const live = await store.append(stream(), events(2), { expectedVersion: 'no_stream' });
    await settled(store, live.checkpoint);
    const result = await archive({ store, target, olderThan: yearsAgo(1) });
    expect(result).toMatchObject({ run: null, events: 0, files: [], manifestPath: null });
    expect(await target.list('_manifests/')).toEqual([]);
  });

  it('rejects bad options at the boundary', async () => {
    await expect(archive({ store, target, olderThan: new Date('nope') })).rejects.toThrow(
      /olderThan must be a valid Date/,
    );
    await expect(archive({ store, target, olderThan: new Date(), batchSize: 0 })).rejects.toThrow(
      /batchSize/,
    );
    await expect(replay({ into: () => {} })).rejects.toThrow(/store, an archive, or both/);
    await expect(
      replay({ archive: target, into: () => {}, from: new Date(2), to: new Date(1) }),
    ).rejects.toThrow(/to must be after from/);
    await expect(target.get('../etc/passwd')).rejects.toMatchObject({ code: 'ARCHIVE_CORRUPT' });
  });
}

describe.skipIf(!postgresUrl)('archive and replay on PostgreSQL', () => {
  archiveContract(postgresFactory(postgresUrl!));
});

describe('archive and replay on PGlite', () => {
  archiveContract(pgliteFactory());
});
