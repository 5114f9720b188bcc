/**
 * Real crashes: a child process is killed with SIGKILL between the commit of a step and its
 * action, inside the action, inside a transactional action, and after scheduling a timer. What it
 * committed must be carried out exactly once by the processes that remain.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { EventStore } from '@evident/eventstore';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { documentReview } from '../examples/documentReview.js';
import { entity, eventually, postgresFactory, type StoreFixture } from '../test/fixtures.js';
import { claimMachine } from '../test/machines.js';
import { createDurableMachine, type Worker } from './index.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const script = fileURLToPath(new URL('../test/crashingProcess.ts', import.meta.url));

/** Start the child and resolve once it prints `line`. */
function start(args: string[], line: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=@evident/source', '--import', 'tsx', script, ...args],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split('\n').includes(line)) resolve(child);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('exit', (code) =>
      reject(new Error(`child exited (${code}) before "${line}": ${err}`)),
    );
  });
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe.skipIf(!postgresUrl)('crashes (PostgreSQL)', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  const workers: Worker[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    await store.database.exec(
      `create table "${store.schema}".effects (id serial primary key, key text not null, pid int not null)`,
    );
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
    for (const c of children.splice(0))
      if (c.exitCode === null && c.signalCode === null) await kill(c);
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });

  const effects = async (key: string) =>
    (
      await store.database.query<{ n: string }>(
        `select count(*)::text as n from "${store.schema}".effects where key = $1`,
        [key],
      )
    )[0]!.n;

  /** This process, standing in for the ones still running after the crash. */
  const survivor = () => {
    const claims = createDurableMachine(claimMachine, {
      store,
      streamType: 'claim',
      leaseMs: 1000,
      actions: {
        notifyPayer: async (job) => {
          await store.database.query(
            `insert into "${store.schema}".effects (key, pid) values ($1, $2)`,
            [job.idempotencyKey, process.pid],
          );
        },
      },
    });
    workers.push(claims.startWorker({ pollInterval: 50 }));
    return claims;
  };

  it('runs an action exactly once when the process dies between the commit and the action', async () => {
    const id = entity('c');
    const child = await start([postgresUrl!, store.schema, 'after-commit', id], 'committed');
    children.push(child);
    await kill(child);
    const claims = survivor();
    const key = `claim/${id}/2/0`;
    await eventually(async () => expect(await claims.jobs(id)).toMatchObject([{ status: 'done' }]));
    expect(await effects(key)).toBe('1');
    await new Promise((r) => setTimeout(r, 300));
    expect(await effects(key)).toBe('1');
  });

  it('runs an action again once when the process dies inside it, after its lease expires', async () => {
    const id = entity('c');
    const child = await start([postgresUrl!, store.schema, 'in-action', id], 'in-action');
    children.push(child);
    await kill(child);
    expect(
      await createDurableMachine(claimMachine, { store, streamType: 'claim' }).jobs(id),
    ).toMatchObject([{ status: 'running', attempts: 1 }]);
    const claims = survivor();
    await eventually(async () =>
      expect(await claims.jobs(id)).toMatchObject([{ status: 'done', attempts: 2 }]),
    );
    expect(await effects(`claim/${id}/2/0`)).toBe('1');
  });

  it('keeps a transactional action exactly once when the process dies inside its transaction', async () => {
    const id = entity('c');
    const child = await start([postgresUrl!, store.schema, 'in-transaction', id], 'in-transaction');
    children.push(child);
    await kill(child);
    const key = `claim/${id}/2/0`;
    const claims = createDurableMachine(claimMachine, {
      store,
      streamType: 'claim',
      actions: {
        notifyPayer: {
          transactional: true,
          async run(job, tx) {
            await tx.query(`insert into "${store.schema}".effects (key, pid) values ($1, $2)`, [
              job.idempotencyKey,
              process.pid,
            ]);
          },
        },
      },
    });
    workers.push(claims.startWorker({ pollInterval: 50 }));
    await eventually(async () => expect(await claims.jobs(id)).toMatchObject([{ status: 'done' }]));
    const rows = await store.database.query<{ pid: number }>(
      `select pid from "${store.schema}".effects where key = $1`,
      [key],
    );
    // The dead process's write was rolled back with its transaction; only the survivor's stands.
    expect(rows).toEqual([{ pid: process.pid }]);
  });

  it('fires a delayed transition after a process restart, at the originally scheduled time', async () => {
    const id = entity('doc');
    const child = await start([postgresUrl!, store.schema, 'timer-scheduled', id], 'scheduled');
    children.push(child);
    await kill(child);
    const reviews = createDurableMachine(
      documentReview.provide({ delays: { reviewDeadline: 1500 } }),
      { store, streamType: 'document' },
    );
    const [timer] = await reviews.timers(id);
    const [scheduling] = await store.readStream(
      { type: 'document', id },
      { fromVersion: 2, limit: 1 },
    );
    const fireAt = Date.parse(timer!.fireAt);
    expect(fireAt - Date.parse(scheduling!.recordedAt)).toBe(1500);
    // The restarted process starts its worker before the deadline: nothing fires early.
    workers.push(reviews.startWorker({ pollInterval: 1000 }));
    const early = await reviews.load(id);
    expect(early!.value).toEqual({ inReview: { legal: 'pending', editorial: 'pending' } });
    await eventually(async () => expect((await reviews.load(id))!.value).toBe('expired'));
    const [fired] = await store.readStream({ type: 'document', id }, { fromVersion: 3, limit: 1 });
    const firedAt = Date.parse(fired!.recordedAt);
    expect(firedAt).toBeGreaterThanOrEqual(fireAt);
    // The worker sleeps until the next timer is due, not a whole poll interval.
    expect(firedAt - fireAt).toBeLessThan(750);
    expect(fired!.data).toMatchObject({
      event: { type: timer!.id },
      from: early!.value,
      to: 'expired',
    });
  });
});
