/**
 * Properties of the runtime, for any saga shape (steps with and without compensations, taken and
 * skipped branches, parallel branches, nested) and any injected failures (steps and compensations
 * that fail for good, or once), against PostgreSQL:
 *
 * 1. the instance ends in exactly one of completed, compensated, dead-lettered — completed exactly
 *    when no step that fails for good was reached;
 * 2. the compensations that ran are exactly the reverse of the completed steps that declare one
 *    (up to and including the one that failed, for a dead letter);
 * 3. the stream replays to the same state: the fold of the stored events agrees with the work
 *    table the trigger kept, decides nothing more, and is a history the definition produces.
 */
import type { EventStore } from '@evident/eventstore';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory, type StoreFixture, stepStarts } from '../test/fixtures.js';
import { decide } from './decide.js';
import type { SagaDefinition } from './defineSaga.js';
import { checkHistory } from './history.js';
import { createSagaRuntime, defineSaga, type SagaEventData } from './index.js';
import { toFoldEvent } from './runInstance.js';
import { foldHistory } from './state.js';

type Fault = 'never' | 'always' | 'once';
type Shape =
  | { kind: 'step'; compensable: boolean; fail: Fault; compFail: Fault }
  | { kind: 'when'; value: boolean; branch: Shape[] }
  | { kind: 'parallel'; branches: Shape[][] };

const fault = fc.constantFrom<Fault>('never', 'never', 'never', 'once', 'always');
const { shapes } = fc.letrec<{ node: Shape; shapes: Shape[] }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({
      kind: fc.constant('step' as const),
      compensable: fc.boolean(),
      fail: fault,
      compFail: fault,
    }),
    fc.record({
      kind: fc.constant('when' as const),
      value: fc.boolean(),
      branch: tie('shapes') as fc.Arbitrary<Shape[]>,
    }),
    fc.record({
      kind: fc.constant('parallel' as const),
      branches: fc.array(tie('shapes') as fc.Arbitrary<Shape[]>, { minLength: 2, maxLength: 3 }),
    }),
  ),
  shapes: fc.array(tie('node') as fc.Arbitrary<Shape>, { minLength: 1, maxLength: 4 }),
}));

class Permanent extends Error {
  override readonly name = 'Permanent';
}

let sagaCounter = 0;

/**
 * The definition for a shape, and what the model expects of it. With `interrupt`, the step with
 * that number calls it on its first attempt and then hangs until its worker lets go.
 */
function build(shape: Shape[], interrupt?: { at: number; now: () => void }) {
  let interrupted = false;
  let n = 0;
  const name = `prop-${++sagaCounter}`;
  let failureReachable = false;
  const add = (b: SagaDefinition, nodes: Shape[], reachable: boolean): SagaDefinition => {
    let out = b;
    for (const node of nodes) {
      if (node.kind === 'step') {
        const step = `s${++n}`;
        if (node.fail === 'always' && reachable) failureReachable = true;
        const fail = (f: Fault, attempt: number) => {
          if (f === 'always' || (f === 'once' && attempt === 1))
            throw new Permanent(`${step} refused`);
        };
        const index = n;
        out = out.step(step, {
          run: async ({ attempt, signal }) => {
            if (interrupt && index === interrupt.at && !interrupted) {
              interrupted = true;
              interrupt.now();
              await new Promise((_, reject) =>
                signal.addEventListener('abort', () => reject(signal.reason)),
              );
            }
            if (node.fail === 'always') fail('always', attempt);
            if (node.fail === 'once' && attempt === (interrupt && index === interrupt.at ? 2 : 1)) {
              throw new Error('flaky');
            }
            return { step, attempt };
          },
          retry: { attempts: 3, initialInterval: 1, nonRetryable: [Permanent] },
          ...(node.compensable
            ? {
                compensate: {
                  transition: `undo${step}`,
                  run: ({ attempt }: { attempt: number }) => {
                    if (node.compFail === 'always') fail('always', attempt);
                    if (node.compFail === 'once' && attempt === 1) throw new Error('flaky');
                    return null;
                  },
                  retry: { attempts: 2, initialInterval: 1, nonRetryable: [Permanent] },
                },
              }
            : {}),
        }) as SagaDefinition;
      } else if (node.kind === 'when') {
        out = out.when(
          () => node.value,
          (b) => add(b as SagaDefinition, node.branch, reachable && node.value) as never,
        ) as SagaDefinition;
      } else {
        const branches = Object.fromEntries(
          node.branches.map((branch, i) => [
            `b${i}`,
            (b: SagaDefinition) => add(b, branch, reachable) as never,
          ]),
        );
        out = out.parallel(branches as never) as SagaDefinition;
      }
    }
    return out;
  };
  const definition = add(
    defineSaga(name, { version: 1 }) as unknown as SagaDefinition,
    shape,
    true,
  );
  return { name, definition, failureReachable, steps: n, wasInterrupted: () => interrupted };
}

describe.skipIf(!postgresUrl)('saga properties (PostgreSQL)', () => {
  let fixture: StoreFixture;
  let store: EventStore;

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
  });
  afterAll(() => fixture?.cleanup());

  /** The three properties, checked on one finished instance. */
  async function expectProperties(
    sagaId: string,
    definition: SagaDefinition,
    failureReachable: boolean,
  ) {
    const runtime = createSagaRuntime({ store, sagas: [definition], workers: false });
    let events: Awaited<ReturnType<EventStore['readStream']>> = [];
    try {
      const instance = (await runtime.get(sagaId))!;
      events = await store.readStream({ type: 'saga', id: sagaId });
      const types = events.map((e) => e.type);

      // 1. Exactly one final state, last, and the right one.
      const finals = types.filter((t) =>
        ['SagaCompleted', 'SagaCompensated', 'SagaDeadLettered'].includes(t),
      );
      expect(finals).toHaveLength(1);
      expect(types.at(-1)).toBe(finals[0]);
      const status = {
        SagaCompleted: 'completed',
        SagaCompensated: 'compensated',
        SagaDeadLettered: 'dead_lettered',
      }[finals[0] as 'SagaCompleted'];
      expect(instance.status).toBe(status);
      expect(status === 'completed').toBe(!failureReachable);
      const compensationFailed = events.some(
        (e) =>
          e.type === 'CompensationFailed' && (e.data as SagaEventData['CompensationFailed']).final,
      );
      expect(status === 'dead_lettered').toBe(compensationFailed);

      // 2. Compensations: the reverse of the completed steps that declare one.
      const completed = events
        .filter((e) => e.type === 'StepSucceeded')
        .map((e) => (e.data as SagaEventData['StepSucceeded']).step);
      const intents = new Set(
        stepStarts(events)
          .filter((d) => d.compensation)
          .map((d) => d.step),
      );
      const ran = [
        ...new Set(
          events
            .filter((e) => e.type === 'CompensationStarted')
            .map((e) => (e.data as SagaEventData['CompensationStarted']).step),
        ),
      ];
      const expected = [...completed].reverse().filter((s) => intents.has(s));
      if (status === 'completed') expect(ran).toEqual([]);
      if (status === 'compensated') expect(ran).toEqual(expected);
      if (status === 'dead_lettered') {
        expect(ran).toEqual(expected.slice(0, ran.length));
        const failedAt = events.find(
          (e) =>
            e.type === 'CompensationFailed' &&
            (e.data as SagaEventData['CompensationFailed']).final,
        )!;
        expect(ran.at(-1)).toBe((failedAt.data as SagaEventData['CompensationFailed']).step);
      }

      // 3. The stream replays to the same state.
      const folded = foldHistory(sagaId, events.map(toFoldEvent));
      expect(folded.status).toBe(instance.status);
      expect(folded.completed).toEqual(completed);
      expect(folded.compensated).toEqual(
        events
          .filter((e) => e.type === 'CompensationSucceeded')
          .map((e) => (e.data as SagaEventData['CompensationSucceeded']).step),
      );
      expect(foldHistory(sagaId, events.map(toFoldEvent))).toEqual(folded);
      const next = decide(definition, folded, {
        now: Date.now(),
        inFlight: new Set(),
        virtual: false,
      });
      expect([next.record, next.start, next.deadLetter]).toEqual([[], [], null]);
      expect(checkHistory(definition, events)).toEqual([]);
    } finally {
      await runtime.stop();
    }
    return events;
  }

  it('ends every shape and failure in one final state, compensating exactly the completed steps in reverse, replayably', async () => {
    let id = 0;
    await fc.assert(
      fc.asyncProperty(shapes, async (shape) => {
        const { name, definition, failureReachable } = build(shape);
        const runtime = createSagaRuntime({ store, sagas: [definition], workers: false });
        const sagaId = `prop-${process.pid}-${++id}`;
        try {
          await runtime.start(name, null, { id: sagaId });
          await runtime.drain();
          await expectProperties(sagaId, definition, failureReachable);
        } finally {
          await runtime.stop();
        }
      }),
      { numRuns: Number(process.env.SAGA_PROPERTY_RUNS ?? 60) },
    );
  });

  it('holds the same when the worker is stopped in the middle of any step and another one finishes', async () => {
    let id = 0;
    await fc.assert(
      fc.asyncProperty(shapes, fc.nat(), async (shape, pick) => {
        let stop: () => void = () => {};
        const interrupt = { at: 0, now: () => stop() };
        const built = build(shape, interrupt);
        interrupt.at = 1 + (pick % built.steps);
        const first = createSagaRuntime({
          store,
          sagas: [built.definition],
          workers: { concurrency: 4, pollInterval: '1h' },
        });
        let stopped: Promise<void> | undefined;
        stop = () => {
          stopped = first.stop();
        };
        const sagaId = `prop-stop-${process.pid}-${++id}`;
        try {
          await first.start(built.name, null, { id: sagaId });
          // Until the chosen step stops the worker, or the instance ends without reaching it.
          await first.waitUntil(sagaId, {
            until: (i) =>
              stopped !== undefined ||
              ['completed', 'compensated', 'dead_lettered'].includes(i.status),
          });
          await stopped;
        } finally {
          await first.stop();
        }
        const second = createSagaRuntime({ store, sagas: [built.definition], workers: false });
        try {
          await second.drain();
        } finally {
          await second.stop();
        }
        const events = await expectProperties(sagaId, built.definition, built.failureReachable);
        if (built.wasInterrupted()) {
          // The interrupted step (and any parallel one in flight with it) was recorded as such and
          // run again, with the same idempotency key.
          const failed = events
            .filter((e) => e.type === 'StepFailed')
            .map((e) => e.data as SagaEventData['StepFailed'])
            .filter((d) => d.error.code === 'ATTEMPT_INTERRUPTED');
          expect(failed.map((d) => d.step)).toContain(`s${interrupt.at}`);
          const starts = stepStarts(events);
          for (const d of failed) {
            const again = starts.filter((x) => x.step === d.step);
            expect(again.map((x) => x.attempt)).toContain(d.attempt + 1);
            expect(new Set(again.map((x) => x.idempotencyKey)).size).toBe(1);
          }
        }
      }),
      { numRuns: Number(process.env.SAGA_PROPERTY_RUNS ?? 40) },
    );
  });
});
