import { InvalidArgumentError } from '@evident/envelope';
import type { AnyStateMachine, AnyStateNode } from 'xstate';

/**
 * What a durable machine can and cannot hold, checked once when it is created so that a machine
 * that could not be made durable fails at start-up rather than on some entity's step weeks later.
 *
 * - Guards must be named (`setup({ guards })`), or built from named guards with `and`, `or`,
 *   `not`, `stateIn`: a named guard's evaluation is recorded with each step; an inline function
 *   has no name a regulator could read.
 * - Actions with side effects must be named too: they run as jobs after commit, possibly in
 *   another process after a crash, and only a name can be looked up there.
 * - Invoked and spawned actors, `sendTo` and `sendParent` are not durable (their state lives in
 *   memory); model them as actions whose outcome is sent back as an event.
 */

/** XState built-in actions a durable machine may use: they are pure or become timers. */
const durableBuiltins = new Set([
  'xstate.assign',
  'xstate.raise',
  'xstate.cancel',
  'xstate.log',
  'xstate.enqueueActions',
]);

type ActionItem = unknown;

function stateLabel(node: AnyStateNode): string {
  return node.path.length === 0 ? '(root)' : node.path.join('.');
}

/** Every state node of a machine, root first, in document order. */
export function allStateNodes(machine: AnyStateMachine): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const walk = (node: AnyStateNode) => {
    out.push(node);
    for (const child of Object.values(node.states) as AnyStateNode[]) walk(child);
  };
  walk(machine.root);
  return out;
}

/** The name of an action item, or `null` for a built-in; throws for what cannot be durable. */
function actionName(item: ActionItem, where: string): string | null {
  if (typeof item === 'string') return item;
  if (typeof item === 'function') {
    const builtin = item as { type?: unknown; resolve?: unknown };
    if (typeof builtin.resolve === 'function' && typeof builtin.type === 'string') {
      if (!durableBuiltins.has(builtin.type)) {
        throw new InvalidArgumentError(
          `${where} uses ${builtin.type}, which is not durable: model it as a named action that sends its result back as an event`,
        );
      }
      return null;
    }
    throw new InvalidArgumentError(
      `${where} has an inline action function: name it in setup({ actions }) so it can run as a durable job`,
    );
  }
  if (item && typeof item === 'object' && typeof (item as { type?: unknown }).type === 'string') {
    return (item as { type: string }).type;
  }
  throw new InvalidArgumentError(`${where} has an action that is neither a name nor an object`);
}

function checkGuard(guard: unknown, where: string, names: Set<string>): void {
  if (guard === undefined) return;
  if (typeof guard === 'string') {
    names.add(guard);
    return;
  }
  if (typeof guard === 'function') {
    const builtin = guard as { check?: unknown; guards?: unknown };
    if (typeof builtin.check === 'function') {
      if (Array.isArray(builtin.guards)) {
        for (const inner of builtin.guards) checkGuard(inner, where, names);
      }
      return;
    }
    throw new InvalidArgumentError(
      `${where} has an inline guard function: name it in setup({ guards }) so its evaluation can be recorded`,
    );
  }
  if (
    guard &&
    typeof guard === 'object' &&
    typeof (guard as { type?: unknown }).type === 'string'
  ) {
    names.add((guard as { type: string }).type);
    return;
  }
  throw new InvalidArgumentError(`${where} has a guard that is neither a name nor an object`);
}

/** The named actions and guards of a machine, after checking it can be made durable. */
export interface MachineShape {
  readonly actions: ReadonlySet<string>;
  readonly guards: ReadonlySet<string>;
}

/**
 * Check that a machine can be made durable and list the named actions and guards it uses.
 *
 * @throws InvalidArgumentError naming the state and event of the first thing that cannot be durable.
 */
export function inspectMachine(machine: AnyStateMachine): MachineShape {
  const actions = new Set<string>();
  const guards = new Set<string>();
  const collect = (items: readonly ActionItem[], where: string) => {
    for (const item of items) {
      const name = actionName(item, where);
      if (name !== null) actions.add(name);
    }
  };
  for (const node of allStateNodes(machine)) {
    const at = `state ${stateLabel(node)}`;
    if (node.invoke.length > 0) {
      throw new InvalidArgumentError(
        `${at} invokes an actor, which is not durable: run the work as a named action that sends its result back as an event`,
      );
    }
    collect(node.entry, `the entry of ${at}`);
    collect(node.exit, `the exit of ${at}`);
    for (const [eventType, transitions] of node.transitions) {
      for (const t of transitions) {
        const where = `the ${eventType} transition of ${at}`;
        checkGuard(t.guard, where, guards);
        collect(t.actions, where);
      }
    }
    for (const t of node.always ?? []) {
      const where = `an always transition of ${at}`;
      checkGuard(t.guard, where, guards);
      collect(t.actions, where);
    }
  }
  return { actions, guards };
}
