import { afterEach, describe, expect, it, vi } from 'vitest';
import { pairedRatio, report } from './bench.js';

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

  it('prints the ratio of the figure to its ceiling otherwise', () => {
    const line = printed(() => report({ bench: 'x', value: 5, unit: 'ms', ceiling: 8 }));
    expect(line.ratio).toBe(0.625);
    expect(line.ratioOfMedians).toBeUndefined();
  });
});
