import { InvalidArgumentError } from '@evident/envelope';

/** Exponential backoff between attempts. */
export interface BackoffOptions {
  /** Delay after the first failed attempt, in milliseconds. @defaultValue 1000 */
  readonly initialMs?: number;
  /** Each further delay is the previous one times this. @defaultValue 2 */
  readonly factor?: number;
  /** No delay is longer than this, in milliseconds. @defaultValue 60000 */
  readonly maxMs?: number;
}

/** How often a failing message is tried before it is dead-lettered, and how long apart. */
export interface RetryOptions {
  /** Deliveries in all, the first included; 1 means no retry. @defaultValue 5 */
  readonly attempts?: number;
  readonly backoff?: BackoffOptions;
}

/** A {@link RetryOptions} with every default filled in. */
export interface RetryPolicy {
  readonly attempts: number;
  readonly backoff: Required<BackoffOptions>;
}

/** The policy a subscription gets without `retry`: 5 attempts, 1 s, 2 s, 4 s, 8 s apart. */
export const defaultRetryPolicy: RetryPolicy = Object.freeze({
  attempts: 5,
  backoff: Object.freeze({ initialMs: 1000, factor: 2, maxMs: 60_000 }),
});

function check(name: string, value: number, min: number, max: number, integer: boolean): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    const kind = integer ? 'an integer' : 'a number';
    throw new InvalidArgumentError(`${name} must be ${kind} from ${min} to ${max}; got ${value}`);
  }
  return value;
}

/**
 * Fill in a retry policy's defaults and check its bounds.
 *
 * @example
 * ```ts
 * resolveRetryPolicy({ attempts: 3, backoff: { initialMs: 200 } });
 * // { attempts: 3, backoff: { initialMs: 200, factor: 2, maxMs: 60000 } }
 * ```
 * @throws InvalidArgumentError when a value is out of range (attempts 1-100, delays up to 12 hours).
 */
export function resolveRetryPolicy(options: RetryOptions | undefined): RetryPolicy {
  const d = defaultRetryPolicy;
  const attempts = check('retry.attempts', options?.attempts ?? d.attempts, 1, 100, true);
  const b = options?.backoff;
  const twelveHours = 12 * 60 * 60 * 1000;
  const initialMs = check(
    'retry.backoff.initialMs',
    b?.initialMs ?? d.backoff.initialMs,
    0,
    twelveHours,
    true,
  );
  const factor = check('retry.backoff.factor', b?.factor ?? d.backoff.factor, 1, 100, false);
  const maxMs = check(
    'retry.backoff.maxMs',
    b?.maxMs ?? d.backoff.maxMs,
    initialMs,
    twelveHours,
    true,
  );
  return { attempts, backoff: { initialMs, factor, maxMs } };
}

/**
 * Delay before the attempt after failed attempt `attempt` (1-based):
 * `min(maxMs, initialMs × factor^(attempt − 1))`, rounded to whole milliseconds.
 *
 * @example
 * ```ts
 * backoffDelay(resolveRetryPolicy({ backoff: { initialMs: 100, factor: 3 } }), 2); // 300
 * ```
 */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const { initialMs, factor, maxMs } = policy.backoff;
  const raw = initialMs * factor ** Math.max(0, attempt - 1);
  return Math.round(Math.min(maxMs, raw));
}

/** Every distinct delay a policy can ask for, in attempt order (RabbitMQ declares one queue each). */
export function backoffDelays(policy: RetryPolicy): readonly number[] {
  const delays = new Set<number>();
  for (let attempt = 1; attempt < policy.attempts; attempt++)
    delays.add(backoffDelay(policy, attempt));
  return [...delays];
}
