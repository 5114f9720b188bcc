import { describe, expect, it } from 'vitest';
import { Batcher, type ItemResult } from './batcher.js';

type Item = { id: number; key?: string; bytes?: number };

function recorder(
  options: { concurrency?: number; maxBytes?: number; fail?: (i: Item) => boolean } = {},
) {
  const batches: number[][] = [];
  const releases: (() => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const batcher = new Batcher<Item>({
    maxItems: 3,
    concurrency: options.concurrency ?? 2,
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
    size: (i) => i.bytes ?? 1,
    key: (i) => i.key,
    send: async (items) => {
      batches.push(items.map((i) => i.id));
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((r) => releases.push(r));
      inFlight -= 1;
      return items.map(
        (i): ItemResult =>
          options.fail?.(i) ? { ok: false, error: new Error(`no ${i.id}`) } : { ok: true },
      );
    },
  });
  const releaseAll = async () => {
    while (releases.length > 0 || batcher) {
      const r = releases.shift();
      if (!r) {
        await new Promise((res) => setImmediate(res));
        if (releases.length === 0) return;
        continue;
      }
      r();
      await new Promise((res) => setImmediate(res));
    }
  };
  return { batcher, batches, releaseAll, maxInFlight: () => maxInFlight };
}

describe('Batcher', () => {
  it('coalesces calls made in one tick into batches of at most maxItems', async () => {
    const r = recorder({ concurrency: 10 });
    const all = Promise.all([1, 2, 3, 4, 5, 6, 7].map((id) => r.batcher.add({ id })));
    await new Promise((res) => setImmediate(res));
    await r.releaseAll();
    await all;
    expect(r.batches).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('keeps a key out of a second batch while one of its batches is in flight, preserving its order', async () => {
    const r = recorder({ concurrency: 4 });
    const items: Item[] = [
      { id: 1, key: 'a' },
      { id: 2, key: 'a' },
      { id: 3, key: 'a' },
      { id: 4, key: 'a' },
      { id: 5, key: 'b' },
      { id: 6 },
    ];
    const all = Promise.all(items.map((i) => r.batcher.add(i)));
    await new Promise((res) => setImmediate(res));
    // a's first three go together; a's fourth must wait for them, b and the keyless one need not.
    expect(r.batches).toEqual([
      [1, 2, 3],
      [5, 6],
    ]);
    await r.releaseAll();
    await all;
    expect(r.batches).toEqual([[1, 2, 3], [5, 6], [4]]);
  });

  it('packs batches within maxBytes (keyless items may skip ahead) and runs at most `concurrency` at once', async () => {
    const r = recorder({ concurrency: 1, maxBytes: 10 });
    const all = Promise.all([6, 6, 3, 9].map((bytes, id) => r.batcher.add({ id, bytes })));
    await new Promise((res) => setImmediate(res));
    await r.releaseAll();
    await all;
    expect(r.batches).toEqual([[0, 2], [1], [3]]);
    expect(r.maxInFlight()).toBe(1);
  });

  it('settles each call with its own item result', async () => {
    const r = recorder({ fail: (i) => i.id === 2 });
    const results = [1, 2, 3].map((id) =>
      r.batcher.add({ id }).then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    );
    await new Promise((res) => setImmediate(res));
    await r.releaseAll();
    expect(await Promise.all(results)).toEqual(['ok', 'no 2', 'ok']);
    await r.batcher.flush();
  });
});
