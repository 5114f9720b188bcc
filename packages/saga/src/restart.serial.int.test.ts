/**
 * PostgreSQL restarted under a saga workload (reliability scenarios 9 and 21), with real
 * processes: the server is restarted with pg_ctlcluster while two worker processes run 1,000
 * sagas, and while a saga sleeps on a real-clock timer whose worker has been killed. Serial: the
 * restart would disturb every other suite on the server.
 */
import { execFileSync } from 'node:child_process';
import type { EventStore } from '@evident/eventstore';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { type Child, kill, start } from '../test/children.js';
import { crashSagas, crashTables } from '../test/crashSagas.js';
import { eventually, postgresFactory, type StoreFixture, sagaId } from '../test/fixtures.js';
import { createSagaRuntime } from './index.js';

const pgctl = (action: 'restart' | 'start' | 'status') =>
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', '15', 'main', action], {
    stdio: 'pipe',
    timeout: 60_000,
  });

/** Whether this machine can restart the test server (a local cluster we may control). */
function canRestart(): boolean {
  if (!postgresUrl) return false;
  const host = new URL(postgresUrl).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost') return false;
  try {
    pgctl('status');
    return true;
  } catch {
    return false;
  }
}

/** Make sure the server runs again, whatever happened. */
async function ensureUp(): Promise<void> {
  try {
    pgctl('start');
  } catch {
    // Already running.
  }
  const pg = await import('pg');
  await eventually(async () => {
    const client = new pg.default.Client({ connectionString: postgresUrl! });
    await client.connect();
    await client.end();
  }, 60_000);
}

describe.skipIf(!canRestart())('PostgreSQL restarted under saga workloads (real processes)', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  const children: Child[] = [];

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)({ poolSize: 8 });
    store = fixture.store;
    // The test's own connections see the restart too.
    store.database.pool?.on('error', () => {});
    await store.database.exec(crashTables(store.schema));
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map(kill));
    await ensureUp();
  });
  afterAll(async () => {
    await ensureUp();
    await fixture?.cleanup();
  });

  /** Retry a query through the restart. */
  const query = async <T>(text: string, params: unknown[] = []): Promise<T[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await store.database.query<T>(text, params);
      } catch (error) {
        if (attempt > 100) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const startedAt = async () =>
    (await query<{ t: Date }>('select pg_postmaster_start_time() as t'))[0]!.t.getTime();
  /** Restart the server and check it really went down and came back. */
  const restart = async () => {
    const before = await startedAt();
    pgctl('restart');
    await ensureUp();
    expect(await startedAt()).toBeGreaterThan(before);
  };
  const statuses = async (ids: string[]) =>
    query<{ status: string; n: string }>(
      `select status, count(*) as n from "${store.schema}".saga_instances where saga_id = any($1) group by status`,
      [ids],
    );

  it('brings every one of 1,000 sagas to a final state when PostgreSQL restarts mid-run', async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `batch-${i}-${sagaId('r')}`);
    const client = createSagaRuntime({
      store,
      sagas: crashSagas({ store, schema: store.schema, hang: 'never', say: () => {} }),
      workers: false,
    });
    for (let i = 0; i < ids.length; i++) {
      await client.start('eligibility-batch', { claimId: `c-${i}` }, { id: ids[i]! });
    }
    await client.stop();
    // One worker's store groups its appends (group commit), the other's does not: a restart
    // breaks group statements and single appends alike.
    for (const mode of ['work', 'work-grouped']) {
      const worker = await start([postgresUrl!, store.schema, mode, '5000']);
      children.push(worker);
    }
    // Restart once the run is well under way.
    await eventually(async () => {
      const done = (await statuses(ids))
        .filter((s) => s.status === 'completed' || s.status === 'compensated')
        .reduce((n, s) => n + Number(s.n), 0);
      expect(done).toBeGreaterThan(100);
    }, 60_000);
    const before = await statuses(ids);
    await restart();

    await eventually(async () => {
      const rows = await statuses(ids);
      const final = rows
        .filter((s) => ['completed', 'compensated', 'dead_lettered'].includes(s.status))
        .reduce((n, s) => n + Number(s.n), 0);
      expect(final).toBe(1000);
    }, 150_000);
    // Some were still running when the server went down.
    expect(
      before.filter((s) => s.status === 'running' || s.status === 'retrying').length,
    ).toBeGreaterThan(0);
    const rows = await statuses(ids);
    expect(Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]))).toEqual({
      completed: 900,
      compensated: 100,
    });
    // One history each: exactly one final event, contiguous versions; and each effect once.
    const finals = await query<{ stream_id: string; n: string; versions_ok: boolean }>(
      `select stream_id,
              count(*) filter (where event_type in ('SagaCompleted', 'SagaCompensated', 'SagaDeadLettered')) as n,
              max(stream_version) = count(*) as versions_ok
         from "${store.schema}".events where stream_type = 'saga' and stream_id = any($1)
        group by stream_id`,
      [ids],
    );
    expect(finals).toHaveLength(1000);
    expect(finals.every((f) => Number(f.n) === 1 && f.versions_ok)).toBe(true);
    const effects = await query<{ n: string }>(
      `select count(*) as n from "${store.schema}".effects where key like 'saga/batch-%'`,
    );
    // verifyEligibility and openAccount for all, holdAccount for the hundred that compensated.
    expect(Number(effects[0]!.n)).toBe(2 * 1000 + 100);
  });

  it('fires a real-clock timer after its worker is killed and PostgreSQL restarts, at its database time', async () => {
    const id = sagaId('timer');
    const first = await start([postgresUrl!, store.schema, 'start-sleep', '2000', id]);
    children.push(first);
    await first.waitFor('started');
    await eventually(async () => {
      const rows = await query<{ status: string }>(
        `select status from "${store.schema}".saga_instances where saga_id = $1`,
        [id],
      );
      expect(rows[0]?.status).toBe('sleeping');
    });
    // Every process goes: the worker that scheduled the timer, then the database server.
    await kill(first);
    await restart();
    const second = await start([postgresUrl!, store.schema, 'work', '2000']);
    children.push(second);
    await eventually(async () => {
      const rows = await query<{ status: string }>(
        `select status from "${store.schema}".saga_instances where saga_id = $1`,
        [id],
      );
      expect(rows[0]?.status).toBe('completed');
    }, 30_000);
    const events = await store.readStream({ type: 'saga', id });
    const scheduled = events.find((e) => e.type === 'TimerScheduled')!;
    const fired = events.find((e) => e.type === 'TimerFired')!;
    const late = Date.parse(fired.recordedAt) - Date.parse(scheduled.recordedAt);
    expect(late).toBeGreaterThanOrEqual(3000);
    expect(late).toBeLessThan(30_000);
    expect(
      await query(`select pid from "${store.schema}".effects where key = $1`, [
        `saga/${id}/sendReminder`,
      ]),
    ).toEqual([{ pid: second.process.pid }]);
  });
});
