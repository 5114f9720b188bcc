/**
 * Model-based testing of durable machines, around XState's own graph traversal (`xstate/graph`):
 * every path the pure machine can take, replayed through the durable implementation, must end in
 * the same state and context.
 */
import type { Actor } from '@evident/envelope';
import type {
  AnyMachineSnapshot,
  AnyStateMachine,
  EventFromLogic,
  EventObject,
  StateValue,
} from 'xstate';
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import { applyActions, decide, decideInitial, withRecordedGuards } from './decide.js';
import type { DurableMachine } from './durableMachine.js';
import { describeStateValue } from './errors.js';
import type { GuardEvaluation, RejectionReason } from './persistedState.js';

/** One path of the pure machine: the events from its initial state, and where they lead. */
export interface MachinePath {
  /** The events after creation, in order (delayed events as `xstate.after.*`). */
  readonly events: readonly EventObject[];
  /** The state XState reaches. */
  readonly value: StateValue;
  readonly context: unknown;
  readonly status: string;
  /** `SUBMIT → APPROVE_LEGAL → …`, for test names. */
  readonly description: string;
}

/** Options of {@link machinePaths}. */
export interface MachinePathsOptions {
  /** `simple`: every path that visits no state twice; `shortest`: one shortest path per state. @defaultValue 'simple' */
  readonly kind?: 'simple' | 'shortest';
  /**
   * The events to try in every state, with payloads (guards may read them). Include
   * `xstate.after.*` events to walk delayed transitions.
   */
  readonly events:
    | readonly EventObject[]
    | ((snapshot: AnyMachineSnapshot) => readonly EventObject[]);
  /** Machine input. @defaultValue undefined */
  readonly input?: unknown;
  /**
   * How states are told apart. The default (value and context) needs a context that stays
   * bounded, or the traversal never ends: count with a limit, or pass your own.
   */
  readonly serializeState?: (snapshot: AnyMachineSnapshot) => string;
  /** Most states to explore. @defaultValue 10000 */
  readonly limit?: number;
}

const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value ?? null));

/**
 * The paths of a machine as plain data, from `getSimplePaths` or `getShortestPaths`.
 *
 * @example
 * ```ts
 * const paths = machinePaths(orderMachine, { events: [{ type: 'PAY' }, { type: 'SHIP' }] });
 * ```
 */
export function machinePaths(
  machine: AnyStateMachine,
  options: MachinePathsOptions,
): MachinePath[] {
  const traverse = options.kind === 'shortest' ? getShortestPaths : getSimplePaths;
  const paths = traverse(machine, {
    events: options.events as never,
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.serializeState
      ? { serializeState: (s: AnyMachineSnapshot) => options.serializeState!(s) }
      : {}),
    limit: options.limit ?? 10_000,
  } as never);
  return paths.map((path) => {
    // The first step is the machine's own initialisation.
    const events = path.steps
      .map((s) => s.event as EventObject)
      .filter((e) => e.type !== 'xstate.init');
    const state = path.state as AnyMachineSnapshot;
    return {
      events,
      value: plain(state.value) as StateValue,
      context: plain(state.context),
      status: state.status,
      description: events.length === 0 ? '(initial)' : events.map((e) => e.type).join(' → '),
    };
  });
}

/**
 * Make an entity's pending timers due now (all of them, or those with id `timerId`) and fire
 * them: a delayed transition without the wait, through the same path a worker takes after a real
 * delay. Resolves once they are settled (by this call, or by a worker that claimed them first).
 *
 * @returns How many timers were made due.
 */
export async function fireTimersNow(
  durable: DurableMachine<AnyStateMachine>,
  entityId: string,
  timerId?: string,
): Promise<number> {
  const { store } = durable;
  const table = `"${store.schema}".machine_timers`;
  const rows = await store.database.query<{ timer_id: string; scheduled_version: string }>(
    `update ${table} set fire_at = now()
      where stream_type = $1 and entity_id = $2 and status = 'pending'
        and ($3::text is null or timer_id = $3)
      returning timer_id, scheduled_version::text`,
    [durable.streamType, entityId, timerId ?? null],
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    await durable.runDue({ entityId });
    const [open] = await store.database.query<{ n: string }>(
      `select count(*)::text as n from ${table}
        where stream_type = $1 and entity_id = $2 and status in ('pending', 'firing')
          and (timer_id, scheduled_version) in (
            select r ->> 'id', (r ->> 'version')::bigint from jsonb_array_elements($3::jsonb) as r)`,
      [
        durable.streamType,
        entityId,
        JSON.stringify(rows.map((r) => ({ id: r.timer_id, version: r.scheduled_version }))),
      ],
    );
    if (open!.n === '0') return rows.length;
    if (Date.now() > deadline) throw new Error('timers made due were not settled within 10 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Where a replayed path ended, beside where pure XState ends it. */
export interface ReplayResult {
  readonly entityId: string;
  readonly path: MachinePath;
  readonly durable: {
    readonly value: StateValue;
    readonly context: unknown;
    readonly status: string;
  };
  readonly matches: boolean;
  /** Why it does not match: a thrown error's message, or the first difference. */
  readonly problem?: string;
}

/** Options of {@link replayPath} and {@link checkPaths}. */
export interface ReplayOptions {
  readonly actor: Actor;
  /** Machine input for creating the entity. @defaultValue undefined */
  readonly input?: unknown;
}

/**
 * Send a path's events to a fresh entity of the durable machine (firing delayed events through
 * its timers) and compare where it ends with pure XState.
 */
export async function replayPath(
  durable: DurableMachine<AnyStateMachine>,
  entityId: string,
  path: MachinePath,
  options: ReplayOptions,
): Promise<ReplayResult> {
  const send = {
    actor: options.actor,
    ...(options.input === undefined ? {} : { input: options.input }),
  };
  let problem: string | undefined;
  try {
    await durable.create(entityId, send);
    for (const event of path.events) {
      if (event.type.startsWith('xstate.after.')) {
        const fired = await fireTimersNow(durable, entityId, event.type);
        if (fired === 0) throw new Error(`no pending timer ${event.type}`);
      } else {
        await durable.send(entityId, event as never, send);
      }
    }
  } catch (error) {
    problem = error instanceof Error ? error.message : String(error);
  }
  const state = await durable.load(entityId);
  const got = {
    value: plain(state?.value) as StateValue,
    context: plain(state?.context),
    status: state?.status ?? 'missing',
  };
  if (problem === undefined) {
    const expected = JSON.stringify([path.value, path.context, path.status]);
    const actual = JSON.stringify([got.value, got.context, got.status]);
    if (expected !== actual) problem = `expected ${expected}, got ${actual}`;
  }
  return {
    entityId,
    path,
    durable: got,
    matches: problem === undefined,
    ...(problem === undefined ? {} : { problem }),
  };
}

/**
 * Replay every path through the durable machine, each on its own entity (`<prefix>-<n>`), a few
 * at a time; returns the paths whose durable end differs from XState's.
 *
 * @example
 * ```ts
 * const { mismatches } = await checkPaths(durableOrders, machinePaths(orderMachine, { events }), {
 *   actor: { id: 'model-test', role: 'system' },
 * });
 * expect(mismatches).toEqual([]);
 * ```
 */
export async function checkPaths(
  durable: DurableMachine<AnyStateMachine>,
  paths: readonly MachinePath[],
  options: ReplayOptions & {
    /** Entity id prefix. @defaultValue 'path' plus a random suffix */
    readonly entityIdPrefix?: string;
    /** Paths replayed at once. @defaultValue 4 */
    readonly concurrency?: number;
  },
): Promise<{ readonly checked: number; readonly mismatches: readonly ReplayResult[] }> {
  const prefix = options.entityIdPrefix ?? `path-${Math.random().toString(36).slice(2, 8)}`;
  const mismatches: ReplayResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency ?? 4 }, async () => {
      for (let i = next++; i < paths.length; i = next++) {
        const result = await replayPath(durable, `${prefix}-${i}`, paths[i]!, options);
        if (!result.matches) mismatches.push(result);
      }
    }),
  );
  return { checked: paths.length, mismatches };
}

/** What one step decides, exactly as the durable runtime would decide and record it. */
export interface DecidedStep {
  readonly accepted: boolean;
  /** The state after the step (unchanged when rejected). */
  readonly value: StateValue;
  readonly context: unknown;
  readonly guards: readonly GuardEvaluation[];
  /** Named actions the step schedules as jobs. */
  readonly actions: readonly string[];
  /** Delayed events the step schedules, by XState send id. */
  readonly timers: readonly string[];
  readonly reason?: RejectionReason;
}

/**
 * Given/When for a machine's rules, without a database: the entity after `events`, then what
 * `event` does to it, with the guards and actions the durable runtime would record. Pure and fast,
 * for unit tests of a machine; assert on the result with any test framework.
 *
 * @example
 * ```ts
 * const step = given(claimMachine, [{ type: 'ClaimSubmitted', lines: 2 }])
 *   .when({ type: 'ClaimAdjudicated', approved: true });
 * expect(step).toMatchObject({ accepted: true, value: 'approved' });
 * ```
 * @throws Error when one of the given events is rejected: the history it describes cannot happen.
 */
export function given<TMachine extends AnyStateMachine>(
  machine: TMachine,
  events: readonly EventFromLogic<TMachine>[] = [],
  options: { readonly input?: unknown } = {},
): { when(event: EventFromLogic<TMachine>): DecidedStep } {
  const deciding = withRecordedGuards(machine);
  let snapshot = decideInitial(deciding, options.input).next;
  for (const [i, event] of events.entries()) {
    const step = decide(deciding, snapshot, event);
    if (step.kind === 'rejected') {
      throw new Error(
        `given event ${i} (${event.type}) is rejected in state ${describeStateValue(snapshot.value)} (${step.reason})`,
      );
    }
    snapshot = step.next;
  }
  return {
    when(event) {
      const step = decide(deciding, snapshot, event);
      if (step.kind === 'rejected') {
        return {
          accepted: false,
          value: snapshot.value,
          context: snapshot.context,
          guards: step.guards,
          actions: [],
          timers: [],
          reason: step.reason,
        };
      }
      const outcome = applyActions(step.executable, [], 1, null);
      return {
        accepted: true,
        value: step.next.value,
        context: step.next.context,
        guards: step.guards,
        actions: outcome.actions.map((a) => a.type),
        timers: outcome.effects.schedule.map((t) => t.id),
      };
    },
  };
}
