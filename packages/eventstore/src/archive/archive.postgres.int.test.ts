import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { event, postgresFactory, type StoreFixture, settled, stream } from '../../test/fixtures.js';
import { createEventStore, type EventStore } from '../eventStore.js';
import { applicationRole, auditorRole } from '../migrations.js';
import type { RecordedEvent } from '../recordedEvent.js';
import { archive } from './archive.js';
import { insertOld, yearsAgo } from './archiveFixtures.js';
import { replay } from './replay.js';
import { type ArchivedRowSql, archivedRowColumns, dayOf, fromSql } from './rows.js';
import { type ArchiveTarget, createDirectoryTarget } from './target.js';

describe.skipIf(!postgresUrl)('archive files, roles and tenants on PostgreSQL', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  let directory: string;
  let target: ArchiveTarget;
  const roles: string[] = [];
  const pools: pg.Pool[] = [];

  /** A store connected as a new login role granted `role`. */
  const storeAs = async (role: string, tenant?: string) => {
    const login = `${store.schema}_l${roles.length}`;
    roles.push(login);
    await store.database.query(`create role "${login}" login in role "${role}"`);
    const url = new URL(postgresUrl!);
    url.username = login;
    const pool = new pg.Pool({ connectionString: url.toString(), max: 3 });
    pools.push(pool);
    return createEventStore({ pool, schema: store.schema, ...(tenant ? { tenant } : {}) });
  };

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    await insertOld(store, {
      stream: stream(),
      count: 3,
      recordedAt: new Date('2019-03-04T10:00:00Z'),
    });
    await insertOld(store, {
      stream: stream('patient'),
      type: 'PatientRegistered',
      count: 2,
      recordedAt: new Date('2019-03-04T23:59:59.999Z'),
      tenant: 'practice-1',
    });
    await insertOld(store, {
      stream: stream(),
      type: 'ClaimDenied',
      recordedAt: new Date('2019-03-05T00:00:00Z'),
      tenant: 'practice-2',
    });
    // Appended through the store: hash-chained, with the store's own timestamps.
    const practice = store.forTenant('practice-1');
    await practice.append(
      stream(),
      [event('ClaimSubmitted', { data: { fee: 1e21, deep: [[{}]] } })],
      {
        expectedVersion: 'no_stream',
      },
    );
    const last = await store.append(stream(), [event('EligibilityVerified')], {
      expectedVersion: 'no_stream',
    });
    await settled(store, last.checkpoint);
  });
  afterAll(async () => {
    for (const pool of pools) await pool.end();
    for (const role of roles) await store.database.query(`drop role if exists "${role}"`);
    await fixture?.cleanup();
  });
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'evident-archive-pg-'));
    target = createDirectoryTarget(directory);
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  const storeRows = async () =>
    (
      await store.database.query<ArchivedRowSql>(
        `select ${archivedRowColumns} from "${store.schema}".events as ev
          order by ev.transaction_id, ev.global_position`,
      )
    ).map(fromSql);

  it('writes files DuckDB reads back equal, row for row and column for column, to the store', async () => {
    const result = await archive({ store, target, olderThan: new Date(Date.now() + 60_000) });
    const expected = await storeRows();
    expect(result.events).toBe(expected.length);

    const duck = await DuckDBInstance.create(':memory:');
    const connection = await duck.connect();
    try {
      const reader = await connection.runAndReadAll(
        `select checkpoint, global_position, stream_type, stream_id, stream_version, event_id,
                event_type, schema_version, epoch_ms(occurred_at) as occurred_at,
                epoch_ms(recorded_at) as recorded_at, correlation_id, causation_id, source,
                actor_id, actor_role, tenant_id, data, metadata, hash,
                "type" as partition_type, cast("date" as varchar) as partition_date,
                typeof(recorded_at) as recorded_type
           from read_parquet('${directory}/**/*.parquet', hive_partitioning = true)
          order by checkpoint`,
      );
      const rows = reader.getRowObjectsJS();
      expect(rows).toHaveLength(expected.length);
      rows.forEach((row, i) => {
        const want = expected[i]!;
        expect({
          checkpoint: row.checkpoint,
          globalPosition: Number(row.global_position),
          streamType: row.stream_type,
          streamId: row.stream_id,
          streamVersion: Number(row.stream_version),
          eventId: row.event_id,
          eventType: row.event_type,
          schemaVersion: row.schema_version,
          occurredAt: Number(row.occurred_at),
          recordedAt: Number(row.recorded_at),
          correlationId: row.correlation_id,
          causationId: row.causation_id,
          source: row.source,
          actorId: row.actor_id,
          actorRole: row.actor_role,
          tenantId: row.tenant_id,
          data: row.data,
          metadata: row.metadata,
          hash: row.hash,
        }).toEqual(want);
        expect([row.partition_type, row.partition_date, row.recorded_type]).toEqual([
          want.eventType,
          dayOf(want.recordedAt),
          'TIMESTAMP WITH TIME ZONE',
        ]);
      });
      // Hash-chained appends keep their chain link in the archive.
      expect(rows.filter((r) => r.hash !== null)).toHaveLength(2);
    } finally {
      connection.closeSync();
      duck.closeSync();
    }
  });

  it("archives every tenant's events as the auditor role, and refuses a role that sees one tenant", async () => {
    const auditor = await storeAs(auditorRole(store.schema));
    const result = await archive({
      store: auditor,
      target,
      olderThan: new Date(Date.now() + 60_000),
    });
    expect(result.events).toBe((await storeRows()).length);
    const [run] = await store.database.query<{ tenants: (string | null)[] }>(
      `select tenants from "${store.schema}".archive_runs`,
    );
    expect([...run!.tenants].sort()).toEqual([null, 'practice-1', 'practice-2']);

    const app = await storeAs(applicationRole(store.schema));
    await expect(archive({ store: app, target, olderThan: new Date() })).rejects.toMatchObject({
      code: 'ARCHIVE_NOT_PERMITTED',
    });
    await expect(
      archive({ store: store.forTenant('practice-1'), target, olderThan: new Date() }),
    ).rejects.toMatchObject({ code: 'ARCHIVE_NOT_PERMITTED' });
  });

  it("replays only the store's own tenant from an archive of every tenant", async () => {
    await archive({ store, target, olderThan: yearsAgo(1) });
    const app = await storeAs(applicationRole(store.schema), 'practice-1');
    const seen: RecordedEvent[] = [];
    const result = await replay({ store: app, archive: target, into: (e) => void seen.push(e) });
    expect(seen.map((e) => e.tenantId)).toEqual(['practice-1', 'practice-1', 'practice-1']);
    expect(result).toMatchObject({ fromArchive: 2, fromStore: 1 });
    const all: RecordedEvent[] = [];
    await replay({ store, archive: target, into: (e) => void all.push(e) });
    expect(seen).toEqual(all.filter((e) => e.tenantId === 'practice-1'));
  });

  it('lets one process at a time archive to a target', async () => {
    let release!: () => void;
    let started!: () => void;
    const writing = new Promise<void>((resolve) => {
      started = resolve;
    });
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow: ArchiveTarget = {
      ...target,
      async put(path, body) {
        started();
        await gate;
        await target.put(path, body);
      },
    };
    const first = archive({ store, target: slow, olderThan: yearsAgo(1) });
    await writing;
    await expect(archive({ store, target: slow, olderThan: yearsAgo(1) })).rejects.toMatchObject({
      code: 'ARCHIVE_BUSY',
    });
    release();
    expect((await first).events).toBe(6);
  });
});
