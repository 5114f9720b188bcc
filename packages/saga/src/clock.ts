/**
 * Where a saga runtime gets its time.
 *
 * With the default {@link databaseClock}, every timer, wait deadline, lease and retry back-off is
 * computed by PostgreSQL from its own `now()`: a worker's skewed clock cannot fire a timer early or
 * late (reliability scenario 23). The application clock only stamps `occurredAt` and measures
 * in-process waits (an attempt's timeout, a short back-off), which are durations on a monotonic
 * timer, never wall-clock times.
 *
 * A virtual clock (`createVirtualClock` from `@evident/saga/testing`) runs ahead of real time by
 * the amounts a test skips; the runtime then passes its time to every query that compares with a
 * due time, so a 45-day wait passes in milliseconds against a real database.
 */
export interface SagaClock {
  /**
   * `'database'`: due times come from PostgreSQL's `now()`. `'virtual'`: from {@link now}.
   */
  readonly kind: 'database' | 'virtual';
  /** Milliseconds since the epoch: the virtual time, or the application's wall clock. */
  now(): number;
  /**
   * Resolve after `ms` of this clock's time; reject with `signal.reason` when it aborts first.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Call `listener` whenever time jumps forward (virtual clocks), so waiting workers look again at
   * once. Returns a function that removes the listener.
   */
  onAdvance?(listener: () => void): () => void;
}

/** Sleep on a real timer, cut short by `signal`. */
export function sleepReal(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The default clock: due times are PostgreSQL's, in-process waits are real timers.
 *
 * @example
 * ```ts
 * const runtime = createSagaRuntime({ store, sagas: [onboarding], clock: databaseClock });
 * ```
 */
export const databaseClock: SagaClock = {
  kind: 'database',
  now: () => Date.now(),
  sleep: sleepReal,
};
