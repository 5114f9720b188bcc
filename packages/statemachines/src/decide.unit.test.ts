import { isEvidentError } from '@evident/envelope';
import { describe, expect, it } from 'vitest';
import {
  assign,
  cancel,
  createMachine,
  enqueueActions,
  fromPromise,
  initialTransition,
  log,
  raise,
  sendTo,
  setup,
} from 'xstate';
import { documentReview } from '../examples/documentReview.js';
import { claimMachine } from '../test/machines.js';
import { applyActions, decide, persist, restore, withRecordedGuards } from './decide.js';
import {
  createDurableMachine,
  describeStateValue,
  isUnknownStateError,
  planTransition,
} from './index.js';
import { Lru } from './lru.js';
import { inspectMachine } from './machineShape.js';
import { missingStatePath, upgradeSnapshot } from './persistedState.js';

const noStore = { schema: 'x', database: {} } as never;

describe('decide', () => {
  const deciding = withRecordedGuards(documentReview);
  const [draft] = initialTransition(deciding, {});

  it('records the named guards XState evaluated, only while deciding', () => {
    const refused = decide(deciding, draft, { type: 'SUBMIT', pages: 0 });
    expect(refused).toEqual({
      kind: 'rejected',
      reason: 'guards-refused',
      guards: [{ guard: 'hasPages', result: false }],
    });
    const accepted = decide(deciding, draft, { type: 'SUBMIT', pages: 1 });
    expect(accepted.kind === 'transitioned' && accepted.guards).toEqual([
      { guard: 'hasPages', result: true },
    ]);
    // Guards called outside a decision are not recorded anywhere.
    expect(
      deciding.implementations.guards.hasPages!(
        { event: { type: 'SUBMIT', pages: 1 } } as never,
        undefined as never,
      ),
    ).toBe(true);
    expect(decide(deciding, draft, { type: 'WITHDRAW' })).toMatchObject({ guards: [] });
  });

  it('tells an event with no transition from one its guards refused, and a done machine', () => {
    expect(decide(deciding, draft, { type: 'PUBLISH', role: 'x' })).toMatchObject({
      kind: 'rejected',
      reason: 'no-transition',
    });
    const withdrawn = decide(deciding, draft, { type: 'WITHDRAW' });
    if (withdrawn.kind !== 'transitioned') throw new Error('expected a transition');
    expect(decide(deciding, withdrawn.next, { type: 'SUBMIT', pages: 1 })).toMatchObject({
      kind: 'rejected',
      reason: 'machine-done',
    });
  });

  it('never runs an action while deciding', () => {
    let ran = 0;
    const machine = withRecordedGuards(
      claimMachine.provide({
        actions: {
          notifyPayer: () => {
            ran += 1;
          },
        },
      }),
    );
    const [start] = initialTransition(machine);
    const step = decide(machine, start, { type: 'ClaimSubmitted', lines: 1 });
    expect(step.kind === 'transitioned' && step.executable.map((a) => a.type)).toEqual([
      'notifyPayer',
    ]);
    expect(ran).toBe(0);
  });

  it('round-trips a snapshot through its persisted JSON form', () => {
    const step = decide(deciding, draft, { type: 'SUBMIT', pages: 1 });
    if (step.kind !== 'transitioned') throw new Error('expected a transition');
    const persisted = persist(deciding, step.next);
    const restored = restore(deciding, JSON.parse(JSON.stringify(persisted)));
    expect(restored.value).toEqual(step.next.value);
    expect(persist(deciding, restored)).toEqual(persisted);
    const next = decide(deciding, restored, { type: 'APPROVE_LEGAL' });
    expect(next.kind === 'transitioned' && next.next.value).toEqual({
      inReview: { legal: 'approved', editorial: 'pending' },
    });
  });
});

describe('applyActions', () => {
  const timer = (id: string, version: number) => ({
    id,
    version,
    event: { type: id },
    delay: 1000,
  });

  it('turns named actions into indexed jobs, keeping their params', () => {
    const out = applyActions(
      [
        { type: 'notifyPayer' },
        { type: 'xstate.log', params: {} },
        { type: 'notifyAuthor', params: { reason: 'x' } },
        // An immediate raise was processed inside the step already.
        { type: 'xstate.raise', params: { event: { type: 'NEXT' } } },
      ],
      [],
      4,
      null,
    );
    expect(out.actions).toEqual([
      { index: 0, type: 'notifyPayer' },
      { index: 1, type: 'notifyAuthor', params: { reason: 'x' } },
    ]);
    expect(out.effects).toEqual({ actions: out.actions, schedule: [], cancel: [], fired: null });
  });

  it('schedules delayed raises, with a deterministic id when XState would make one up', () => {
    const out = applyActions(
      [
        { type: 'xstate.raise', params: { event: { type: 'T' }, id: 'deadline', delay: 500 } },
        { type: 'xstate.raise', params: { event: { type: 'U' }, delay: 10 } },
      ],
      [timer('old', 2)],
      7,
      null,
    );
    expect(out.effects.schedule).toEqual([
      { id: 'deadline', version: 7, event: { type: 'T' }, delay: 500 },
      { id: 'raise.7.1', version: 7, event: { type: 'U' }, delay: 10 },
    ]);
    expect(out.timers.map((t) => t.id)).toEqual(['old', 'deadline', 'raise.7.1']);
  });

  it('cancels earlier timers by id, and a timer scheduled and cancelled in one step is never stored', () => {
    const out = applyActions(
      [
        { type: 'xstate.cancel', params: { sendId: 'a' } },
        { type: 'xstate.raise', params: { event: { type: 'A' }, id: 'a', delay: 5 } },
        { type: 'xstate.raise', params: { event: { type: 'B' }, id: 'b', delay: 5 } },
        { type: 'xstate.cancel', params: { sendId: 'b' } },
      ],
      [timer('a', 3), timer('c', 3)],
      9,
      null,
    );
    expect(out.effects.cancel).toEqual([{ id: 'a', version: 3 }]);
    expect(out.effects.schedule).toEqual([{ id: 'a', version: 9, event: { type: 'A' }, delay: 5 }]);
    expect(out.timers.map((t) => [t.id, t.version])).toEqual([
      ['c', 3],
      ['a', 9],
    ]);
  });

  it('removes the timer that fired the step', () => {
    const out = applyActions([], [timer('a', 3), timer('b', 4)], 5, { id: 'a', version: 3 });
    expect(out.timers.map((t) => t.id)).toEqual(['b']);
    expect(out.effects.fired).toEqual({ id: 'a', version: 3 });
  });

  it('refuses a built-in that cannot be durable before anything is written', () => {
    let error: unknown;
    try {
      applyActions([{ type: 'xstate.sendTo', params: {} }], [], 1, null);
    } catch (e) {
      error = e;
    }
    expect(isEvidentError(error, 'UNSUPPORTED_ACTION')).toBe(true);
  });
});

describe('what a durable machine may hold', () => {
  const base = setup({
    types: { events: {} as { type: 'GO' } },
    guards: { ok: () => true },
    actions: { named: () => {} },
  });

  const refusal = (machine: Parameters<typeof inspectMachine>[0]) => {
    try {
      inspectMachine(machine);
    } catch (error) {
      expect(isEvidentError(error, 'INVALID_ARGUMENT')).toBe(true);
      return (error as Error).message;
    }
    throw new Error('expected the machine to be refused');
  };

  it('accepts named guards and actions, and built-ins that are pure or become timers', () => {
    const shape = inspectMachine(
      base.createMachine({
        initial: 'a',
        states: {
          a: {
            entry: [
              assign({}),
              log('x'),
              raise({ type: 'GO' }, { delay: 5, id: 'r' }),
              cancel('r'),
            ],
            after: { 100: 'b' },
            on: { GO: { guard: 'ok', target: 'b', actions: 'named' } },
          },
          b: { entry: enqueueActions(() => {}) },
        },
      }),
    );
    expect([...shape.guards]).toEqual(['ok']);
    expect([...shape.actions]).toEqual(['named']);
  });

  it('refuses an inline guard, naming the state and event', () => {
    const message = refusal(
      base.createMachine({
        initial: 'a',
        states: { a: { on: { GO: { guard: () => true, target: 'b' } } }, b: {} },
      }),
    );
    expect(message).toContain('GO transition of state a');
    expect(message).toContain('inline guard');
  });

  it('refuses an inline action, an invoked actor and sendTo', () => {
    expect(
      refusal(base.createMachine({ initial: 'a', states: { a: { entry: () => {} } } })),
    ).toContain('inline action');
    expect(
      refusal(
        base.createMachine({
          initial: 'a',
          states: { a: { invoke: { src: fromPromise(async () => 1) } as never } },
        }),
      ),
    ).toContain('invokes an actor');
    expect(
      refusal(
        base.createMachine({
          initial: 'a',
          states: { a: { entry: sendTo('other', { type: 'GO' }) } },
        }),
      ),
    ).toContain('xstate.sendTo');
  });

  it('refuses a named action that has no implementation anywhere, at creation', () => {
    const machine = createMachine({ initial: 'a', states: { a: { entry: 'notifyLab' } } });
    expect(() => createDurableMachine(machine, { store: noStore, streamType: 'x' })).toThrow(
      /action notifyLab has no implementation/,
    );
    expect(() =>
      createDurableMachine(machine, {
        store: noStore,
        streamType: 'x',
        actions: { notifyLab: () => {} },
      }),
    ).not.toThrow();
  });

  it('checks options at the boundary', () => {
    expect(() =>
      createDurableMachine(claimMachine, { store: noStore, streamType: 'Bad Type' }),
    ).toThrow(/stream type/);
    expect(() =>
      createDurableMachine(claimMachine, { store: noStore, streamType: 'claim', version: 0 }),
    ).toThrow(/version must be an integer >= 1/);
  });
});

describe('versions', () => {
  const current = { id: 'documentReview', version: 3 };
  const snapshot = {
    status: 'active' as const,
    value: 'old' as unknown as string,
    context: { n: 1 },
    children: {},
    historyValue: {},
  };

  it('applies the registered migrations in order', () => {
    const upgraded = upgradeSnapshot(
      documentReview,
      current,
      { id: 'documentReview', version: 1 },
      snapshot,
      {
        1: (s) => ({ ...s, value: 'older', context: { ...(s.context as object), one: true } }),
        2: (s) => ({
          ...s,
          value: s.value === 'older' ? 'draft' : s.value,
          context: { ...(s.context as object), two: true },
        }),
      },
    );
    expect(upgraded).toMatchObject({ value: 'draft', context: { n: 1, one: true, two: true } });
  });

  it('names the first state that does not exist, nested or in a region', () => {
    expect(missingStatePath(documentReview, 'draft')).toBeNull();
    expect(
      missingStatePath(documentReview, { inReview: { legal: 'pending', editorial: 'approved' } }),
    ).toBeNull();
    expect(
      missingStatePath(documentReview, { inReview: { legal: 'escalated', editorial: 'pending' } }),
    ).toBe('inReview.legal.escalated');
    expect(missingStatePath(documentReview, 'toString')).toBe('toString');
    let error: unknown;
    try {
      upgradeSnapshot(documentReview, current, { id: 'documentReview', version: 2 }, snapshot, {});
    } catch (e) {
      error = e;
    }
    expect(isUnknownStateError(error)).toBe(true);
    expect((error as Error).message).toBe(
      "state 'old' of a documentReview v2 instance does not exist in documentReview v3; register a migration from v2 that maps it to an existing state",
    );
  });

  it('refuses a snapshot of another machine or a newer version', () => {
    expect(() =>
      upgradeSnapshot(documentReview, current, { id: 'claim', version: 1 }, snapshot, {}),
    ).toThrow(/machine claim/);
    expect(() =>
      upgradeSnapshot(documentReview, current, { id: 'documentReview', version: 4 }, snapshot, {}),
    ).toThrow(/newer than this v3/);
  });
});

describe('planTransition', () => {
  it('plans from a persisted snapshot without a store', () => {
    const persisted = {
      status: 'active' as const,
      value: 'changesRequested',
      context: { revision: 2, maxRevisions: 2 },
      children: {},
      historyValue: {},
    };
    // The guard refuses a third revision: compensation back to draft is not legal.
    expect(planTransition(documentReview, persisted, 'draft')).toMatchObject({
      legal: false,
      tried: ['REVISE', 'WITHDRAW'],
    });
    expect(
      planTransition(
        documentReview,
        { ...persisted, context: { revision: 0, maxRevisions: 2 } },
        'draft',
      ),
    ).toMatchObject({ legal: true, event: { type: 'REVISE' }, actions: [] });
  });
});

describe('small pieces', () => {
  it('describes state values as dotted paths', () => {
    expect(describeStateValue('draft')).toBe('draft');
    expect(describeStateValue({ a: { b: 'c' } })).toBe('a.b.c');
    expect(describeStateValue({ r: { x: 'one', y: 'two' } })).toBe('{r.x.one, r.y.two}');
  });

  it('forgets the least recently used entries', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.get('a');
    lru.set('c', 3);
    expect([lru.get('a'), lru.get('b'), lru.get('c')]).toEqual([1, undefined, 3]);
    const none = new Lru<string, number>(0);
    none.set('a', 1);
    expect(none.get('a')).toBeUndefined();
  });
});
