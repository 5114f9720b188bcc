import { InvalidArgumentError } from '@evident/envelope';

/**
 * Group commit: appends to different streams that arrive while the store's group statements are
 * busy wait, and go together as the next one — one round trip and one transaction for all of
 * them, each keeping its own expectation and its own outcome.
 */
export interface GroupCommitOptions {
  /**
   * Group statements in flight at once. Appends arriving while this many are running wait for
   * one to finish, and then go together. Fewer means larger groups and less work per append;
   * more means less waiting when appends are few. @defaultValue 2
   */
  readonly statements?: number;
  /** Most appends in one statement. @defaultValue 16 */
  readonly maxAppends?: number;
}

export interface GroupCommitSettings {
  readonly statements: number;
  readonly maxAppends: number;
}

const defaults: GroupCommitSettings = { statements: 2, maxAppends: 16 };

/** The settings of `createEventStore`'s `groupCommit` option, or undefined when it is off. */
export function groupCommitSettings(option: unknown): GroupCommitSettings | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return defaults;
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    throw new InvalidArgumentError('groupCommit must be a boolean or { statements, maxAppends }');
  }
  const { statements = defaults.statements, maxAppends = defaults.maxAppends } =
    option as GroupCommitOptions;
  for (const [name, value, max] of [
    ['groupCommit.statements', statements, 64],
    ['groupCommit.maxAppends', maxAppends, 64],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1 || value > max) {
      throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
    }
  }
  return { statements, maxAppends };
}

/** One append waiting for its group. */
export interface GroupMember {
  /** Appends to the same stream never share a group: the second would not see the first. */
  readonly streamKey: string;
  /** Only members of one kind share a statement (see `createGroupQueue`). */
  readonly kind: string;
  /** Its events: a group holds no more than the largest single append may. */
  readonly events: number;
}

/**
 * A queue that runs members in groups: up to `statements` groups at once, each of up to
 * `maxAppends` members of one kind on distinct streams and of at most `maxEvents` events
 * together (a member larger than that goes alone), taken in arrival order. One kind per
 * group keeps the statements few (a kind and a size each) and so the prepared statements a
 * connection holds bounded. A member that finds a slot free runs at once, alone.
 */
export function createGroupQueue<M extends GroupMember>(
  settings: GroupCommitSettings & { readonly maxEvents: number },
  run: (group: M[]) => Promise<void>,
): (member: M) => void {
  let waiting: M[] = [];
  let running = 0;

  const take = (): M[] => {
    const kind = waiting[0]!.kind;
    const group: M[] = [];
    const streams = new Set<string>();
    const rest: M[] = [];
    let events = 0;
    for (const m of waiting) {
      if (
        group.length < settings.maxAppends &&
        m.kind === kind &&
        !streams.has(m.streamKey) &&
        (group.length === 0 || events + m.events <= settings.maxEvents)
      ) {
        streams.add(m.streamKey);
        events += m.events;
        group.push(m);
      } else {
        rest.push(m);
      }
    }
    waiting = rest;
    return group;
  };

  const pump = (): void => {
    while (running < settings.statements && waiting.length > 0) {
      const group = take();
      running += 1;
      // `run` settles every member itself; it does not reject.
      void run(group).finally(() => {
        running -= 1;
        pump();
      });
    }
  };

  return (member) => {
    waiting.push(member);
    pump();
  };
}
