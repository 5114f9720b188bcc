import {
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type EventObject,
  getNextTransitions,
  type StateValue,
} from 'xstate';
import { applyActions, decide, restore, withRecordedGuards } from './decide.js';
import type { GuardEvaluation, PersistedMachineSnapshot } from './persistedState.js';

/**
 * The legality check a saga runs before a compensation: which event, if any, takes an entity from
 * where it is to where the compensation wants it, in one step the machine allows (its guards
 * evaluated on the entity's context).
 */
export type TransitionPlan =
  | {
      readonly legal: true;
      /** The event to send. */
      readonly event: EventObject;
      readonly from: StateValue;
      readonly to: StateValue;
      readonly guards: readonly GuardEvaluation[];
      /** Named actions the step would schedule. */
      readonly actions: readonly string[];
      /** The entity's version the plan was made on (0 when it does not exist yet). */
      readonly version: number;
      /** Every event type tried, in order. */
      readonly tried: readonly string[];
    }
  | {
      readonly legal: false;
      readonly from: StateValue;
      readonly target: StateValue;
      readonly version: number;
      readonly tried: readonly string[];
    };

/** Options of {@link planTransition}. */
export interface PlanTransitionOptions {
  /**
   * Candidate events, with payloads (guards may read them). @defaultValue one `{ type }` per event
   * type the current state has a transition for
   */
  readonly events?: readonly EventObject[];
  /** Version to report in the plan. @defaultValue 0 */
  readonly version?: number;
}

function isSnapshot(value: unknown): value is AnyMachineSnapshot {
  return typeof (value as { matches?: unknown }).matches === 'function';
}

/** Domain event types the state has transitions for, in XState's deterministic order. */
export function acceptedEventTypes(snapshot: AnyMachineSnapshot): string[] {
  const types = new Set<string>();
  for (const t of getNextTransitions(snapshot)) {
    const type = t.eventType;
    if (type && !type.startsWith('xstate.') && !type.includes('*')) types.add(type);
  }
  return [...types];
}

/**
 * Find the event that takes `snapshot` to `target` in one legal step. Pure: nothing is written
 * and no action runs. Used by `durable.planTransitionTo` and `durable.transitionTo`; a saga can
 * also call it on a persisted snapshot it holds.
 *
 * @example
 * ```ts
 * const plan = planTransition(claimMachine, persistedSnapshot, 'draft');
 * if (!plan.legal) deadLetter(`cannot compensate: ${plan.tried.join(', ')} lead elsewhere`);
 * ```
 */
export function planTransition(
  machine: AnyStateMachine,
  snapshot: AnyMachineSnapshot | PersistedMachineSnapshot,
  target: StateValue,
  options: PlanTransitionOptions = {},
): TransitionPlan {
  const deciding = withRecordedGuards(machine);
  const live = isSnapshot(snapshot) ? snapshot : restore(deciding, snapshot);
  const candidates = options.events ?? acceptedEventTypes(live).map((type) => ({ type }));
  const version = options.version ?? 0;
  const tried: string[] = [];
  for (const event of candidates) {
    tried.push(event.type);
    const decision = decide(deciding, live, event);
    if (decision.kind === 'transitioned' && decision.next.matches(target as never)) {
      return {
        legal: true,
        event,
        from: live.value,
        to: decision.next.value,
        guards: decision.guards,
        actions: applyActions(decision.executable, [], 0, null).actions.map((a) => a.type),
        version,
        tried,
      };
    }
  }
  return { legal: false, from: live.value, target, version, tried };
}
