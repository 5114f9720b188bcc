import type { AnySagaDefinition, SagaMigration, SagaNode } from './defineSaga.js';
import type { SagaEventData } from './events.js';

/** Why a stored history cannot run on a definition. */
export interface HistoryProblem {
  /**
   * `unknown-node`: the history names a step, wait, timer or branch the code no longer has.
   * `kind-changed`: the name now belongs to something else (a step became a wait…).
   * `order-changed`: the history entered a node before the one that now precedes it finished
   * (a step inserted before, or steps reordered). `compensation-removed` / `compensation-changed`:
   * a completed step recorded a compensation the code no longer has, or a different one.
   * `version-unregistered`: no registered definition runs the instance's version.
   */
  readonly kind:
    | 'unknown-node'
    | 'kind-changed'
    | 'order-changed'
    | 'compensation-removed'
    | 'compensation-changed'
    | 'version-unregistered';
  readonly node: string;
  /** Position (1-based) of the event that shows it, in the instance's stream. */
  readonly streamVersion: number;
  readonly message: string;
}

/** An event of a stored history, as the check reads it. */
export interface HistoryEvent {
  readonly type: string;
  readonly data: unknown;
}

interface Place {
  readonly node: SagaNode;
  /** The list the node sits in, and its index there. */
  readonly siblings: readonly SagaNode[];
  readonly index: number;
  /** The `when` or `parallel` whose branch holds the list. */
  readonly container: SagaNode | null;
}

function places(nodes: readonly SagaNode[], container: SagaNode | null, out: Map<string, Place>) {
  nodes.forEach((node, index) => {
    out.set(node.id, { node, siblings: nodes, index, container });
    if (node.kind === 'when') places(node.branch, node, out);
    if (node.kind === 'parallel') for (const b of node.branches) places(b.nodes, node, out);
  });
  return out;
}

const entryKinds: Record<string, { field: string; kind: SagaNode['kind'] }> = {
  StepStarted: { field: 'step', kind: 'step' },
  ConditionEvaluated: { field: 'node', kind: 'when' },
  TimerScheduled: { field: 'timer', kind: 'sleep' },
  WaitStarted: { field: 'wait', kind: 'wait' },
};

/**
 * Check that a stored history could have been produced by `definition`, the way Temporal's replay
 * tests catch non-determinism: every node the history entered still exists with the same kind, was
 * entered only after what now precedes it finished, and every compensation a completed step
 * recorded is still defined the same way. Steps added after an instance's position, changed
 * retries, timeouts or step bodies are compatible.
 *
 * @example
 * ```ts
 * const problems = checkHistory(onboardingV1, storedEvents);
 * // [{ kind: 'order-changed', node: 'assignCareCoordinator', ... }]
 * ```
 */
export function checkHistory(
  definition: AnySagaDefinition,
  events: readonly HistoryEvent[],
): HistoryProblem[] {
  const where = places(definition.nodes, null, new Map());
  const problems: HistoryProblem[] = [];
  const reported = new Set<string>();
  const report = (p: HistoryProblem) => {
    const key = `${p.kind}:${p.node}`;
    if (reported.has(key)) return;
    reported.add(key);
    problems.push(p);
  };
  const entry = new Map<string, number>();
  const completion = new Map<string, number>();
  const conditions = new Map<string, boolean>();
  const intents = new Map<string, { transition: string; at: number }>();
  const compensated = new Set<string>();
  /** Steps started by an event that carries their starts (`next`), as if StepStarted each. */
  const startsCarried = (
    data: { readonly next?: readonly SagaEventData['StepStarted'][] },
    version: number,
  ) => {
    for (const next of data.next ?? []) {
      const place = where.get(next.step);
      if (!place) {
        report({
          kind: 'unknown-node',
          node: next.step,
          streamVersion: version,
          message: `the history started ${next.step}, which ${definition.name} v${definition.version} does not define`,
        });
      } else if (place.node.kind !== 'step') {
        report({
          kind: 'kind-changed',
          node: next.step,
          streamVersion: version,
          message: `${next.step} was a step when the history was recorded and is now a ${place.node.kind}`,
        });
      }
      if (!entry.has(next.step)) entry.set(next.step, version);
      if (next.compensation) {
        intents.set(next.step, { transition: next.compensation.transition, at: version });
      }
    }
  };

  events.forEach((event, i) => {
    const version = i + 1;
    const data = (event.data ?? {}) as Record<string, unknown>;
    const entryKind = entryKinds[event.type];
    if (entryKind) {
      const id = String(data[entryKind.field]);
      const place = where.get(id);
      if (!place) {
        report({
          kind: 'unknown-node',
          node: id,
          streamVersion: version,
          message: `the history has ${event.type} for ${id}, which ${definition.name} v${definition.version} does not define`,
        });
      } else if (place.node.kind !== entryKind.kind) {
        report({
          kind: 'kind-changed',
          node: id,
          streamVersion: version,
          message: `${id} was a ${entryKind.kind} when the history was recorded and is now a ${place.node.kind}`,
        });
      }
      if (!entry.has(id)) entry.set(id, version);
    }
    switch (event.type) {
      case 'StepStarted': {
        const d = data as unknown as SagaEventData['StepStarted'];
        if (d.compensation)
          intents.set(d.step, { transition: d.compensation.transition, at: version });
        break;
      }
      case 'SagaStarted':
        // Starts carried by the saga's start count as StepStarted events at this position.
        startsCarried(data as unknown as SagaEventData['SagaStarted'], version);
        break;
      case 'StepSucceeded': {
        completion.set(String(data.step), version);
        // Starts carried by the success count as StepStarted events at this position.
        startsCarried(data as unknown as SagaEventData['StepSucceeded'], version);
        break;
      }
      case 'ConditionEvaluated':
        conditions.set(String(data.node), data.value === true);
        if (data.value !== true) completion.set(String(data.node), version);
        break;
      case 'TimerFired':
        completion.set(String(data.timer), version);
        break;
      case 'WaitCompleted':
        completion.set(String(data.wait), version);
        break;
      case 'WaitTimedOut':
        if (data.continued === true) completion.set(String(data.wait), version);
        break;
      case 'CompensationSucceeded':
        compensated.add(String(data.step));
        break;
    }
  });

  // Containers: a taken branch completes with its last node; a parallel with all its branches.
  const completionOf = (node: SagaNode): number | undefined => {
    if (node.kind === 'when') {
      if (conditions.get(node.id) === false) return completion.get(node.id);
      if (conditions.get(node.id) !== true) return undefined;
      if (node.branch.length === 0) return entry.get(node.id);
      return completionOf(node.branch[node.branch.length - 1]!);
    }
    if (node.kind === 'parallel') {
      let last = 0;
      for (const b of node.branches) {
        const c = completionOf(b.nodes[b.nodes.length - 1]!);
        if (c === undefined) return undefined;
        last = Math.max(last, c);
      }
      return last;
    }
    return completion.get(node.id);
  };
  const entryOf = (node: SagaNode): number | undefined => {
    if (node.kind !== 'parallel') return entry.get(node.id);
    const starts = node.branches
      .map((b) => entryOf(b.nodes[0]!))
      .filter((v): v is number => v !== undefined);
    return starts.length > 0 ? Math.min(...starts) : undefined;
  };

  for (const place of where.values()) {
    const entered = entryOf(place.node);
    if (entered === undefined) continue;
    const before = place.index > 0 ? place.siblings[place.index - 1]! : null;
    if (before) {
      const done = completionOf(before);
      if (done === undefined || done > entered) {
        report({
          kind: 'order-changed',
          node: place.node.id,
          streamVersion: entered,
          message: `the history entered ${place.node.id} before ${before.id} (which now precedes it) finished`,
        });
      }
    } else if (place.container?.kind === 'when') {
      const evaluated = entry.get(place.container.id);
      if (
        conditions.get(place.container.id) !== true ||
        evaluated === undefined ||
        evaluated > entered
      ) {
        report({
          kind: 'order-changed',
          node: place.node.id,
          streamVersion: entered,
          message: `the history entered ${place.node.id} outside the branch of ${place.container.id} that now holds it`,
        });
      }
    }
  }

  for (const [step, intent] of intents) {
    if (compensated.has(step) || !completion.has(step)) continue;
    const place = where.get(step);
    if (place?.node.kind !== 'step') continue;
    if (!place.node.compensate) {
      report({
        kind: 'compensation-removed',
        node: step,
        streamVersion: intent.at,
        message: `${step} completed promising compensation ${intent.transition}, which the code no longer defines`,
      });
    } else if (place.node.compensate.transition !== intent.transition) {
      report({
        kind: 'compensation-changed',
        node: step,
        streamVersion: intent.at,
        message: `${step} completed promising compensation ${intent.transition}; the code now compensates with ${place.node.compensate.transition}`,
      });
    }
  }
  return problems.sort((a, b) => a.streamVersion - b.streamVersion);
}

/**
 * The history of an instance started by version `from`, mapped through `definition.migrations`
 * up to the definition's version; null when a migration in the chain is missing.
 */
export function migrateHistory<E extends HistoryEvent>(
  definition: {
    readonly version: number;
    readonly migrations: Readonly<Record<number, SagaMigration>>;
  },
  from: number,
  events: readonly E[],
): E[] | null {
  if (from === definition.version) return [...events];
  for (let v = from; v < definition.version; v++) {
    if (!definition.migrations[v]) return null;
  }
  const out: E[] = [];
  // Events after a SagaMigrated were recorded by the newer version already.
  let version = from;
  for (const event of events) {
    if (event.type === 'SagaMigrated') {
      version = (event.data as SagaEventData['SagaMigrated']).to;
      out.push(event);
      continue;
    }
    let mapped: HistoryEvent | null = event;
    for (let v = version; v < definition.version && mapped; v++) {
      const migrate = definition.migrations[v]!;
      mapped = migrate({ type: mapped.type, data: mapped.data as Record<string, unknown> });
    }
    if (mapped) out.push({ ...event, type: mapped.type, data: mapped.data });
  }
  return out;
}
