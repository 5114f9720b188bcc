import type { Actor } from '@evident/envelope';
import type { AnyStateMachine, EventObject, StateValue } from 'xstate';
import { StateMachineError, UnknownStateError } from './errors.js';

/** Type of the event appended for every accepted transition (and for an entity's creation). */
export const stateTransitionedType = 'StateTransitioned';
/** Type of the event appended when the current state does not accept an event. */
export const transitionRejectedType = 'TransitionRejected';
/** Schema version of both events' `data`. */
export const persistedSchemaVersion = 1;

/** One guard evaluated while deciding a step: its name, its params and what it returned. */
export interface GuardEvaluation {
  /** The guard's name as declared in `setup({ guards })`. */
  readonly guard: string;
  readonly params?: unknown;
  readonly result: boolean;
}

/** A custom action of a step, run after commit as a durable job. */
export interface ScheduledAction {
  /** Position among the step's actions: with the stream version, the job's identity. */
  readonly index: number;
  readonly type: string;
  readonly params?: unknown;
}

/** A delayed event waiting in the database (XState `after`, or `raise(..., { delay })`). */
export interface PendingTimer {
  /** XState's send id, e.g. `xstate.after.2000.review.inReview`. */
  readonly id: string;
  /** Stream version of the step that scheduled it. */
  readonly version: number;
  readonly event: EventObject;
  /** Milliseconds after the scheduling step's `recordedAt` (database time). */
  readonly delay: number;
}

/** What a step asks the database to do besides recording it; read by the `machine_effects` trigger. */
export interface StepEffects {
  readonly actions: readonly ScheduledAction[];
  /** Timers this step scheduled (their `version` is this step's). */
  readonly schedule: readonly PendingTimer[];
  /** Earlier timers this step cancelled (XState `cancel`, or leaving the state of an `after`). */
  readonly cancel: readonly { readonly id: string; readonly version: number }[];
  /** The timer whose firing caused this step. */
  readonly fired: { readonly id: string; readonly version: number } | null;
}

/** XState's persisted snapshot (`machine.getPersistedSnapshot`), as stored. */
export interface PersistedMachineSnapshot {
  readonly status: 'active' | 'done' | 'error' | 'stopped';
  readonly value: StateValue;
  readonly context: unknown;
  readonly historyValue?: unknown;
  readonly children?: Record<string, unknown>;
  readonly output?: unknown;
  readonly [key: string]: unknown;
}

/** Which machine wrote a record: its id and the version the durable machine was created with. */
export interface MachineVersion {
  readonly id: string;
  readonly version: number;
}

/** The data of a `StateTransitioned` event. */
export interface StateTransitionedData {
  readonly machine: MachineVersion;
  /** State before the step; `null` for the creation step (event `xstate.init`). */
  readonly from: StateValue | null;
  readonly to: StateValue;
  readonly event: EventObject;
  readonly guards: readonly GuardEvaluation[];
  readonly actions: readonly ScheduledAction[];
  /** The machine after the step. Stored with the event, so the two can never disagree. */
  readonly snapshot: PersistedMachineSnapshot;
  /** Every timer pending after the step. */
  readonly timers: readonly PendingTimer[];
  /** Present only when the step has effects, so the trigger runs only then. */
  readonly effects?: StepEffects;
}

/** Why an event was rejected. */
export type RejectionReason = 'no-transition' | 'guards-refused' | 'machine-done';

/** The data of a `TransitionRejected` event: the state is unchanged and repeated here. */
export interface TransitionRejectedData {
  readonly machine: MachineVersion;
  readonly state: StateValue;
  readonly event: EventObject;
  readonly reason: RejectionReason;
  readonly guards: readonly GuardEvaluation[];
  readonly snapshot: PersistedMachineSnapshot;
  readonly timers: readonly PendingTimer[];
  readonly effects?: StepEffects;
}

/** Either record; both carry the full state after them. */
export type MachineRecordData = StateTransitionedData | TransitionRejectedData;

/**
 * An entity's machine state as of one stream version: what `load`, `stateAt` and `history`
 * return. `value`, `context` and `status` are exactly what was stored at that version (for past
 * versions, in that version's machine shape: see `machine`).
 */
export interface DurableState<Context = unknown> {
  readonly entityId: string;
  /** Stream version of the record this state comes from. */
  readonly version: number;
  /** Database time of that record (ISO 8601, UTC, milliseconds). */
  readonly recordedAt: string;
  readonly value: StateValue;
  readonly context: Context;
  readonly status: PersistedMachineSnapshot['status'];
  readonly machine: MachineVersion;
  readonly timers: readonly PendingTimer[];
  readonly snapshot: PersistedMachineSnapshot;
}

/** One recorded step of an entity: the audit view of its stream. */
export interface HistoryEntry<Context = unknown> {
  readonly kind: 'transitioned' | 'rejected';
  readonly version: number;
  readonly recordedAt: string;
  readonly eventId: string;
  /** State before the step (`null` for creation); equal to `to` for a rejection. */
  readonly from: StateValue | null;
  readonly to: StateValue;
  /** The machine event that was sent (payload included). */
  readonly event: EventObject;
  /** The guards evaluated for the step, with their results: what allowed or refused it. */
  readonly guards: readonly GuardEvaluation[];
  readonly actions: readonly ScheduledAction[];
  readonly reason?: RejectionReason;
  readonly actor: Actor;
  readonly correlationId: string;
  readonly causationId: string;
  /** The state after the step. */
  readonly state: DurableState<Context>;
}

/**
 * Map a persisted snapshot of machine version `from` to the shape of version `from + 1`. Pure and
 * synchronous: it runs on every load of an old instance until the instance's next step is stored
 * in the new shape.
 */
export type SnapshotMigration = (snapshot: PersistedMachineSnapshot) => PersistedMachineSnapshot;

function isStateNodeChild(node: AnyStateMachine['root'], key: string) {
  return Object.hasOwn(node.states, key);
}

/** The first state path of `value` the machine does not have, or `null` when all exist. */
export function missingStatePath(machine: AnyStateMachine, value: unknown): string | null {
  const walk = (node: AnyStateMachine['root'], v: unknown, path: string): string | null => {
    if (typeof v === 'string') {
      return isStateNodeChild(node, v) ? null : path + v;
    }
    if (v === null || typeof v !== 'object') return path || '(empty)';
    for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
      if (!isStateNodeChild(node, key)) return path + key;
      const found = walk(node.states[key]!, child, `${path}${key}.`);
      if (found) return found;
    }
    return null;
  };
  return walk(machine.root, value, '');
}

/**
 * Bring a stored snapshot to the current machine version with the registered migrations, then
 * check that every state it names exists. A version without a migration is taken as compatible;
 * the state check is what catches a missing one.
 *
 * @throws UnknownStateError naming the state that no longer exists.
 * @throws StateMachineError `MACHINE_VERSION_MISMATCH` for another machine id or a newer version.
 */
export function upgradeSnapshot(
  machine: AnyStateMachine,
  current: MachineVersion,
  stored: MachineVersion,
  snapshot: PersistedMachineSnapshot,
  migrations: Readonly<Record<number, SnapshotMigration>>,
): PersistedMachineSnapshot {
  if (stored.id !== current.id) {
    throw new StateMachineError(
      'MACHINE_VERSION_MISMATCH',
      `the stream holds instances of machine ${stored.id}, not ${current.id}`,
    );
  }
  if (stored.version > current.version) {
    throw new StateMachineError(
      'MACHINE_VERSION_MISMATCH',
      `the instance was stored by ${stored.id} v${stored.version}, newer than this v${current.version}: deploy the newer machine`,
    );
  }
  let upgraded = snapshot;
  for (let v = stored.version; v < current.version; v++) {
    const migrate = migrations[v];
    if (migrate) upgraded = migrate(upgraded);
  }
  const missing = missingStatePath(machine, upgraded.value);
  if (missing !== null) {
    throw new UnknownStateError(missing, current.id, stored.version, current.version);
  }
  return upgraded;
}
