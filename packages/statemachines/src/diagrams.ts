import type { AnyStateMachine, AnyStateNode } from 'xstate';

/**
 * Diagrams of a machine for review by the people who know the domain: states (nested, parallel
 * regions shown as such), initial and final states, and every transition labelled with its event,
 * its guard and its actions, entry and exit actions on the states. Mermaid for Markdown pages and
 * pull requests; Graphviz DOT for an SVG (see `@evident/statemachines/svg`).
 */

interface DiagramTransition {
  readonly source: AnyStateNode;
  /** Empty for a targetless transition (drawn as a loop). */
  readonly targets: readonly AnyStateNode[];
  readonly label: string;
}

function formatDelay(delay: unknown): string {
  if (typeof delay !== 'number') return String(delay);
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) {
    if (delay >= size && delay % size === 0) return `${delay / size}${unit}`;
  }
  return `${delay}ms`;
}

/** The event of a transition as a reviewer reads it. */
function eventLabel(t: { eventType: string; delay?: unknown }): string {
  const type = t.eventType;
  if (type === '') return 'always';
  if (type.startsWith('xstate.after.')) return `after ${formatDelay(t.delay)}`;
  if (type.startsWith('xstate.done.state.')) return 'done';
  if (type === '*') return 'any event';
  return type;
}

/** `name(key=value, …)` for an action or guard with static params; just the name otherwise. */
function withParams(name: string, params: unknown): string {
  if (params === undefined || params === null || typeof params === 'function') return name;
  if (typeof params !== 'object') return `${name}(${String(params)})`;
  const parts = Object.entries(params as Record<string, unknown>).map(
    ([k, v]) => `${k}=${v !== null && typeof v === 'object' ? '…' : String(v)}`,
  );
  return parts.length > 0 ? `${name}(${parts.join(', ')})` : name;
}

/** A guard as a reviewer reads it: its name, or the combinators around named guards. */
export function guardLabel(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const g = guard as { check?: unknown; guards?: unknown[]; stateValue?: unknown; name?: string };
    if (typeof g.check === 'function') {
      const inner = (g.guards ?? []).map(guardLabel);
      if (g.name === 'not') return `!${inner[0] ?? ''}`;
      if (g.name === 'and') return inner.join(' && ');
      if (g.name === 'or') return inner.join(' || ');
      if (g.name === 'stateIn') return `in ${JSON.stringify(g.stateValue)}`;
    }
    return g.name || 'inline guard';
  }
  if (guard && typeof guard === 'object' && 'type' in guard) {
    const g = guard as { type: unknown; params?: unknown };
    return withParams(String(g.type), g.params);
  }
  return 'guard';
}

/** Action names worth showing: named actions and the built-ins a reviewer cares about. */
function actionLabels(actions: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const a of actions) {
    if (typeof a === 'string') out.push(a);
    else if (typeof a === 'function') {
      const type = (a as { type?: unknown }).type;
      // Delayed transitions are drawn as edges; their raise/cancel bookkeeping is not shown.
      if (type === 'xstate.raise' || type === 'xstate.cancel') continue;
      if (type === 'xstate.assign') out.push('assign');
      else if (typeof type === 'string') out.push(type.replace(/^xstate\./, ''));
      else out.push((a as { name?: string }).name || 'inline action');
    } else if (a && typeof a === 'object' && 'type' in a) {
      const action = a as { type: unknown; params?: unknown };
      out.push(withParams(String(action.type), action.params));
    }
  }
  return out;
}

function transitionLabel(t: {
  eventType: string;
  delay?: unknown;
  guard?: unknown;
  actions: readonly unknown[];
}): string {
  const guard = t.guard === undefined ? '' : ` [${guardLabel(t.guard)}]`;
  const actions = actionLabels(t.actions);
  return `${eventLabel(t)}${guard}${actions.length > 0 ? ` / ${actions.join(', ')}` : ''}`;
}

function transitionsOf(node: AnyStateNode): DiagramTransition[] {
  const out: DiagramTransition[] = [];
  for (const transitions of node.transitions.values()) {
    for (const t of transitions) {
      out.push({ source: node, targets: t.target ?? [], label: transitionLabel(t) });
    }
  }
  for (const t of node.always ?? []) {
    out.push({ source: node, targets: t.target ?? [], label: transitionLabel(t) });
  }
  return out;
}

function children(node: AnyStateNode): AnyStateNode[] {
  return (Object.values(node.states) as AnyStateNode[]).filter((c) => c.type !== 'history');
}

function initialChild(node: AnyStateNode): AnyStateNode | undefined {
  if (node.type !== 'compound') return undefined;
  const target = node.initial?.target?.[0];
  return target && target.parent === node ? target : children(node)[0];
}

/** Unique, diagram-safe ids for every state node. */
function idsFor(machine: AnyStateMachine): Map<AnyStateNode, string> {
  const ids = new Map<AnyStateNode, string>();
  const used = new Set<string>();
  const walk = (node: AnyStateNode) => {
    for (const child of children(node)) {
      const base = child.path.join('_').replace(/[^A-Za-z0-9_]/g, '_') || 'state';
      let id = /^[A-Za-z]/.test(base) ? base : `s_${base}`;
      for (let n = 2; used.has(id); n++) id = `${base}_${n}`;
      used.add(id);
      ids.set(child, id);
      walk(child);
    }
  };
  walk(machine.root);
  return ids;
}

// Characters that end or confuse a Mermaid label (';' separates statements, '#' starts an
// entity, ':' a description, braces and quotes blocks and names) become look-alike-free text.
const mermaidText = (text: string) =>
  text
    .replace(/[;#:{}"]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/**
 * A Mermaid `stateDiagram-v2` of the machine: nested states as composites, parallel regions
 * separated by `--`, `[*]` for initial and final states, transitions labelled
 * `EVENT [guard] / action, action`, entry and exit actions as state descriptions.
 *
 * @example
 * ```ts
 * await writeFile('docs/claim.md', '```mermaid\n' + toMermaid(claimMachine) + '\n```\n');
 * ```
 */
export function toMermaid(machine: AnyStateMachine): string {
  const ids = idsFor(machine);
  const lines: string[] = ['stateDiagram-v2'];
  const edges: string[] = [];
  const idOf = (node: AnyStateNode) => (node === machine.root ? '[*]' : ids.get(node)!);

  const describe = (node: AnyStateNode, indent: string) => {
    const id = ids.get(node)!;
    const texts = [
      ...(actionLabels(node.entry).length > 0
        ? [`entry / ${actionLabels(node.entry).join(', ')}`]
        : []),
      ...(actionLabels(node.exit).length > 0
        ? [`exit / ${actionLabels(node.exit).join(', ')}`]
        : []),
    ].map(mermaidText);
    if (texts.length === 0) return;
    // Mermaid gives composite states a label only: their entry and exit actions go in a note.
    if (children(node).length > 0) {
      lines.push(`${indent}note right of ${id} : ${texts.join(' · ')}`);
    } else {
      for (const text of texts) lines.push(`${indent}${id} : ${text}`);
    }
  };

  const block = (node: AnyStateNode, indent: string) => {
    const kids = children(node);
    const initial = initialChild(node);
    if (initial) lines.push(`${indent}[*] --> ${ids.get(initial)}`);
    kids.forEach((child, i) => {
      if (node.type === 'parallel' && i > 0) lines.push(`${indent}--`);
      const id = ids.get(child)!;
      lines.push(`${indent}state "${mermaidText(child.key)}" as ${id}`);
      if (children(child).length > 0) {
        lines.push(`${indent}state ${id} {`);
        block(child, `${indent}  `);
        lines.push(`${indent}}`);
      }
      describe(child, indent);
      if (child.type === 'final') lines.push(`${indent}${id} --> [*]`);
    });
  };

  const root = machine.root;
  block(root, '  ');
  for (const node of [root, ...ids.keys()]) {
    for (const t of transitionsOf(node)) {
      const targets = t.targets.length > 0 ? t.targets : [t.source];
      for (const target of targets) {
        if (t.source === root && target === root) continue;
        edges.push(`  ${idOf(t.source)} --> ${idOf(target)} : ${mermaidText(t.label)}`);
      }
    }
  }
  return `${[...lines, ...edges].join('\n')}\n`;
}

const dotString = (text: string) =>
  `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/**
 * A Graphviz DOT digraph of the machine: compound states and parallel regions as clusters
 * (regions dashed, under a cluster labelled `parallel`), final states double-bordered, entry and
 * exit actions in state labels, transitions labelled `EVENT [guard] / action, action`.
 *
 * @example
 * ```ts
 * await writeFile('docs/claim.dot', toDot(claimMachine));
 * ```
 */
export function toDot(machine: AnyStateMachine): string {
  const ids = idsFor(machine);
  const lines: string[] = [
    `digraph ${dotString(machine.id)} {`,
    '  rankdir=LR;',
    '  compound=true;',
    '  fontname="Helvetica";',
    '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=10];',
  ];
  // Edges cannot end on a cluster: each composite gets a point node inside it to aim at, and the
  // edge is clipped at the cluster's border (lhead/ltail).
  const anchor = new Map<AnyStateNode, string>();
  const actionsText = (node: AnyStateNode) => {
    const entry = actionLabels(node.entry);
    const exit = actionLabels(node.exit);
    return [
      ...(entry.length > 0 ? [`entry / ${entry.join(', ')}`] : []),
      ...(exit.length > 0 ? [`exit / ${exit.join(', ')}`] : []),
    ];
  };

  const emit = (node: AnyStateNode, indent: string) => {
    for (const child of children(node)) {
      const id = ids.get(child)!;
      const label = [child.key, ...actionsText(child)].join('\n');
      if (children(child).length === 0) {
        const final = child.type === 'final' ? ', peripheries=2' : '';
        lines.push(`${indent}${id} [label=${dotString(label)}${final}];`);
        continue;
      }
      const parallel = child.type === 'parallel';
      lines.push(`${indent}subgraph cluster_${id} {`);
      lines.push(
        `${indent}  label=${dotString(parallel ? `${label}\n(parallel)` : label)}; style=${
          node.type === 'parallel' ? '"rounded,dashed"' : 'rounded'
        };`,
      );
      const point = `${id}__anchor`;
      anchor.set(child, point);
      // Visible as the initial marker of a compound state; a parallel state has none.
      lines.push(
        `${indent}  ${point} [shape=point, width=0.08, label=""${parallel ? ', style=invis' : ''}];`,
      );
      const initial = initialChild(child);
      // The anchor doubles as the composite's initial-state marker.
      if (initial) initialEdges.push({ from: point, to: initial });
      emit(child, `${indent}  `);
      lines.push(`${indent}}`);
    }
  };
  const initialEdges: { from: string; to: AnyStateNode }[] = [];
  lines.push('  __start [shape=point, width=0.12, label=""];');
  emit(machine.root, '  ');
  const rootInitial = initialChild(machine.root);

  const end = (node: AnyStateNode, side: 'head' | 'tail') => {
    const point = anchor.get(node);
    return point
      ? { id: point, attr: `l${side}=cluster_${ids.get(node)}` }
      : { id: ids.get(node)!, attr: '' };
  };
  const edge = (
    from: { id: string; attr: string },
    to: { id: string; attr: string },
    label: string,
  ) => {
    const attrs = [label ? `label=${dotString(label)}` : '', from.attr, to.attr].filter(Boolean);
    lines.push(`  ${from.id} -> ${to.id}${attrs.length > 0 ? ` [${attrs.join(', ')}]` : ''};`);
  };
  if (rootInitial) edge({ id: '__start', attr: '' }, end(rootInitial, 'head'), '');
  for (const e of initialEdges) edge({ id: e.from, attr: '' }, end(e.to, 'head'), '');
  for (const node of ids.keys()) {
    for (const t of transitionsOf(node)) {
      const targets = t.targets.length > 0 ? t.targets : [t.source];
      for (const target of targets) {
        if (target === machine.root) continue;
        edge(end(t.source, 'tail'), end(target, 'head'), t.label);
      }
    }
  }
  // Transitions on the machine's root apply in every state: drawn from the start marker.
  for (const t of transitionsOf(machine.root)) {
    for (const target of t.targets) {
      if (target !== machine.root) edge({ id: '__start', attr: '' }, end(target, 'head'), t.label);
    }
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** Every state's key, root excluded: what a rendered diagram must name. */
export function stateNames(machine: AnyStateMachine): string[] {
  const out: string[] = [];
  const walk = (node: AnyStateNode) => {
    for (const child of children(node)) {
      out.push(child.key);
      walk(child);
    }
  };
  walk(machine.root);
  return out;
}
