import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { events, postgresFactory, type StoreFixture, stream } from '../test/fixtures.js';
import { createEventStore, type EventStore } from './index.js';

const script = fileURLToPath(new URL('../test/subscriberProcess.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../', import.meta.url));

function startSubscriber(schema: string, name: string, delayMs: number) {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@evident/source',
      '--import',
      'tsx',
      script,
      postgresUrl!,
      schema,
      name,
      String(delayMs),
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const states: string[] = [];
  child.stdout!.on('data', (d: Buffer) => states.push(...d.toString().trim().split('\n')));
  return { child, states };
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

/** Subscribers across processes, and what survives a SIGKILL. */
describe.skipIf(!postgresUrl)('subscriptions across processes on PostgreSQL', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  const count = async (name: string) => {
    const [row] = await store.database.query<{ n: string; d: string }>(
      `select count(*) as n, count(distinct event_id) as d from "${store.schema}".handled where subscription = $1`,
      [name],
    );
    return { total: Number(row!.n), distinct: Number(row!.d) };
  };

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    await store.database.exec(
      `create table "${store.schema}".handled (subscription text not null, event_id uuid not null)`,
    );
  });
  afterAll(() => fixture?.cleanup());

  it('is woken by another process’s append without waiting for a poll', async () => {
    const seen: string[] = [];
    const sub = store.subscribe({
      name: 'wake-up',
      from: 'now',
      pollIntervalMs: 60_000,
      handler: (e) => void seen.push(e.id),
    });
    await eventually(() => sub.state === 'active');
    // Let the first, horizon-seeking reads settle into the long poll.
    await new Promise((r) => setTimeout(r, 300));
    const writer = createEventStore({ connectionString: postgresUrl!, schema: store.schema });
    try {
      const batch = events(3);
      const started = Date.now();
      await writer.append(stream(), batch, { expectedVersion: 'no_stream' });
      await eventually(() => seen.length === 3, 5_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(seen).toEqual(batch.map((e) => e.id));
    } finally {
      await writer.close();
      await sub.stop();
    }
  });

  it('resumes after a SIGKILL with no event lost and each database effect once', async () => {
    const name = 'crash-resume';
    for (let i = 0; i < 3; i++) {
      await store.append(stream(), events(100), { expectedVersion: 'no_stream' });
    }
    // The subscription reads the whole log, earlier tests' events included.
    const [all] = await store.database.query<{ n: string }>(
      `select count(*) as n from "${store.schema}".events`,
    );
    const total = Number(all!.n);
    const { child } = startSubscriber(store.schema, name, 2);
    // Kill it mid-stream, inside a batch.
    await eventually(async () => (await count(name)).total >= 60);
    await kill(child);
    const atKill = await count(name);
    expect(atKill.total).toBeLessThan(total);
    const resumed = store.subscribe({
      name,
      handler: async (event, { tx }) => {
        await tx.query(`insert into "${store.schema}".handled values ($1, $2)`, [name, event.id]);
      },
    });
    try {
      await eventually(async () => (await count(name)).total >= total);
      await new Promise((r) => setTimeout(r, 200));
      expect(await count(name)).toEqual({ total, distinct: total });
    } finally {
      await resumed.stop();
    }
  });

  it('lets a standby take over within the takeover interval when the active one is killed', async () => {
    const name = 'takeover';
    await store.append(stream(), events(5), { expectedVersion: 'no_stream' });
    const { child, states } = startSubscriber(store.schema, name, 0);
    await eventually(() => states.includes('active'));
    await eventually(async () => (await count(name)).total >= 5);
    const standby = store.subscribe({
      name,
      takeoverIntervalMs: 100,
      handler: async (event, { tx }) => {
        await tx.query(`insert into "${store.schema}".handled values ($1, $2)`, [name, event.id]);
      },
    });
    try {
      await eventually(() => standby.state === 'standby');
      await kill(child);
      const killedAt = Date.now();
      await eventually(() => standby.state === 'active', 5_000);
      const tookOver = Date.now() - killedAt;
      expect(tookOver).toBeLessThan(5_000);
      const more = await store.append(stream(), events(4), { expectedVersion: 'no_stream' });
      await standby.waitFor(more.checkpoint!);
      const { total, distinct } = await count(name);
      expect(distinct).toBe(total);
      expect(total).toBeGreaterThanOrEqual(9);
    } finally {
      await standby.stop();
    }
  });
});
