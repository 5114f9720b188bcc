import { describe, expect, it } from 'vitest';
import { createGroupQueue, type GroupMember } from './groupCommit.js';

interface Member extends GroupMember {
  readonly name: string;
}

/** A queue whose groups finish when the test says so; `started` lists each group's members. */
function controlledQueue(settings: { statements: number; maxAppends: number; maxEvents?: number }) {
  const started: string[][] = [];
  const finish: (() => void)[] = [];
  const add = createGroupQueue<Member>(
    { maxEvents: 1000, ...settings },
    (group) =>
      new Promise<void>((resolve) => {
        started.push(group.map((m) => m.name));
        finish.push(resolve);
      }),
  );
  let n = 0;
  const append = (stream = `s${n}`, kind = 'version:one', events = 1) => {
    n += 1;
    add({ name: `a${n}`, streamKey: stream, kind, events });
  };
  /** Let the first running group finish, and the queue react. */
  const finishOldest = async () => {
    finish.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { started, append, finishOldest, running: () => finish.length };
}

describe('group commit queue', () => {
  it('runs an append that finds nothing running at once, alone', () => {
    const q = controlledQueue({ statements: 2, maxAppends: 16 });
    q.append();
    expect(q.started).toEqual([['a1']]);
  });

  it('lets appends that arrive while a group runs wait for it and go together', async () => {
    const q = controlledQueue({ statements: 2, maxAppends: 16 });
    q.append();
    for (let i = 0; i < 5; i++) q.append();
    // A second statement would be free, but the waiting group is not full: it grows instead.
    expect(q.running()).toBe(1);
    await q.finishOldest();
    expect(q.started).toEqual([['a1'], ['a2', 'a3', 'a4', 'a5', 'a6']]);
  });

  it('starts a further statement early for a full group, up to `statements` at once', async () => {
    const q = controlledQueue({ statements: 2, maxAppends: 3 });
    q.append();
    q.append();
    q.append();
    expect(q.running()).toBe(1);
    q.append(); // the waiting group is full
    expect(q.started).toEqual([['a1'], ['a2', 'a3', 'a4']]);
    for (let i = 0; i < 6; i++) q.append();
    expect(q.running()).toBe(2); // full groups wait too once `statements` run
    await q.finishOldest();
    expect(q.started[2]).toEqual(['a5', 'a6', 'a7']);
  });

  it('never puts two appends to one stream, or two kinds, in one group', async () => {
    const q = controlledQueue({ statements: 1, maxAppends: 16 });
    q.append('busy');
    q.append('x');
    q.append('x');
    q.append('y', 'any:one');
    await q.finishOldest();
    expect(q.started[1]).toEqual(['a2']);
    await q.finishOldest();
    expect(q.started[2]).toEqual(['a3']);
    await q.finishOldest();
    expect(q.started[3]).toEqual(['a4']);
  });

  it('keeps a group within the event cap', async () => {
    const q = controlledQueue({ statements: 1, maxAppends: 16, maxEvents: 10 });
    q.append();
    q.append(undefined, undefined, 6);
    q.append(undefined, undefined, 6);
    await q.finishOldest();
    expect(q.started[1]).toEqual(['a2']);
    await q.finishOldest();
    expect(q.started[2]).toEqual(['a3']);
  });
});
