/**
 * Group commit under a fault, against a real PostgreSQL server. Serial: the test holds a row lock
 * in an open transaction, which holds back the cluster-wide horizon every reader of the log waits
 * behind (other suites' reads would find nothing new meanwhile).
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { event, postgresFactory, stream } from '../test/fixtures.js';
import { decodeCheckpoint } from './checkpoint.js';
import { verifyStream } from './index.js';

describe.skipIf(!postgresUrl)('group commit on PostgreSQL, faults', () => {
  it('a group whose connection is killed mid-statement writes nothing; its appends are made again one by one', async () => {
    const fixture = await postgresFactory(postgresUrl!)({ groupCommit: { statements: 1 } });
    const locker = new pg.Client({ connectionString: postgresUrl! });
    await locker.connect();
    try {
      const { store } = fixture;
      const streams = [stream(), stream(), stream()];
      for (const s of streams) await store.append(s, [event()], { expectedVersion: 'no_stream' });
      // Hold the first stream's row so the group's statement waits on it.
      await locker.query('begin');
      await locker.query(
        `select * from "${store.schema}".streams where stream_type = $1 and stream_id = $2 for update`,
        [streams[0]!.type, streams[0]!.id],
      );
      const blocker = store.append(stream(), [event()], { expectedVersion: 'no_stream' });
      const appends = streams.map((s) => store.append(s, [event()], { expectedVersion: 1 }));
      await blocker;
      let waiting: number | undefined;
      for (let tries = 0; waiting === undefined && tries < 500; tries++) {
        // From outside the locker's transaction, whose view of pg_stat_activity is a snapshot.
        const rows = await store.database.query<{ pid: number }>(
          `select pid from pg_stat_activity
         where wait_event_type = 'Lock' and query like '%claimed_0 as%' and query like $1`,
          [`%"${store.schema}".streams%`],
        );
        if (rows.length === 1) waiting = rows[0]!.pid;
        else await new Promise((r) => setTimeout(r, 10));
      }
      expect(waiting).toBeDefined();
      await locker.query('select pg_terminate_backend($1)', [waiting]);
      await locker.query('commit');
      const results = await Promise.all(appends);
      expect(results.map((r) => r.nextExpectedVersion)).toEqual([2, 2, 2]);
      expect(new Set(results.map((r) => decodeCheckpoint(r.checkpoint).transactionId)).size).toBe(
        3,
      ); // one by one: each its own transaction
      for (const s of streams) {
        const read = await store.readStream(s);
        expect(read.map((e) => e.streamVersion)).toEqual([1, 2]);
        expect((await verifyStream(store, s)).ok).toBe(true);
      }
    } finally {
      await locker.end();
      await fixture.cleanup();
    }
  });
});
