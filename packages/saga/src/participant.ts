import { SagaError } from './errors.js';

/**
 * A participant whose states are an Evident state machine: the shape of `DurableMachine` from
 * `@evident/statemachines`, named structurally so this package needs no dependency on it.
 * A compensation that names one is checked against the machine twice: when the saga is defined
 * (the target state must exist and some transition must lead into it) and before it runs (the
 * entity's current state must allow the step).
 */
export interface TransitionParticipant {
  /** The XState machine (read, never run, by the definition-time check). */
  readonly machine: unknown;
  /** Stream type of the machine's entities, e.g. `care-coordination`. */
  readonly streamType: string;
  /** The entity's current state, or undefined when it does not exist. */
  load(entityId: string): Promise<{ readonly value: unknown } | undefined>;
  /** Which event, if any, takes the entity to `target` in one legal step; writes nothing. */
  planTransitionTo(
    entityId: string,
    target: never,
    options?: { readonly events?: readonly never[] },
  ): Promise<{ readonly legal: boolean; readonly from: unknown }>;
  /** Take that step (idempotent with `id`). */
  transitionTo(
    entityId: string,
    target: never,
    options: {
      readonly actor: { readonly id: string; readonly role: string };
      readonly correlationId?: string;
      readonly causationId?: string;
      readonly id?: string;
      readonly events?: readonly never[];
    },
  ): Promise<{ readonly to: unknown; readonly version: number }>;
}

interface StateNodeLike {
  readonly path: readonly string[];
  readonly states: Readonly<Record<string, StateNodeLike>>;
  readonly transitions: ReadonlyMap<string, readonly TransitionLike[]>;
  readonly always?: readonly TransitionLike[];
}

interface TransitionLike {
  readonly target?: readonly StateNodeLike[];
  readonly eventType?: string;
}

/** The path segments of a state value: `'review.pending'` or `{ review: 'pending' }`. */
export function statePaths(value: unknown, prefix: readonly string[] = []): string[][] {
  if (typeof value === 'string') return [[...prefix, ...value.split('.')]];
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return [[...prefix]];
    return entries.flatMap(([key, child]) => statePaths(child, [...prefix, key]));
  }
  return [[...prefix, String(value)]];
}

/** Whether the state value `current` is in (or inside) `target`. */
export function stateMatches(current: unknown, target: unknown): boolean {
  const have = statePaths(current).map((p) => p.join('.'));
  return statePaths(target).every((want) => {
    const w = want.join('.');
    return have.some((h) => h === w || h.startsWith(`${w}.`));
  });
}

/**
 * Refuse, when the saga is defined, a compensation that no entity could ever take: its target
 * state does not exist in the machine, or no transition (on the candidate events, if given) leads
 * into it. Legality in the entity's current state is checked again before the compensation runs.
 */
export function assertCompensationPossible(
  step: string,
  participant: TransitionParticipant,
  target: unknown,
  events: readonly string[] | undefined,
): void {
  const root = (participant.machine as { root?: StateNodeLike } | undefined)?.root;
  if (!root || typeof root !== 'object' || !('states' in root)) {
    throw new SagaError(
      'SAGA_DEFINITION_INVALID',
      `the compensation of step ${step} names a participant without an XState machine`,
    );
  }
  const wanted = statePaths(target);
  const nodes: StateNodeLike[] = [];
  const collect = (node: StateNodeLike) => {
    nodes.push(node);
    for (const child of Object.values(node.states ?? {})) collect(child);
  };
  collect(root);
  const names = new Set(nodes.map((n) => n.path.join('.')));
  for (const path of wanted) {
    if (!names.has(path.join('.'))) {
      throw new SagaError(
        'COMPENSATION_NEVER_LEGAL',
        `the compensation of step ${step} targets state ${path.join('.')}, which ${participant.streamType} machines do not have`,
      );
    }
  }
  const into = (t: TransitionLike) =>
    (t.target ?? []).some((s) =>
      wanted.some((w) => {
        const reached = s.path.join('.');
        const want = w.join('.');
        return reached === want || reached.startsWith(`${want}.`);
      }),
    );
  const reachable = nodes.some((node) => {
    for (const [eventType, transitions] of node.transitions ?? new Map()) {
      if (events && !events.includes(eventType)) continue;
      if (transitions.some(into)) return true;
    }
    return !events && (node.always ?? []).some(into);
  });
  if (!reachable) {
    throw new SagaError(
      'COMPENSATION_NEVER_LEGAL',
      `the compensation of step ${step} targets state ${wanted.map((w) => w.join('.')).join(', ')}, which no transition of ${participant.streamType} machines leads into${events ? ` on ${events.join(', ')}` : ''}`,
    );
  }
}
