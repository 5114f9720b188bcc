/**
 * Model-based test: random sequences of appends (right, stale, "any", "no_stream", "exists"),
 * retried appends, reads, log reads and snapshot loads, run against the real store and against a
 * plain in-memory model. After every command both must agree.
 */

import type { Envelope } from '@evident/envelope';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import {
  event,
  pgliteFactory,
  postgresFactory,
  type StoreFactory,
  type StoreFixture,
  settled,
} from '../test/fixtures.js';
import {
  type AppendResult,
  type Checkpoint,
  type EventStore,
  type ExpectedVersion,
  isConcurrencyError,
} from './index.js';

interface Model {
  streams: Map<string, Envelope[]>;
  log: string[];
  lastAppend?: {
    stream: string;
    events: Envelope[];
    result: AppendResult;
    expected: ExpectedVersion;
  };
}

interface Real {
  store: EventStore;
  streamType: string;
  start: Checkpoint;
}

type Expectation = 'right' | 'stale' | 'future' | 'any' | 'no_stream' | 'exists';

const streamNames = ['a', 'b', 'c'];

class AppendCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly stream: string,
    readonly count: number,
    readonly expectation: Expectation,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const current = model.streams.get(this.stream)?.length ?? 0;
    const expected: ExpectedVersion = {
      right: current,
      stale: Math.max(0, current - 1),
      future: current + 1,
      any: 'any' as const,
      no_stream: 'no_stream' as const,
      exists: 'exists' as const,
    }[this.expectation];
    const holds =
      expected === 'any' ||
      (expected === 'no_stream' && current === 0) ||
      (expected === 'exists' && current > 0) ||
      expected === current;
    const batch = Array.from({ length: this.count }, () => event('ModelEvent'));
    const stream = { type: real.streamType, id: this.stream };
    try {
      const result = await real.store.append(stream, batch, { expectedVersion: expected });
      expect(holds).toBe(true);
      expect(result.nextExpectedVersion).toBe(current + this.count);
      if (this.count > 0) {
        model.streams.set(this.stream, [...(model.streams.get(this.stream) ?? []), ...batch]);
        model.log.push(...batch.map((e) => e.id));
        model.lastAppend = { stream: this.stream, events: batch, result, expected };
      }
    } catch (error) {
      if (!isConcurrencyError(error)) throw error;
      expect(holds).toBe(false);
      expect(error.actual).toBe(current);
    }
  }
  toString = () => `append(${this.stream}, ${this.count}, ${this.expectation})`;
}

class RetryLastAppendCommand implements fc.AsyncCommand<Model, Real> {
  check = (model: Readonly<Model>) => model.lastAppend !== undefined;
  async run(model: Model, real: Real) {
    const last = model.lastAppend!;
    const result = await real.store.append(
      { type: real.streamType, id: last.stream },
      last.events,
      {
        expectedVersion: last.expected,
      },
    );
    expect(result).toEqual(last.result);
  }
  toString = () => 'retryLastAppend';
}

class ReadStreamCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly stream: string,
    readonly from: number,
    readonly backwards: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const all = model.streams.get(this.stream) ?? [];
    const read = await real.store.readStream(
      { type: real.streamType, id: this.stream },
      this.backwards
        ? { direction: 'backwards', fromVersion: this.from }
        : { fromVersion: this.from },
    );
    const expected = this.backwards ? all.slice(0, this.from).reverse() : all.slice(this.from - 1);
    expect(read.map((e) => e.id)).toEqual(expected.map((e) => e.id));
    expect(read.map((e) => e.streamVersion)).toEqual(expected.map((e) => all.indexOf(e) + 1));
  }
  toString = () =>
    `readStream(${this.stream}, ${this.from}, ${this.backwards ? 'backwards' : 'forwards'})`;
}

class ReadAllCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pageSize: number) {}
  check = () => true;
  async run(model: Model, real: Real) {
    await settled(real.store, model.lastAppend?.result.checkpoint ?? null);
    const seen: string[] = [];
    let after = real.start;
    for (;;) {
      const page = await real.store.readAll({
        after,
        limit: this.pageSize,
        streamTypes: [real.streamType],
      });
      seen.push(...page.events.map((e) => e.id));
      after = page.checkpoint;
      if (page.caughtUp) break;
    }
    expect(seen).toEqual(model.log);
  }
  toString = () => `readAll(page ${this.pageSize})`;
}

class AggregateCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly stream: string,
    readonly every: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const all = model.streams.get(this.stream) ?? [];
    const loaded = await real.store.aggregate(
      { type: real.streamType, id: this.stream },
      {
        initialState: () => [] as string[],
        evolve: (ids: string[], e) => [...ids, e.id],
        snapshot: { schemaVersion: 1, every: this.every },
      },
    );
    expect(loaded.version).toBe(all.length);
    expect(loaded.state).toEqual(all.map((e) => e.id));
  }
  toString = () => `aggregate(${this.stream}, every ${this.every})`;
}

const commands = [
  fc
    .tuple(
      fc.constantFrom(...streamNames),
      fc.integer({ min: 0, max: 4 }),
      fc.constantFrom<Expectation>(
        'right',
        'right',
        'stale',
        'future',
        'any',
        'no_stream',
        'exists',
      ),
    )
    .map(([s, n, e]) => new AppendCommand(s, n, e)),
  fc.constant(new RetryLastAppendCommand()),
  fc
    .tuple(fc.constantFrom(...streamNames), fc.integer({ min: 1, max: 12 }), fc.boolean())
    .map(([s, from, back]) => new ReadStreamCommand(s, from, back)),
  fc.integer({ min: 1, max: 5 }).map((n) => new ReadAllCommand(n)),
  fc
    .tuple(fc.constantFrom(...streamNames), fc.integer({ min: 1, max: 4 }))
    .map(([s, every]) => new AggregateCommand(s, every)),
];

function modelBased(name: string, factory: StoreFactory) {
  describe(`model-based: ${name}`, () => {
    let fixture: StoreFixture;
    beforeAll(async () => {
      fixture = await factory();
    });
    afterAll(() => fixture?.cleanup());

    it('agrees with an in-memory model over random command sequences', async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 30 }), async (cmds) => {
          run += 1;
          const store = fixture.store;
          const start = (await store.readAll({ limit: 1_000_000 })).checkpoint;
          const real: Real = { store, streamType: `model${run}`, start };
          await fc.asyncModelRun(() => ({ model: { streams: new Map(), log: [] }, real }), cmds);
        }),
        { numRuns: 40 },
      );
    });
  });
}

modelBased('PGlite', pgliteFactory());
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  modelBased('PostgreSQL', postgresFactory(postgresUrl!));
});
