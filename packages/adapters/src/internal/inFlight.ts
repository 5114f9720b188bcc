/** Tracks running handlers so `close()` can wait for them, with a bound. */
export class InFlight {
  readonly #running = new Set<Promise<void>>();
  #idle: (() => void)[] = [];

  get size(): number {
    return this.#running.size;
  }

  /**
   * Count `promise` as running until it settles. Its slot is freed before any reaction the caller
   * attaches to `promise` afterwards runs, so such a reaction sees the slot free.
   */
  track<T>(promise: Promise<T>): Promise<T> {
    const entry: Promise<void> = promise.then(
      () => this.#finish(entry),
      () => this.#finish(entry),
    );
    this.#running.add(entry);
    return promise;
  }

  #finish(entry: Promise<void>): void {
    this.#running.delete(entry);
    if (this.#running.size > 0) return;
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves `true` once nothing runs, or `false` after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.#running.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Resolves once fewer than `limit` run. */
  async belowLimit(limit: number): Promise<void> {
    while (this.#running.size >= limit) await Promise.race(this.#running);
  }
}
