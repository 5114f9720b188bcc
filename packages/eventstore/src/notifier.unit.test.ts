/**
 * The doorbell other processes' subscribers wake on: rung after every append, sent as a NOTIFY at
 * most once per throttle window (the database here is a stand-in that counts statements).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Database } from './database.js';
import { createNotifier, type Notifier } from './notifier.js';

function countingDatabase(kind: Database['kind'] = 'pg') {
  const sent: number[] = [];
  const db = {
    kind,
    async query(text: string) {
      if (text.includes('pg_notify')) sent.push(performance.now());
      return [];
    },
  } as unknown as Database;
  return { db, sent };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('notifier', () => {
  let notifier: Notifier | undefined;
  afterEach(() => notifier?.close());

  it('rings other processes at once after a quiet spell', async () => {
    const { db, sent } = countingDatabase();
    notifier = createNotifier(db, 'evident');
    notifier.ring();
    await sleep(5);
    expect(sent).toHaveLength(1);
  });

  it('sends at most one NOTIFY per 50 ms by default, however many appends ring', async () => {
    const { db, sent } = countingDatabase();
    notifier = createNotifier(db, 'evident');
    const until = performance.now() + 300;
    while (performance.now() < until) {
      notifier.ring();
      await sleep(1);
    }
    await sleep(60);
    // 300 ms of appends: the first at once, then one per window (timers may fire a little late).
    expect(sent.length).toBeGreaterThanOrEqual(4);
    expect(sent.length).toBeLessThanOrEqual(8);
    for (let i = 1; i < sent.length; i++) {
      expect(sent[i]! - sent[i - 1]!).toBeGreaterThanOrEqual(45);
    }
  });

  it('still rings for the last append of a burst', async () => {
    const { db, sent } = countingDatabase();
    notifier = createNotifier(db, 'evident', { throttleMs: 30 });
    notifier.ring();
    notifier.ring();
    await sleep(5);
    expect(sent).toHaveLength(1);
    await sleep(40);
    expect(sent).toHaveLength(2);
  });

  it('wakes subscribers in this process on every ring, and sends nothing when disabled', async () => {
    const { db, sent } = countingDatabase();
    notifier = createNotifier(db, 'evident', { enabled: false });
    let woken = 0;
    notifier.onLocalAppend(() => woken++);
    notifier.ring();
    notifier.ring();
    await sleep(5);
    expect(woken).toBe(2);
    expect(sent).toHaveLength(0);
  });
});
