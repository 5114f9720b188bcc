import type { Envelope } from '@evident/envelope';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { event, events, postgresFactory, type StoreFixture, stream } from '../test/fixtures.js';
import { appendStatement } from './appendSql.js';
import type { EventStore, RecordedEvent } from './index.js';

/**
 * Scenarios 5, 6 and 7 of RELIABILITY.md through a live subscription. Serial: these tests hold
 * transactions open, which holds back every log reader on the server.
 */
describe.skipIf(!postgresUrl)('subscriptions and the log horizon on PostgreSQL', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  let client: pg.Client;

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    client = new pg.Client({ connectionString: postgresUrl! });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await fixture?.cleanup();
  });

  const openAppend = (batch: readonly Envelope[]) =>
    client.query(appendStatement(`"${store.schema}"`, 'any', 'many'), [
      'claim',
      stream().id,
      batch.length,
      JSON.stringify(batch),
      '',
    ]);
  const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** "now" is fixed when the subscription becomes active: appends before that are the past. */
  const active = async (sub: { state: string }) => {
    while (sub.state !== 'active') await delay(5);
  };

  it('delivers a late-committing earlier position before the later one, never skipping it', async () => {
    const seen: RecordedEvent[] = [];
    const sub = store.subscribe({
      name: 'late-commit',
      from: 'now',
      handler: (e) => void seen.push(e),
    });
    try {
      await active(sub);
      const a = event('ClaimSubmitted');
      const b = event('ClaimAdjudicated');
      await client.query('begin');
      await openAppend([a]);
      const committed = await store.append(stream(), [b], { expectedVersion: 'no_stream' });
      await delay(300);
      expect(seen).toEqual([]);
      const before = await sub.status();
      expect(before.checkpoint < committed.checkpoint!).toBe(true);
      await client.query('commit');
      await sub.waitFor(committed.checkpoint!);
      expect(seen.map((e) => e.id)).toEqual([a.id, b.id]);
      expect(seen[0]!.globalPosition).toBeLessThan(seen[1]!.globalPosition);
    } finally {
      await sub.stop();
    }
  });

  it('waits for a transaction held open for seconds, shows the lag, and skips nothing', async () => {
    const seen: string[] = [];
    const sub = store.subscribe({
      name: 'held-open',
      from: 'now',
      handler: (e) => void seen.push(e.id),
    });
    try {
      await active(sub);
      const held = event('EncounterOpened');
      const others = events(20);
      await client.query('begin');
      await openAppend([held]);
      let last: string | null = null;
      for (const e of others) {
        last = (await store.append(stream(), [e], { expectedVersion: 'no_stream' })).checkpoint;
      }
      await delay(1500);
      expect(seen).toEqual([]);
      const status = await sub.status();
      // The committed events behind the open transaction are visible as lag.
      expect(status.lagEvents).toBe(20);
      expect(status.lagSeconds).toBeGreaterThan(1);
      await client.query('commit');
      await sub.waitFor(last!);
      expect(seen).toEqual([held.id, ...others.map((e) => e.id)]);
      expect((await sub.status()).lagEvents).toBe(0);
    } finally {
      await sub.stop();
    }
  });

  it('moves past a rolled-back transaction’s hole without hanging', async () => {
    const seen: string[] = [];
    const sub = store.subscribe({
      name: 'rollback',
      from: 'now',
      handler: (e) => void seen.push(e.id),
    });
    try {
      await active(sub);
      await client.query('begin');
      await openAppend(events(3));
      const after = event();
      const committed = await store.append(stream(), [after], { expectedVersion: 'no_stream' });
      await client.query('rollback');
      await sub.waitFor(committed.checkpoint!, { timeoutMs: 5_000 });
      expect(seen).toEqual([after.id]);
    } finally {
      await sub.stop();
    }
  });
});
