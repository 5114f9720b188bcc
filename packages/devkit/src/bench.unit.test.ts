import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  balancedCycle,
  inBalancedOrder,
  medianCpu,
  pairedRatio,
  report,
  serverCpuMicros,
  startCpuMeter,
} from './bench.js';

describe('inBalancedOrder', () => {
  const cycleOf = (n: number) => {
    const items = Array.from({ length: n }, (_, i) => i);
    return Array.from({ length: balancedCycle(n) }, (_, round) => inBalancedOrder(items, round));
  };

  it('measures every contender once a round', () => {
    for (const n of [1, 2, 3, 4, 5, 6, 7]) {
      for (const order of cycleOf(n)) expect([...order].sort()).toEqual(order.map((_, i) => i));
    }
  });

  it('over a cycle, runs each contender right after every other equally often', () => {
    for (const n of [2, 3, 4, 5, 6, 7]) {
      const follows = new Map<string, number>();
      for (const order of cycleOf(n)) {
        for (let i = 1; i < n; i++) {
          const pair = `${order[i - 1]}>${order[i]}`;
          follows.set(pair, (follows.get(pair) ?? 0) + 1);
        }
      }
      // Every ordered pair of different contenders, and each as often as the others.
      expect(follows.size).toBe(n * (n - 1));
      expect(new Set(follows.values()).size).toBe(1);
    }
  });

  it('puts each contender first equally often', () => {
    for (const n of [2, 3, 4, 5]) {
      const firsts = cycleOf(n).map((order) => order[0]);
      for (let i = 0; i < n; i++) {
        expect(firsts.filter((f) => f === i)).toHaveLength(balancedCycle(n) / n);
      }
    }
  });

  it('a plain rotation would not: the store would mostly follow the ceiling', () => {
    // The order the append benchmark used before: five contenders, five rounds, each round one
    // later. 'store' (1) ran right after 'ceiling' (0) in four of them.
    const rotation = (round: number) => [0, 1, 2, 3, 4].map((i) => (i + round) % 5);
    const afterCeiling = (orders: number[][]) =>
      orders.filter((o) => o.indexOf(1) === o.indexOf(0) + 1).length;
    expect(afterCeiling([0, 1, 2, 3, 4].map(rotation))).toBe(4);
    expect(afterCeiling(cycleOf(5))).toBe(2);
  });
});

describe('pairedRatio', () => {
  it('is the median of the rounds’ own ratios, not the ratio of the medians', () => {
    // A noisy second round slowed both contenders; paired, it stays one round among three, while
    // the medians (700 and 900) would come from different rounds and give 0.778.
    expect(pairedRatio([700, 600, 720], [800, 1000, 900])).toBeCloseTo(0.8);
  });

  it('refuses rounds that are not paired', () => {
    expect(() => pairedRatio([1, 2], [1])).toThrow(/as many ceiling rounds/);
    expect(() => pairedRatio([], [])).toThrow();
  });
});

describe('report', () => {
  afterEach(() => vi.restoreAllMocks());
  const printed = (fn: () => void) => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    fn();
    return JSON.parse(String(write.mock.calls[0]![0]));
  };

  it('prints the paired ratio and the ratio of medians when both rounds are given', () => {
    const line = printed(() =>
      report({
        bench: 'x',
        value: 700,
        unit: 'ops/s',
        ceiling: 1000,
        rounds: [700, 600, 720],
        ceilingRounds: [800, 1000, 900],
      }),
    );
    expect(line.ratio).toBe(0.8); // 700/800 = 0.875, 600/1000 = 0.6, 720/900 = 0.8
    expect(line.ratioOfMedians).toBe(0.7);
  });

  it('prints the middle half of the rounds’ own ratios, to judge a ratio near its target', () => {
    const line = printed(() =>
      report({
        bench: 'x',
        value: 90,
        unit: 'ops/s',
        ceiling: 100,
        // Own ratios, sorted: 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 1.2, 1.3
        rounds: [90, 80, 120, 85, 100, 95, 110, 130],
        ceilingRounds: [100, 100, 100, 100, 100, 100, 100, 100],
      }),
    );
    expect(line.ratioQuartiles).toEqual([0.85, 1.1]);
  });

  it('prints the ratio of the figure to its ceiling otherwise', () => {
    const line = printed(() => report({ bench: 'x', value: 5, unit: 'ms', ceiling: 8 }));
    expect(line.ratio).toBe(0.625);
    expect(line.ratioOfMedians).toBeUndefined();
    expect(line.ratioQuartiles).toBeUndefined();
  });
});

describe('CPU per operation', () => {
  const procs: string[] = [];
  afterEach(() => {
    for (const dir of procs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  /** A /proc of processes given as [comm, utime ticks, stime ticks]. */
  const fakeProc = (processes: readonly (readonly [string, number, number])[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'proc-'));
    procs.push(dir);
    mkdirSync(join(dir, 'self'));
    processes.forEach(([comm, utime, stime], i) => {
      mkdirSync(join(dir, String(100 + i)));
      const fields = ['S', '1', '1', '1', '0', '-1', '4194560', '10', '0', '0', '0'];
      writeFileSync(
        join(dir, String(100 + i), 'stat'),
        `${100 + i} (${comm}) ${[...fields, utime, stime, 0, 0, 20, 0, 1].join(' ')}\n`,
      );
    });
    return dir;
  };

  it("sums user and system time of each server's processes apart, in microseconds", () => {
    const proc = fakeProc([
      ['postgres', 150, 50],
      ['postgres: checkpointer', 7, 3],
      ['beam.smp', 40, 2],
      ['node', 9000, 9000],
      ['postgres (x)', 1000, 1000], // a process whose name only looks like it
      ['epmd', 500, 500], // RabbitMQ's port mapper: not the broker's work
    ]);
    expect(serverCpuMicros(proc)).toEqual({ postgres: 210 * 10_000, rabbitmq: 42 * 10_000 });
  });

  it('leaves out a server with no process, and everything without /proc', () => {
    expect(
      serverCpuMicros(
        fakeProc([
          ['node', 1, 1],
          ['postgres', 1, 0],
        ]),
      ),
    ).toEqual({
      postgres: 10_000,
    });
    expect(serverCpuMicros(join(tmpdir(), 'no-such-proc'))).toEqual({});
  });

  it('takes the median of rounds, each process apart, leaving a server out when unseen', () => {
    expect(
      medianCpu([
        { node: 70.04, postgres: 140, rabbitmq: 9 },
        { node: 90, postgres: 120.06, rabbitmq: 7 },
        { node: 80, postgres: 160, rabbitmq: 8.04 },
      ]),
    ).toEqual({ node: 80, postgres: 140, rabbitmq: 8 });
    expect(medianCpu([{ node: 1.26 }])).toEqual({ node: 1.3 });
  });

  it('counts only the servers it is asked to', () => {
    const proc = fakeProc([
      ['postgres', 5, 5],
      ['beam.smp', 5, 5],
    ]);
    expect(startCpuMeter({ procDirectory: proc }).perOperation(1)).toEqual({
      node: expect.any(Number),
      postgres: 0,
    });
    expect(startCpuMeter({ servers: ['rabbitmq'], procDirectory: proc }).perOperation(1)).toEqual({
      node: expect.any(Number),
      rabbitmq: 0,
    });
  });

  it('divides the CPU this process spent by the operations', () => {
    const meter = startCpuMeter({
      servers: ['postgres', 'rabbitmq'],
      procDirectory: fakeProc([]),
    });
    const until = performance.now() + 30;
    while (performance.now() < until) {
      // Burn about 30 ms of CPU.
    }
    const cost = meter.perOperation(10);
    expect(cost.node).toBeGreaterThan(1_000); // at least 10 of the 30 ms, per 10 operations
    expect(cost.postgres).toBeUndefined();
    expect(cost.rabbitmq).toBeUndefined();
  });
});
