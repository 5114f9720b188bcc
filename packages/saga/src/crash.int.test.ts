/**
 * Reliability scenario 20, with real processes: a saga worker is killed with SIGKILL in the middle
 * of a step; another worker takes the instance over once the lease expires, runs the step again
 * with the same idempotency key, and the step's effect happens once.
 */
import type { EventStore } from '@evident/eventstore';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { type Child, kill, start } from '../test/children.js';
import { crashTables } from '../test/crashSagas.js';
import {
  eventually,
  postgresFactory,
  type StoreFixture,
  sagaId,
  stepStarts,
} from '../test/fixtures.js';

describe.skipIf(!postgresUrl)('a worker killed mid-step (PostgreSQL, real processes)', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  const children: Child[] = [];

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    await store.database.exec(crashTables(store.schema));
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map(kill));
  });
  afterAll(() => fixture?.cleanup());

  const row = async (id: string) =>
    (
      await store.database.query<{
        status: string;
        lease_owner: string | null;
        due_at: Date;
        current_step: string;
      }>(
        `select status, lease_owner, due_at, current_step from "${store.schema}".saga_instances where saga_id = $1`,
        [id],
      )
    )[0]!;
  const effects = (key: string) =>
    store.database.query<{ pid: number }>(
      `select pid from "${store.schema}".effects where key = $1`,
      [key],
    );
  const attempts = (key: string) =>
    store.database.query<{ attempt: number; pid: number }>(
      `select attempt, pid from "${store.schema}".attempts where key = $1 order by at`,
      [key],
    );

  for (const moment of ['after', 'before'] as const) {
    it(`takes over a step killed ${moment} its effect once the lease expires; the effect happens once`, async () => {
      const id = sagaId('crash');
      const key = `saga/${id}/submitClaim`;
      const first = await start([
        postgresUrl!,
        store.schema,
        `start-hang-${moment}-effect`,
        '1500',
        id,
      ]);
      children.push(first);
      await first.waitFor(moment === 'after' ? 'effect' : 'in-step');
      const held = await row(id);
      expect(held).toMatchObject({
        status: 'running',
        current_step: 'submitClaim',
        lease_owner: first.workerId,
      });
      await kill(first);

      const second = await start([postgresUrl!, store.schema, 'work', '1500']);
      children.push(second);
      await eventually(async () => expect((await row(id)).status).toBe('completed'), 20_000);

      expect(await effects(key)).toHaveLength(1);
      expect((await effects(key))[0]!.pid).toBe(
        moment === 'after' ? first.process.pid : second.process.pid,
      );
      expect(await attempts(key)).toEqual([
        { attempt: 1, pid: first.process.pid },
        { attempt: 2, pid: second.process.pid },
      ]);
      const events = await store.readStream({ type: 'saga', id });
      const interrupted = events.find((e) => e.type === 'StepFailed')!;
      expect(interrupted.data).toMatchObject({
        step: 'submitClaim',
        attempt: 1,
        final: false,
        error: { code: 'ATTEMPT_INTERRUPTED' },
      });
      // Not before the lease the first worker held had expired (database time).
      expect(Date.parse(interrupted.recordedAt)).toBeGreaterThanOrEqual(held.due_at.getTime());
      // The same key on both attempts, and one history: versions contiguous, one SagaCompleted.
      const keys = stepStarts(events).map((d) => d.idempotencyKey);
      expect(keys.filter((k) => k === key)).toHaveLength(2);
      expect(events.map((e) => e.streamVersion)).toEqual(events.map((_, i) => i + 1));
      expect(events.filter((e) => e.type === 'SagaCompleted')).toHaveLength(1);
    });
  }

  it('wakes the sleeping instances of a killed worker in another, each once', async () => {
    // A sleeping instance is a row, not a process: killing the worker that put it to sleep loses
    // nothing, and the one that wakes it runs each step once.
    const ids = Array.from({ length: 20 }, () => sagaId('many'));
    const first = await start([postgresUrl!, store.schema, 'work', '1000']);
    children.push(first);
    const { createSagaRuntime } = await import('./index.js');
    const { crashSagas } = await import('../test/crashSagas.js');
    const client = createSagaRuntime({
      store,
      sagas: crashSagas({ store, schema: store.schema, hang: 'never', say: () => {} }),
      workers: false,
    });
    for (const id of ids) await client.start('reminder', { claimId: id }, { id });
    await client.stop();
    await eventually(async () => {
      const rows = await store.database.query<{ n: string }>(
        `select count(*) as n from "${store.schema}".saga_instances where saga_id = any($1) and status = 'sleeping'`,
        [ids],
      );
      expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    });
    await kill(first);
    const second = await start([postgresUrl!, store.schema, 'work', '1000']);
    children.push(second);
    for (const id of ids) {
      await eventually(async () => expect((await row(id)).status).toBe('completed'), 30_000);
      const events = await store.readStream({ type: 'saga', id });
      expect(events.filter((e) => e.type === 'SagaCompleted')).toHaveLength(1);
      expect(await effects(`saga/${id}/sendReminder`)).toHaveLength(1);
    }
  });
});
