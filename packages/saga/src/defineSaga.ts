import { InvalidArgumentError } from '@evident/envelope';
import { type Duration, toMilliseconds } from './duration.js';
import { type RecordedError, SagaError } from './errors.js';
import { assertCompensationPossible, type TransitionParticipant } from './participant.js';

/** What every function of a saga sees: the instance, its input, and what its steps returned. */
export interface SagaContext<Input = unknown, Results = Record<string, unknown>> {
  readonly sagaId: string;
  /** The saga's name and the version this instance runs. */
  readonly saga: string;
  readonly version: number;
  /** Shared by every event of the saga and of the workflow it belongs to. */
  readonly correlationId: string;
  readonly input: Input;
  /** Results of the steps (and waits) that have completed, by name. */
  readonly results: Readonly<Results>;
}

/** What a step's `run` receives. */
export interface StepContext<Input = unknown, Results = Record<string, unknown>>
  extends SagaContext<Input, Results> {
  readonly step: string;
  /** 1 on the first attempt; an attempt cut short by a crashed worker counts. */
  readonly attempt: number;
  /**
   * The same for every attempt of this step, on every worker: give it to the system the step
   * calls so that its effect happens once however often the step runs.
   */
  readonly idempotencyKey: string;
  /**
   * Aborts when the attempt or the step times out (reason: `SagaTimeoutError`), or when this
   * worker loses the instance (its lease expired, or the runtime is stopping).
   */
  readonly signal: AbortSignal;
}

/** What a compensation's `run` (and `entityId`) receives. */
export interface CompensationContext<
  Input = unknown,
  Results = Record<string, unknown>,
  Result = unknown,
> extends StepContext<Input, Results> {
  /** What the compensated step returned. */
  readonly result: Result;
  /** The failure that made the saga compensate (null when an operator asked for it). */
  readonly failure: RecordedError | null;
}

/** Error classes, or error names or codes, that end a step at once instead of retrying it. */
export type NonRetryable = string | (abstract new (...args: never[]) => Error);

/** How a step (or a compensation) is retried. Back-off: initial × coefficient^(n−1), capped. */
export interface RetryPolicy {
  /** Attempts in all, the first included. @defaultValue 3 */
  readonly attempts?: number;
  /** Wait before the second attempt. @defaultValue '1s' */
  readonly initialInterval?: Duration;
  /** Factor applied to the wait after each attempt. @defaultValue 2 */
  readonly backoffCoefficient?: number;
  /** Longest wait between attempts. @defaultValue '1m' */
  readonly maximumInterval?: Duration;
  /** Errors that are not retried (class, `name` or `code`). @defaultValue [] */
  readonly nonRetryable?: readonly NonRetryable[];
}

/**
 * A time limit for each attempt (`'30s'`), or for each attempt and for the whole step across its
 * attempts and retries (`{ attempt: '30s', step: '2m' }`).
 */
export type StepTimeout = Duration | { readonly attempt?: Duration; readonly step?: Duration };

/** Fields every compensation declares: the transition it makes, and how it is retried. */
interface CompensationBase {
  /**
   * The name of the compensating transition, in the domain's words:
   * `'markPendingInsuranceResolution'`. Recorded with the step before it runs.
   */
  readonly transition: string;
  readonly retry?: RetryPolicy;
  readonly timeout?: StepTimeout;
}

/** A compensation carried out by a function: for participants that are not Evident machines. */
export interface RunCompensation<Input, Results, Result> extends CompensationBase {
  /** The state the participant ends in, for the record and for operators. @defaultValue none */
  readonly to?: string;
  /** The participant's name, e.g. `'patient-record'`. @defaultValue the step's participant */
  readonly participant?: string;
  readonly run: (ctx: CompensationContext<Input, Results, Result>) => unknown;
}

/**
 * A compensation that moves an Evident state machine's entity to a state, checked for legality
 * when the saga is defined and again before it runs.
 */
export interface MachineCompensation<Input, Results, Result> extends CompensationBase {
  /** The durable machine (`createDurableMachine(...)` from `@evident/statemachines`). */
  readonly machine: TransitionParticipant;
  /** The state the entity moves to, e.g. `'pendingInsuranceResolution'`. */
  readonly to: string | Readonly<Record<string, unknown>>;
  /** The entity to move. */
  readonly entityId: (ctx: CompensationContext<Input, Results, Result>) => string;
  /**
   * Candidate events (with payloads) for the step; the first legal one that reaches `to` is sent.
   * @defaultValue every event the entity's state accepts
   */
  readonly events?: readonly { readonly type: string; readonly [key: string]: unknown }[];
}

/** A step's compensation: a transition of its participant, never an undo. */
export type Compensation<Input, Results, Result> =
  | RunCompensation<Input, Results, Result>
  | MachineCompensation<Input, Results, Result>;

/** One step of a saga. */
export interface StepDefinition<Input, Results, Result> {
  /** Do the step's work; what it returns (plain JSON) is recorded and given to later steps. */
  readonly run: (ctx: StepContext<Input, Results>) => Result | Promise<Result>;
  /** The transition that compensates it when a later step fails. @defaultValue none */
  readonly compensate?: Compensation<Input, Results, Awaited<Result>>;
  /** @defaultValue 3 attempts, 1 s × 2 back-off, at most 1 min between attempts */
  readonly retry?: RetryPolicy;
  /** @defaultValue no limit */
  readonly timeout?: StepTimeout;
  /**
   * The step's idempotency key, stable across its attempts and workers.
   * @defaultValue `saga/<sagaId>/<step>`
   */
  readonly idempotencyKey?: (ctx: SagaContext<Input, Results>) => string;
  /** The system or entity the step acts on, named in dead letters. @defaultValue the step name */
  readonly participant?: string;
  /**
   * When the step's attempts are exhausted: compensate the saga, or park it as a dead letter for
   * an operator (who may retry the step, compensate, or resolve it). @defaultValue 'compensate'
   */
  readonly onExhausted?: 'compensate' | 'deadLetter';
}

/** A signal a wait received: the external event, as recorded on the saga's stream. */
export interface ReceivedSignal<Type extends string = string, Data = unknown> {
  readonly id: string;
  readonly type: Type;
  readonly data: Data;
  readonly occurredAt: string;
  readonly source: string;
  readonly correlationId: string;
}

/** Options of {@link SagaDefinition.waitFor}. */
export interface WaitOptions<Input, Results, Name extends string> {
  /** Name of the wait; its result is `results[name]`. @defaultValue the event type */
  readonly name?: Name;
  /**
   * The key external events are routed by (`runtime.deliver`): a claim id, a patient id.
   * @defaultValue the saga's correlation id
   */
  readonly correlate?: (ctx: SagaContext<Input, Results>) => string;
  /** Give up after this long (database time). @defaultValue wait for ever */
  readonly timeout?: Duration;
  /**
   * On timeout: fail the saga with `SagaTimeoutError` (it compensates), or continue with a
   * `null` result. @defaultValue 'fail'
   */
  readonly onTimeout?: 'fail' | 'continue';
}

/** Until when a sleep lasts: a date, or a function of the context returning one. */
export type SleepUntil<Input, Results> = {
  readonly until: Date | string | ((ctx: SagaContext<Input, Results>) => Date | string);
};

// ---------------------------------------------------------------------------------------------
// The normalized tree the runtime interprets.

/** @internal */
export interface NormalizedRetry {
  readonly attempts: number;
  readonly initialMs: number;
  readonly coefficient: number;
  readonly maximumMs: number;
  readonly nonRetryable: readonly NonRetryable[];
}

/** @internal */
export interface NormalizedCompensation {
  readonly transition: string;
  readonly to: unknown;
  readonly participant: string;
  readonly run?: (ctx: CompensationContext) => unknown;
  readonly machine?: TransitionParticipant;
  readonly entityId?: (ctx: CompensationContext) => string;
  readonly events?: readonly { readonly type: string }[];
  readonly retry: NormalizedRetry;
  readonly attemptTimeoutMs: number | null;
  readonly stepTimeoutMs: number | null;
}

/** @internal */
export interface StepNode {
  readonly kind: 'step';
  readonly id: string;
  readonly run: (ctx: StepContext) => unknown;
  readonly compensate: NormalizedCompensation | null;
  readonly retry: NormalizedRetry;
  readonly attemptTimeoutMs: number | null;
  readonly stepTimeoutMs: number | null;
  readonly idempotencyKey: ((ctx: SagaContext) => string) | null;
  readonly participant: string;
  readonly onExhausted: 'compensate' | 'deadLetter';
}

/** @internal */
export interface WhenNode {
  readonly kind: 'when';
  readonly id: string;
  readonly predicate: (ctx: SagaContext) => boolean;
  readonly branch: readonly SagaNode[];
}

/** @internal */
export interface ParallelNode {
  readonly kind: 'parallel';
  readonly id: string;
  readonly branches: readonly { readonly name: string; readonly nodes: readonly SagaNode[] }[];
}

/** @internal */
export interface SleepNode {
  readonly kind: 'sleep';
  readonly id: string;
  readonly delayMs: number | null;
  readonly until: ((ctx: SagaContext) => Date | string) | null;
}

/** @internal */
export interface WaitNode {
  readonly kind: 'wait';
  readonly id: string;
  readonly eventType: string;
  readonly correlate: ((ctx: SagaContext) => string) | null;
  readonly timeoutMs: number | null;
  readonly onTimeout: 'fail' | 'continue';
}

/** @internal */
export type SagaNode = StepNode | WhenNode | ParallelNode | SleepNode | WaitNode;

/**
 * Maps an event of the saga's stream recorded by version `n` to its shape in version `n + 1`
 * (return `null` to drop it). Registered as `migrations[n]`.
 */
export type SagaMigration = (event: {
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
}) => { readonly type: string; readonly data: Readonly<Record<string, unknown>> } | null;

/**
 * A migration that renames steps (and waits, timers, branches) in a stored history: every field
 * that names a node, the starts a success carries included.
 *
 * @example
 * ```ts
 * defineSaga('patient-onboarding', {
 *   version: 2,
 *   migrations: { 1: renameSteps({ createPatientRecord: 'registerPatient' }) },
 * })
 * ```
 */
export function renameSteps(renames: Readonly<Record<string, string>>): SagaMigration {
  const rename = (name: unknown) =>
    typeof name === 'string' && Object.hasOwn(renames, name) ? renames[name]! : name;
  return (event) => {
    const data: Record<string, unknown> = { ...event.data };
    for (const field of ['step', 'node', 'timer', 'wait'] as const) {
      if (field in data) data[field] = rename(data[field]);
    }
    if (Array.isArray(data.next)) {
      data.next = data.next.map((n: Record<string, unknown>) => ({ ...n, step: rename(n.step) }));
    }
    return { type: event.type, data };
  };
}

/** Options of {@link defineSaga}. */
export interface DefineSagaOptions {
  /**
   * The definition's version. An instance runs, to its end, the version it started with; raise
   * the version when you change steps, and keep the old definition registered until its instances
   * are done (or register a migration).
   */
  readonly version: number;
  /**
   * `migrations[n]` lets this definition take over instances started by version `n` (chained up
   * to this version), mapping each recorded event. @defaultValue none: only its own instances
   */
  readonly migrations?: Readonly<Record<number, SagaMigration>>;
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (
  i: infer I,
) => void
  ? I
  : never;

/**
 * The step results a definition (or a branch) accumulates.
 *
 * @example
 * ```ts
 * type Onboarded = ResultsFrom<typeof onboarding>; // { createPatientRecord: { recordId: string }, ... }
 * ```
 */
export type ResultsFrom<D> = D extends { readonly '~types'?: { readonly results: infer R } }
  ? R
  : never;
/**
 * The input type of a saga definition.
 *
 * @example
 * ```ts
 * const input: InputFrom<typeof onboarding> = { patientId: 'p-81', ... };
 * ```
 */
export type InputFrom<D> = D extends { readonly '~types'?: { readonly input: infer I } }
  ? I
  : never;

/**
 * Any saga definition, whatever its input and results: what a runtime registers.
 *
 * @example
 * ```ts
 * const sagas: readonly AnySagaDefinition[] = [onboarding, claimLifecycle];
 * ```
 */
export interface AnySagaDefinition {
  readonly name: string;
  readonly version: number;
  readonly migrations: Readonly<Record<number, SagaMigration>>;
  /** @internal */
  readonly nodes: readonly SagaNode[];
}

type Branch<Input, Results> = (
  branch: SagaDefinition<Input, Results>,
) => SagaDefinition<Input, object>;

/**
 * A saga: a name, a version, and its steps, conditional branches, parallel branches, waits and
 * sleeps, in order. Immutable: every builder method returns a new definition. Create one with
 * {@link defineSaga}.
 */
export interface SagaDefinition<Input = unknown, Results = Record<string, unknown>>
  extends AnySagaDefinition {
  /** Type-level only (never set): what {@link InputFrom} and {@link ResultsFrom} read. */
  readonly '~types'?: { readonly input: Input; readonly results: Results };
  readonly name: string;
  readonly version: number;
  readonly migrations: Readonly<Record<number, SagaMigration>>;
  /** @internal The tree the runtime interprets. */
  readonly nodes: readonly SagaNode[];
  /**
   * Add a step. Its result is available to later steps as `results[name]`.
   *
   * @example
   * ```ts
   * .step('verifyInsuranceEligibility', {
   *   run: ({ input, idempotencyKey, signal }) => payers.checkEligibility(input.memberId, { idempotencyKey, signal }),
   *   retry: { attempts: 3, initialInterval: '1s', nonRetryable: ['PlanNotContracted'] },
   *   timeout: { attempt: '30s', step: '2m' },
   * })
   * ```
   * @throws SagaError `SAGA_DEFINITION_INVALID` for a duplicate or malformed name, or bad options;
   * `COMPENSATION_NEVER_LEGAL` for a machine compensation no entity could ever take.
   */
  step<Name extends string, Result>(
    name: Name,
    step: StepDefinition<Input, Results, Result>,
  ): SagaDefinition<Input, Simplify<Results & { readonly [K in Name]: Awaited<Result> }>>;
  /**
   * Steps that run only when `predicate` holds. It is evaluated once and its value recorded, so
   * replays and later code changes cannot change the path an instance took.
   *
   * @example
   * ```ts
   * .when(({ results }) => results.checkPriorAuthorization.required, (b) =>
   *   b.step('requestPriorAuthorization', { run: ... }))
   * ```
   */
  when<B extends SagaDefinition<Input, object>>(
    predicate: (ctx: SagaContext<Input, Results>) => boolean,
    branch: (branch: SagaDefinition<Input, Results>) => B,
    options?: { readonly name?: string },
  ): SagaDefinition<Input, Simplify<Results & Partial<Omit<ResultsFrom<B>, keyof Results>>>>;
  /**
   * Branches that run at the same time and join: the saga goes on when every branch has finished.
   * A failing branch lets the others finish their running step, then the saga compensates.
   *
   * @example
   * ```ts
   * .parallel({
   *   primary: (b) => b.step('submitToPrimaryPayer', { run: ... }),
   *   secondary: (b) => b.step('submitToSecondaryPayer', { run: ... }),
   * })
   * ```
   */
  parallel<Branches extends Readonly<Record<string, Branch<Input, Results>>>>(
    branches: Branches,
    options?: { readonly name?: string },
  ): SagaDefinition<
    Input,
    Simplify<
      Results &
        UnionToIntersection<
          {
            [K in keyof Branches]: Omit<ResultsFrom<ReturnType<Branches[K]>>, keyof Results>;
          }[keyof Branches]
        >
    >
  >;
  /**
   * Wait for an external event delivered with `runtime.signal` or `runtime.deliver`. A signal that
   * arrives before the saga reaches the wait is kept and consumed when it does.
   *
   * @example
   * ```ts
   * .waitFor('RemittanceReceived', { name: 'remittance', correlate: ({ input }) => input.claimId, timeout: '45d' })
   * ```
   */
  waitFor<Type extends string, Data = unknown, Name extends string = Type>(
    eventType: Type,
    options?: WaitOptions<Input, Results, Name>,
  ): SagaDefinition<
    Input,
    Simplify<Results & { readonly [K in Name]: ReceivedSignal<Type, Data> | null }>
  >;
  /**
   * Sleep for a duration, or until a time. A sleeping instance is a row with a wake-up time in
   * database time; no process waits for it.
   *
   * @example
   * ```ts
   * .sleep('3d', { name: 'coolingOffPeriod' })
   * .sleep({ until: ({ input }) => input.consultationDate })
   * ```
   */
  sleep(
    duration: Duration | SleepUntil<Input, Results>,
    options?: { readonly name?: string },
  ): SagaDefinition<Input, Results>;
}

const namePattern = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;
const eventTypePattern = /^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/;

function invalid(message: string): SagaError<'SAGA_DEFINITION_INVALID'> {
  return new SagaError('SAGA_DEFINITION_INVALID', message);
}

function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !namePattern.test(name)) {
    throw invalid(`${what} must be 1-64 characters matching ${namePattern}`);
  }
  return name;
}

function normalizeRetry(where: string, retry: RetryPolicy | undefined): NormalizedRetry {
  const r = retry ?? {};
  if (r !== null && typeof r !== 'object') throw invalid(`${where}: retry must be an object`);
  const attempts = r.attempts ?? 3;
  if (!Number.isSafeInteger(attempts) || attempts < 1 || attempts > 1000) {
    throw invalid(`${where}: retry.attempts must be an integer from 1 to 1000`);
  }
  const coefficient = r.backoffCoefficient ?? 2;
  if (typeof coefficient !== 'number' || !Number.isFinite(coefficient) || coefficient < 1) {
    throw invalid(`${where}: retry.backoffCoefficient must be a number ≥ 1`);
  }
  const nonRetryable = r.nonRetryable ?? [];
  if (
    !Array.isArray(nonRetryable) ||
    nonRetryable.some((n) => typeof n !== 'string' && typeof n !== 'function')
  ) {
    throw invalid(`${where}: retry.nonRetryable must list error classes, names or codes`);
  }
  const initialMs = toMilliseconds(r.initialInterval ?? 1000, `${where}: retry.initialInterval`);
  const maximumMs = toMilliseconds(r.maximumInterval ?? 60_000, `${where}: retry.maximumInterval`);
  return {
    attempts,
    initialMs,
    coefficient,
    maximumMs: Math.max(initialMs, maximumMs),
    nonRetryable,
  };
}

function normalizeTimeout(
  where: string,
  timeout: StepTimeout | undefined,
): { attemptTimeoutMs: number | null; stepTimeoutMs: number | null } {
  if (timeout === undefined) return { attemptTimeoutMs: null, stepTimeoutMs: null };
  if (typeof timeout === 'number' || typeof timeout === 'string') {
    return { attemptTimeoutMs: positive(where, timeout, 'timeout'), stepTimeoutMs: null };
  }
  if (timeout === null || typeof timeout !== 'object') {
    throw invalid(`${where}: timeout must be a duration or { attempt, step }`);
  }
  return {
    attemptTimeoutMs:
      timeout.attempt === undefined ? null : positive(where, timeout.attempt, 'timeout.attempt'),
    stepTimeoutMs:
      timeout.step === undefined ? null : positive(where, timeout.step, 'timeout.step'),
  };
}

function positive(where: string, d: Duration, field: string): number {
  const ms = toMilliseconds(d, `${where}: ${field}`);
  if (ms < 1) throw invalid(`${where}: ${field} must be at least 1 ms`);
  return ms;
}

function normalizeCompensation(
  step: string,
  participant: string,
  c: Compensation<unknown, unknown, unknown> | undefined,
): NormalizedCompensation | null {
  if (c === undefined) return null;
  if (c === null || typeof c !== 'object') {
    throw invalid(`step ${step}: compensate must be an object { transition, ... }`);
  }
  const where = `compensation of ${step}`;
  checkName(`${where}: transition`, c.transition);
  const shared = {
    transition: c.transition,
    retry: normalizeRetry(where, c.retry),
    ...timeouts(normalizeTimeout(where, c.timeout)),
  };
  if ('machine' in c && c.machine !== undefined) {
    const m = c as MachineCompensation<unknown, unknown, unknown>;
    if (typeof m.entityId !== 'function') {
      throw invalid(`${where}: a machine compensation needs entityId: (ctx) => string`);
    }
    if (m.to === undefined || m.to === null) {
      throw invalid(`${where}: a machine compensation needs the state it moves to (to)`);
    }
    if (typeof m.machine.transitionTo !== 'function' || typeof m.machine.load !== 'function') {
      throw invalid(`${where}: machine must be a durable machine from @evident/statemachines`);
    }
    assertCompensationPossible(
      step,
      m.machine,
      m.to,
      m.events?.map((e) => e.type),
    );
    return {
      ...shared,
      to: m.to,
      participant: m.machine.streamType,
      machine: m.machine,
      entityId: m.entityId as (ctx: CompensationContext) => string,
      ...(m.events ? { events: m.events } : {}),
    };
  }
  const r = c as RunCompensation<unknown, unknown, unknown>;
  if (typeof r.run !== 'function') {
    throw invalid(`${where}: give run: (ctx) => ..., or a state machine participant`);
  }
  if (r.to !== undefined) checkName(`${where}: to`, r.to);
  return {
    ...shared,
    to: r.to ?? null,
    participant:
      r.participant === undefined ? participant : checkName(`${where}: participant`, r.participant),
    run: r.run as (ctx: CompensationContext) => unknown,
  };
}

function timeouts(t: { attemptTimeoutMs: number | null; stepTimeoutMs: number | null }) {
  return t;
}

/** Every node id in a tree. */
export function nodeIds(nodes: readonly SagaNode[]): string[] {
  return nodes.flatMap((n) => [
    n.id,
    ...(n.kind === 'when'
      ? nodeIds(n.branch)
      : n.kind === 'parallel'
        ? n.branches.flatMap((b) => nodeIds(b.nodes))
        : []),
  ]);
}

/** Every step of a tree, in definition order. */
export function stepNodes(nodes: readonly SagaNode[]): StepNode[] {
  return nodes.flatMap((n) =>
    n.kind === 'step'
      ? [n]
      : n.kind === 'when'
        ? stepNodes(n.branch)
        : n.kind === 'parallel'
          ? n.branches.flatMap((b) => stepNodes(b.nodes))
          : [],
  );
}

interface BuilderState {
  readonly name: string;
  readonly version: number;
  readonly migrations: Readonly<Record<number, SagaMigration>>;
  readonly nodes: readonly SagaNode[];
  /** Ids taken in the whole saga (branches included), shared so names stay unique. */
  readonly taken: ReadonlySet<string>;
  /** Prefix of generated names inside a branch. */
  readonly prefix: string;
}

function build<Input, Results>(state: BuilderState): SagaDefinition<Input, Results> {
  const add = (node: SagaNode, extraIds: readonly string[] = []) => {
    const ids = [node.id, ...extraIds];
    for (const id of ids) {
      if (state.taken.has(id) || ids.indexOf(id) !== ids.lastIndexOf(id)) {
        throw invalid(`saga ${state.name} already has a step, wait or branch named ${id}`);
      }
    }
    return build<Input, never>({
      ...state,
      nodes: [...state.nodes, node],
      taken: new Set([...state.taken, ...ids]),
    });
  };
  const generated = (kind: string) => {
    let n = 1;
    while (state.taken.has(`${state.prefix}${kind}-${n}`)) n++;
    return `${state.prefix}${kind}-${n}`;
  };
  const branch = (prefix: string, taken: ReadonlySet<string>) =>
    build<Input, Results>({ ...state, nodes: [], taken, prefix });

  const definition: SagaDefinition<Input, Results> = {
    name: state.name,
    version: state.version,
    migrations: state.migrations,
    nodes: state.nodes,

    step(name, spec) {
      checkName('a step name', name);
      if (spec === null || typeof spec !== 'object' || typeof spec.run !== 'function') {
        throw invalid(`step ${name} needs run: (ctx) => result`);
      }
      if (spec.idempotencyKey !== undefined && typeof spec.idempotencyKey !== 'function') {
        throw invalid(`step ${name}: idempotencyKey must be a function of the context`);
      }
      const onExhausted = spec.onExhausted ?? 'compensate';
      if (onExhausted !== 'compensate' && onExhausted !== 'deadLetter') {
        throw invalid(`step ${name}: onExhausted must be 'compensate' or 'deadLetter'`);
      }
      const participant =
        spec.participant === undefined
          ? name
          : checkName(`step ${name}: participant`, spec.participant);
      const node: StepNode = {
        kind: 'step',
        id: name,
        run: spec.run as (ctx: StepContext) => unknown,
        compensate: normalizeCompensation(
          name,
          participant,
          spec.compensate as Compensation<unknown, unknown, unknown> | undefined,
        ),
        retry: normalizeRetry(`step ${name}`, spec.retry),
        ...normalizeTimeout(`step ${name}`, spec.timeout),
        idempotencyKey: (spec.idempotencyKey as ((ctx: SagaContext) => string) | undefined) ?? null,
        participant,
        onExhausted,
      };
      return add(node) as never;
    },

    when(predicate, makeBranch, options = {}) {
      if (typeof predicate !== 'function' || typeof makeBranch !== 'function') {
        throw invalid(
          'when needs a predicate and a branch: when((ctx) => ..., (b) => b.step(...))',
        );
      }
      const id =
        options.name === undefined ? generated('when') : checkName('a when name', options.name);
      const taken = new Set([...state.taken, id]);
      const built = makeBranch(branch(`${id}.`, taken));
      if (!built || !Array.isArray((built as SagaDefinition).nodes)) {
        throw invalid(`the branch of ${id} must return the builder it was given`);
      }
      const node: WhenNode = {
        kind: 'when',
        id,
        predicate: predicate as (ctx: SagaContext) => boolean,
        branch: built.nodes,
      };
      return add(node, nodeIds(built.nodes)) as never;
    },

    parallel(branches, options = {}) {
      if (branches === null || typeof branches !== 'object') {
        throw invalid('parallel needs an object of branches: parallel({ a: (b) => ..., b: ... })');
      }
      const entries = Object.entries(branches);
      if (entries.length < 2 || entries.length > 32) {
        throw invalid('parallel needs 2 to 32 branches');
      }
      const id =
        options.name === undefined
          ? generated('parallel')
          : checkName('a parallel name', options.name);
      let taken: ReadonlySet<string> = new Set([...state.taken, id]);
      const built: { name: string; nodes: readonly SagaNode[] }[] = [];
      for (const [branchName, makeBranch] of entries) {
        checkName('a branch name', branchName);
        if (typeof makeBranch !== 'function') {
          throw invalid(`branch ${branchName} of ${id} must be a function (b) => b.step(...)`);
        }
        const result = makeBranch(branch(`${id}.${branchName}.`, taken));
        if (!result || !Array.isArray((result as SagaDefinition).nodes)) {
          throw invalid(`branch ${branchName} of ${id} must return the builder it was given`);
        }
        if (result.nodes.length === 0) throw invalid(`branch ${branchName} of ${id} is empty`);
        taken = new Set([...taken, ...nodeIds(result.nodes)]);
        built.push({ name: branchName, nodes: result.nodes });
      }
      const node: ParallelNode = { kind: 'parallel', id, branches: built };
      return add(
        node,
        built.flatMap((b) => nodeIds(b.nodes)),
      ) as never;
    },

    waitFor(eventType, options = {}) {
      if (typeof eventType !== 'string' || !eventTypePattern.test(eventType)) {
        throw invalid(`waitFor needs an event type matching ${eventTypePattern}`);
      }
      const id = checkName('a wait name', options.name ?? eventType);
      if (options.correlate !== undefined && typeof options.correlate !== 'function') {
        throw invalid(`wait ${id}: correlate must be a function of the context`);
      }
      const onTimeout = options.onTimeout ?? 'fail';
      if (onTimeout !== 'fail' && onTimeout !== 'continue') {
        throw invalid(`wait ${id}: onTimeout must be 'fail' or 'continue'`);
      }
      const node: WaitNode = {
        kind: 'wait',
        id,
        eventType,
        correlate: (options.correlate as ((ctx: SagaContext) => string) | undefined) ?? null,
        timeoutMs:
          options.timeout === undefined
            ? null
            : toMilliseconds(options.timeout, `wait ${id}: timeout`),
        onTimeout,
      };
      return add(node) as never;
    },

    sleep(duration, options = {}) {
      const id =
        options.name === undefined ? generated('sleep') : checkName('a sleep name', options.name);
      let node: SleepNode;
      if (typeof duration === 'object' && duration !== null && 'until' in duration) {
        const until = duration.until;
        if (typeof until === 'function') {
          node = { kind: 'sleep', id, delayMs: null, until: until as (ctx: SagaContext) => Date };
        } else {
          const at = new Date(until as Date | string);
          if (Number.isNaN(at.getTime())) throw invalid(`sleep ${id}: until is not a valid date`);
          node = { kind: 'sleep', id, delayMs: null, until: () => at };
        }
      } else {
        node = {
          kind: 'sleep',
          id,
          delayMs: toMilliseconds(duration as Duration, `sleep ${id}`),
          until: null,
        };
      }
      return add(node) as never;
    },
  };
  return Object.freeze(definition);
}

/**
 * Start defining a saga. Give the input type as the type argument; each step's result type is
 * inferred and available to the steps after it.
 *
 * @example
 * ```ts
 * const onboarding = defineSaga<{ patientId: string; payerId: string }>('patient-onboarding', { version: 1 })
 *   .step('createPatientRecord', {
 *     run: ({ input, idempotencyKey }) => records.create(input.patientId, { idempotencyKey }),
 *     compensate: { transition: 'moveToHolding', to: 'Holding', run: ({ input }) => records.hold(input.patientId) },
 *   })
 *   .step('verifyInsuranceEligibility', { run: ..., retry: { attempts: 3 }, timeout: '30s' });
 * ```
 * @throws SagaError `SAGA_DEFINITION_INVALID` for a malformed name or version.
 */
export function defineSaga<Input = unknown>(
  name: string,
  options: DefineSagaOptions,
): SagaDefinition<Input, object> {
  checkName('a saga name', name);
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('defineSaga needs options { version }');
  }
  const { version } = options;
  if (!Number.isSafeInteger(version) || version < 1 || version > 1_000_000) {
    throw invalid(`saga ${name}: version must be a positive integer`);
  }
  const migrations = options.migrations ?? {};
  for (const [from, migrate] of Object.entries(migrations)) {
    const n = Number(from);
    if (!Number.isSafeInteger(n) || n < 1 || n >= version || typeof migrate !== 'function') {
      throw invalid(
        `saga ${name}: migrations[n] must map a version n below ${version} with a function`,
      );
    }
  }
  return build<Input, object>({
    name,
    version,
    migrations,
    nodes: [],
    taken: new Set(),
    prefix: '',
  });
}
