/**
 * The saga test kit: a virtual clock that skips weeks in milliseconds, Given/When/Then scenarios
 * for a saga's steps and compensations, and the replay check of stored histories against the
 * code about to be deployed.
 */
import { AssertionError } from 'node:assert';
import { createEnvelope, InvalidArgumentError } from '@evident/envelope';
import type { EventStore, RecordedEvent } from '@evident/eventstore';
import type { SagaClock } from './clock.js';
import type {
  AnySagaDefinition,
  CompensationContext,
  InputFrom,
  SagaNode,
  StepContext,
} from './defineSaga.js';
import { type Duration, toMilliseconds } from './duration.js';
import { SagaError } from './errors.js';
import type { DeadLetterContext, SagaEventData } from './events.js';
import { checkHistory, type HistoryProblem, migrateHistory } from './history.js';
import { migrateSagas } from './migrations.js';
import { toFoldEvent } from './runInstance.js';
import { createSagaRuntime, type SagaInstance, type SagaRuntime } from './runtime.js';
import { finalStatuses, type SagaStatus } from './state.js';

export type { HistoryProblem } from './history.js';

/** A clock for tests: real time plus whatever the test skips. */
export interface VirtualClock extends SagaClock {
  readonly kind: 'virtual';
  /** Milliseconds skipped so far. */
  readonly skipped: number;
  /** Jump forward: sleepers due by then wake, and runtimes on this clock look for due work. */
  advance(duration: Duration): void;
  /** Jump forward to `time` (no-op if it has passed). */
  advanceTo(time: Date | string | number): void;
}

/**
 * A virtual clock. Time runs at the real pace from `start` and jumps when the test calls
 * `advance`; a runtime created with it passes its time to every query that compares with a due
 * time, so a 45-day wait against a real database passes in milliseconds.
 *
 * @example
 * ```ts
 * const clock = createVirtualClock();
 * const runtime = createSagaRuntime({ store, sagas: [claimLifecycle], clock, workers: false });
 * await runtime.start('claim-lifecycle', claim, { id: 'claim-c-9' });
 * await runtime.drain();          // submits, then sleeps until the remittance is due
 * clock.advance('45d');
 * await runtime.drain();          // wakes, times out the wait, follows up with the payer
 * ```
 * @throws InvalidArgumentError when `start` lies in the past.
 */
export function createVirtualClock(
  options: { readonly start?: Date | string | number } = {},
): VirtualClock {
  // A second ahead of real time by default, so the database's own `now()` (at which new
  // instances become due) is never in the virtual clock's future.
  const start = options.start === undefined ? Date.now() + 1000 : new Date(options.start).getTime();
  if (Number.isNaN(start) || start < Date.now()) {
    throw new InvalidArgumentError('a virtual clock starts now or later');
  }
  let offset = start - Date.now();
  const sleepers = new Set<{ target: number; wake: () => void }>();
  const listeners = new Set<() => void>();
  const check = () => {
    const t = Date.now() + offset;
    for (const s of sleepers) if (s.target <= t) s.wake();
  };
  let skipped = 0;
  const clock: VirtualClock = {
    kind: 'virtual',
    get skipped() {
      return skipped;
    },
    now: () => Date.now() + offset,
    sleep(ms, signal) {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const sleeper = {
          target: Date.now() + offset + Math.max(0, ms),
          wake: () => {
            clearTimeout(timer);
            sleepers.delete(sleeper);
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          clearTimeout(timer);
          sleepers.delete(sleeper);
          reject(signal!.reason);
        };
        // Real time moves the virtual clock too.
        const timer = setTimeout(sleeper.wake, Math.max(0, ms));
        sleepers.add(sleeper);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    onAdvance(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    advance(duration) {
      const by = toMilliseconds(duration, 'advance');
      offset += by;
      skipped += by;
      check();
      for (const l of listeners) l();
    },
    advanceTo(time) {
      const target = new Date(time).getTime();
      if (Number.isNaN(target)) throw new InvalidArgumentError('advanceTo needs a valid time');
      const by = target - clock.now();
      if (by > 0) clock.advance(Math.ceil(by));
    },
  };
  return clock;
}

/** Replace the `run` of steps (and compensations) for a test; everything else stays as defined. */
export interface Stubs {
  readonly steps?: Readonly<Record<string, (ctx: StepContext) => unknown>>;
  readonly compensations?: Readonly<Record<string, (ctx: CompensationContext) => unknown>>;
}

/**
 * The same saga (name, version, shape) with some steps' or compensations' work replaced: the
 * way to make the payer fail, or a participant refuse, in a test.
 *
 * @example
 * ```ts
 * const failing = withStubs(onboarding, {
 *   steps: { verifyInsuranceEligibility: () => { throw new PlanNotContracted(); } },
 * });
 * ```
 * @throws InvalidArgumentError when a stub names no step of the saga.
 */
export function withStubs<D extends AnySagaDefinition>(definition: D, stubs: Stubs): D {
  const used = new Set<string>();
  const map = (nodes: readonly SagaNode[]): SagaNode[] =>
    nodes.map((node) => {
      if (node.kind === 'when') return { ...node, branch: map(node.branch) };
      if (node.kind === 'parallel') {
        return { ...node, branches: node.branches.map((b) => ({ ...b, nodes: map(b.nodes) })) };
      }
      if (node.kind !== 'step') return node;
      const run = stubs.steps?.[node.id];
      const comp = stubs.compensations?.[node.id];
      if (run) used.add(`step:${node.id}`);
      if (comp) used.add(`compensation:${node.id}`);
      return {
        ...node,
        ...(run ? { run } : {}),
        ...(comp && node.compensate
          ? { compensate: { ...node.compensate, run: comp, machine: undefined } }
          : {}),
      };
    });
  const nodes = map((definition as AnySagaDefinition).nodes);
  for (const name of Object.keys(stubs.steps ?? {})) {
    if (!used.has(`step:${name}`)) throw new InvalidArgumentError(`no step ${name} to stub`);
  }
  for (const name of Object.keys(stubs.compensations ?? {})) {
    if (!used.has(`compensation:${name}`)) {
      throw new InvalidArgumentError(`no compensation of ${name} to stub`);
    }
  }
  return { ...(definition as object), nodes } as unknown as D;
}

/** A signal to deliver during a scenario, after some virtual time. */
export interface ScenarioSignal {
  readonly type: string;
  readonly data?: unknown;
  /** Virtual time after the start at which it arrives. @defaultValue '0ms' */
  readonly after?: Duration;
}

/** What happens in the world while the saga runs. */
export interface ScenarioWorld extends Stubs {
  readonly signals?: readonly ScenarioSignal[];
  /** How much virtual time the scenario may skip. @defaultValue '365d' */
  readonly within?: Duration;
}

/** What a scenario expects (every field optional; each one given is checked exactly). */
export interface ScenarioExpectation {
  readonly status?: SagaStatus;
  /** Steps that succeeded, in the order they did. */
  readonly completed?: readonly string[];
  /** Compensations that succeeded, in the order they ran. */
  readonly compensated?: readonly string[];
  /** Every event type of the saga's stream, in order. */
  readonly events?: readonly string[];
  /** For a dead letter: where it failed. */
  readonly deadLetter?: { readonly step: string; readonly phase: 'step' | 'compensation' };
}

/** What a scenario ended with. */
export interface ScenarioOutcome {
  readonly instance: SagaInstance;
  readonly events: readonly RecordedEvent[];
  readonly completed: readonly string[];
  readonly compensated: readonly string[];
  /** Virtual time skipped, in milliseconds. */
  readonly skippedMs: number;
  readonly deadLetter: DeadLetterContext | null;
}

/** A Given/When/Then scenario of one saga instance. */
export interface SagaScenario {
  /** Stub steps and compensations, deliver signals. */
  when(world: ScenarioWorld): SagaScenario;
  /**
   * Run the saga to its end (skipping virtual time to each wake-up) and check the expectation.
   * Resolves with the outcome; rejects with a message listing every difference.
   */
  then(expected: ScenarioExpectation): Promise<ScenarioOutcome>;
}

/** Options of {@link given}. */
export interface GivenOptions {
  /** A store to run in (after `store.migrate()`). @defaultValue a fresh in-memory PGlite */
  readonly store?: EventStore;
  /** @defaultValue 'scenario-1' */
  readonly id?: string;
  readonly correlationId?: string;
}

/**
 * Given a saga and its input, when the world behaves so, then the instance ends so. Runs the real
 * runtime (on an in-memory PGlite unless a store is given) with a virtual clock, so waits of
 * weeks take milliseconds.
 *
 * @example
 * ```ts
 * await given(onboarding, { patientId: 'p-81', payerId: 'acme-dental' })
 *   .when({ steps: { verifyInsuranceEligibility: () => { throw new PlanNotContracted(); } } })
 *   .then({ status: 'compensated', compensated: ['createPatientRecord'] });
 * ```
 */
export function given<D extends AnySagaDefinition>(
  definition: D,
  input: InputFrom<D>,
  options: GivenOptions = {},
): SagaScenario {
  const worlds: ScenarioWorld[] = [];
  const scenario: SagaScenario = {
    when(world) {
      worlds.push(world);
      return scenario;
    },
    // biome-ignore lint/suspicious/noThenProperty: Given/When/Then; awaiting the scenario itself is refused below.
    async then(expected) {
      if (typeof expected !== 'object' || expected === null) {
        throw new InvalidArgumentError(
          'a scenario ends with .then({ status, ... }); await the promise that returns, not the scenario',
        );
      }
      const world: ScenarioWorld = {
        steps: Object.assign({}, ...worlds.map((w) => w.steps ?? {})),
        compensations: Object.assign({}, ...worlds.map((w) => w.compensations ?? {})),
        signals: worlds.flatMap((w) => w.signals ?? []),
        within:
          worlds
            .map((w) => w.within)
            .filter((w) => w !== undefined)
            .pop() ?? '365d',
      };
      const outcome = await runScenario(definition as AnySagaDefinition, input, world, options);
      const problems: string[] = [];
      const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
      if (expected.status !== undefined && outcome.instance.status !== expected.status) {
        problems.push(`status: expected ${expected.status}, got ${outcome.instance.status}`);
      }
      if (expected.completed && !same(outcome.completed, expected.completed)) {
        problems.push(
          `completed steps: expected ${JSON.stringify(expected.completed)}, got ${JSON.stringify(outcome.completed)}`,
        );
      }
      if (expected.compensated && !same(outcome.compensated, expected.compensated)) {
        problems.push(
          `compensations: expected ${JSON.stringify(expected.compensated)}, got ${JSON.stringify(outcome.compensated)}`,
        );
      }
      const types = outcome.events.map((e) => e.type);
      if (expected.events && !same(types, expected.events)) {
        problems.push(
          `events: expected ${JSON.stringify(expected.events)}, got ${JSON.stringify(types)}`,
        );
      }
      if (expected.deadLetter) {
        const point = outcome.deadLetter?.failurePoint;
        if (
          !point ||
          point.step !== expected.deadLetter.step ||
          point.phase !== expected.deadLetter.phase
        ) {
          problems.push(
            `dead letter: expected ${expected.deadLetter.phase} ${expected.deadLetter.step}, got ${point ? `${point.phase} ${point.step}` : 'none'}`,
          );
        }
      }
      if (problems.length > 0) {
        // A failed expectation, as test runners report them (not a runtime error code).
        throw new AssertionError({
          message: `saga ${definition.name} did not end as expected:\n  ${problems.join('\n  ')}`,
        });
      }
      return outcome;
    },
  };
  return scenario;
}

async function runScenario(
  definition: AnySagaDefinition,
  input: unknown,
  world: ScenarioWorld,
  options: GivenOptions,
): Promise<ScenarioOutcome> {
  let store = options.store;
  let close: (() => Promise<void>) | undefined;
  if (!store) {
    const [{ PGlite }, { createEventStore }] = await Promise.all([
      import('@electric-sql/pglite'),
      import('@evident/eventstore'),
    ]);
    const pglite = new PGlite();
    store = createEventStore({ pglite });
    await store.migrate();
    close = async () => {
      await store!.close();
      await pglite.close();
    };
  }
  try {
    await migrateSagas(store);
    const clock = createVirtualClock();
    const stubbed = withStubs(definition as AnySagaDefinition, world);
    const runtime = createSagaRuntime({ store, sagas: [stubbed], clock, workers: false });
    const id = options.id ?? 'scenario-1';
    const started = clock.now();
    const within = toMilliseconds(world.within ?? '365d', 'within');
    await runtime.start(definition.name, input, {
      id,
      ...(options.correlationId ? { correlationId: options.correlationId } : {}),
    });
    const signals = (world.signals ?? [])
      .map((s, i) => ({ ...s, at: started + toMilliseconds(s.after ?? 0, 'after'), i }))
      .sort((a, b) => a.at - b.at || a.i - b.i);
    const kit = sagaKit(runtime, store, clock);
    for (;;) {
      while (signals[0] && signals[0].at <= clock.now()) {
        const s = signals.shift()!;
        await runtime.signal(
          id,
          createEnvelope({
            type: s.type,
            data: s.data ?? null,
            source: 'scenario',
            actor: { id: 'scenario', role: 'test' },
          }),
        );
      }
      await runtime.drain();
      const instance = (await runtime.get(id))!;
      if (finalStatuses.has(instance.status)) break;
      const due = await kit.nextDue(id);
      const next = Math.min(
        due ?? Number.POSITIVE_INFINITY,
        signals[0]?.at ?? Number.POSITIVE_INFINITY,
      );
      if (!Number.isFinite(next) || next > started + within) break;
      clock.advanceTo(next);
    }
    const instance = (await runtime.get(id))!;
    const events = await store.readStream({ type: 'saga', id });
    const completed = events
      .filter((e) => e.type === 'StepSucceeded')
      .map((e) => (e.data as SagaEventData['StepSucceeded']).step);
    const compensated = events
      .filter((e) => e.type === 'CompensationSucceeded')
      .map((e) => (e.data as SagaEventData['CompensationSucceeded']).step);
    const dead = [...events].reverse().find((e) => e.type === 'SagaDeadLettered');
    await runtime.stop();
    return {
      instance,
      events,
      completed,
      compensated,
      skippedMs: clock.skipped,
      deadLetter: dead ? (dead.data as DeadLetterContext) : null,
    };
  } finally {
    await close?.();
  }
}

/** Helpers around a runtime on a virtual clock, for tests against a real database. */
export interface SagaKit {
  /** When the instance is next due (database or virtual time, ms), or null. */
  nextDue(sagaId: string): Promise<number | null>;
  /**
   * Run the instance until it is final or nothing is due within `within` of virtual time,
   * skipping the clock to each wake-up. Returns the instance as it then is.
   */
  runUntilSettled(sagaId: string, options?: { readonly within?: Duration }): Promise<SagaInstance>;
}

/**
 * Skip a runtime's virtual clock from wake-up to wake-up.
 *
 * @example
 * ```ts
 * const kit = sagaKit(runtime, store, clock);
 * const done = await kit.runUntilSettled('claim-c-9', { within: '60d' }); // 45 days in milliseconds
 * ```
 */
export function sagaKit(runtime: SagaRuntime, store: EventStore, clock: VirtualClock): SagaKit {
  const kit: SagaKit = {
    async nextDue(sagaId) {
      const rows = await store.database.query<{ due: string | number | null }>(
        `select (extract(epoch from due_at) * 1000)::int8 as due from "${store.schema}".saga_instances where saga_id = $1`,
        [sagaId],
      );
      const due = rows[0]?.due;
      return due === null || due === undefined ? null : Number(due);
    },
    async runUntilSettled(sagaId, options = {}) {
      const limit = clock.now() + toMilliseconds(options.within ?? '365d', 'within');
      for (;;) {
        await runtime.drain();
        const instance = await runtime.get(sagaId);
        if (!instance) throw new SagaError('SAGA_NOT_FOUND', 'no saga instance with that id');
        if (finalStatuses.has(instance.status)) return instance;
        const due = await kit.nextDue(sagaId);
        if (due === null || due > limit) return instance;
        clock.advanceTo(due);
      }
    },
  };
  return kit;
}

/** The replay check of one stored instance. */
export interface HistoryReport {
  readonly sagaId: string;
  readonly saga: string;
  /** The version the instance runs (it started with it, or was migrated to it). */
  readonly version: number;
  readonly status: SagaStatus;
  readonly compatible: boolean;
  readonly problems: readonly HistoryProblem[];
}

/**
 * Replay the stored histories of instances against the definitions about to be deployed, and
 * report every instance the new code could not continue (reliability scenario 22). Run it in CI
 * against a copy of production's saga streams, or at start-up before the workers.
 *
 * @example
 * ```ts
 * const reports = await checkStoredHistories({ store, sagas: [onboardingV1, onboardingV2] });
 * const broken = reports.filter((r) => !r.compatible);
 * expect(broken).toEqual([]);
 * ```
 */
export async function checkStoredHistories(options: {
  readonly store: EventStore;
  readonly sagas: readonly AnySagaDefinition[];
  /** Check finished instances too (they will never run again). @defaultValue false */
  readonly includeFinished?: boolean;
  /** Most instances checked. @defaultValue 10000 */
  readonly limit?: number;
}): Promise<HistoryReport[]> {
  const { store } = options;
  const defs = options.sagas as unknown as readonly AnySagaDefinition[];
  const names = [...new Set(defs.map((d) => d.name))];
  const rows = await store.database.query<{
    saga_id: string;
    saga_name: string;
    saga_version: number;
    status: SagaStatus;
  }>(
    `select saga_id, saga_name, saga_version, status from "${store.schema}".saga_instances
      where saga_name = any($1::text[])
        and ($2::boolean or status not in ('completed', 'compensated', 'resolved'))
      order by started_at limit $3`,
    [names, options.includeFinished ?? false, options.limit ?? 10_000],
  );
  const reports: HistoryReport[] = [];
  for (const row of rows) {
    const recorded = await store.readStream({ type: 'saga', id: row.saga_id });
    const events = recorded.map(toFoldEvent);
    const original =
      (recorded[0]?.data as SagaEventData['SagaStarted'] | undefined)?.version ?? row.saga_version;
    const version = Number(row.saga_version);
    const candidates = defs
      .filter((d) => d.name === row.saga_name && d.version >= version)
      .sort((a, b) => a.version - b.version);
    const runner =
      candidates.find((d) => d.version === version) ??
      candidates.find((d) => migrateHistory(d, original, events) !== null);
    let problems: HistoryProblem[];
    if (!runner) {
      problems = [
        {
          kind: 'version-unregistered',
          node: row.saga_name,
          streamVersion: recorded.length,
          message: `no definition of ${row.saga_name} runs version ${version} (nor migrates it)`,
        },
      ];
    } else {
      const history = migrateHistory(runner, original, events);
      problems = history ? checkHistory(runner, history) : [];
    }
    reports.push({
      sagaId: row.saga_id,
      saga: row.saga_name,
      version,
      status: row.status,
      compatible: problems.length === 0,
      problems,
    });
  }
  return reports;
}
