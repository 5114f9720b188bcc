/** What became of one item of a batch request. */
export type ItemResult = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

export interface BatcherOptions<T> {
  /** Sends one batch; returns one result per item, in order, or throws for the whole batch. */
  readonly send: (items: readonly T[]) => Promise<readonly ItemResult[]>;
  /** Most items in one batch. */
  readonly maxItems: number;
  /** Most bytes in one batch (`size` of the items added up). */
  readonly maxBytes?: number;
  readonly size?: (item: T) => number;
  /**
   * Items with the same key are never in two batches at once, and keep their order: a FIFO message
   * group's messages must reach the broker in order.
   */
  readonly key?: (item: T) => string | undefined;
  /** Batches in flight at once. */
  readonly concurrency: number;
}

interface Entry<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Coalesces single calls made close together into batch requests (SNS PublishBatch, SQS
 * DeleteMessageBatch): calls of one tick share a batch, a full batch goes at once, and under load
 * batches fill while earlier ones are in flight. Each call still settles with its own item's result.
 */
export class Batcher<T> {
  readonly #o: BatcherOptions<T>;
  #queue: Entry<T>[] = [];
  readonly #busyKeys = new Set<string>();
  #inFlight = 0;
  #scheduled = false;
  #idle: (() => void)[] = [];

  constructor(options: BatcherOptions<T>) {
    this.#o = options;
  }

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#queue.length >= this.#o.maxItems) this.#pump();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#pump();
        });
      }
    });
  }

  /** Resolves once every item added so far has settled. */
  flush(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #take(): Entry<T>[] {
    const { maxItems, maxBytes = Number.POSITIVE_INFINITY, size = () => 0, key } = this.#o;
    const batch: Entry<T>[] = [];
    const skipped = new Set<string>();
    let bytes = 0;
    const rest: Entry<T>[] = [];
    for (const entry of this.#queue) {
      const k = key?.(entry.item);
      const blocked = k !== undefined && (this.#busyKeys.has(k) || skipped.has(k));
      const s = size(entry.item);
      if (blocked || batch.length >= maxItems || (batch.length > 0 && bytes + s > maxBytes)) {
        // Once one item of a key stays behind, the key's later items stay behind too.
        if (k !== undefined) skipped.add(k);
        rest.push(entry);
        continue;
      }
      batch.push(entry);
      bytes += s;
    }
    this.#queue = rest;
    return batch;
  }

  #pump(): void {
    while (this.#inFlight < this.#o.concurrency && this.#queue.length > 0) {
      const batch = this.#take();
      if (batch.length === 0) break;
      const keys = new Set<string>();
      for (const e of batch) {
        const k = this.#o.key?.(e.item);
        if (k !== undefined) keys.add(k);
      }
      for (const k of keys) this.#busyKeys.add(k);
      this.#inFlight += 1;
      void this.#send(batch).finally(() => {
        for (const k of keys) this.#busyKeys.delete(k);
        this.#inFlight -= 1;
        this.#pump();
        if (this.#queue.length === 0 && this.#inFlight === 0) {
          for (const resolve of this.#idle.splice(0)) resolve();
        }
      });
    }
  }

  async #send(batch: readonly Entry<T>[]): Promise<void> {
    let results: readonly ItemResult[];
    try {
      results = await this.#o.send(batch.map((e) => e.item));
    } catch (error) {
      for (const e of batch) e.reject(error);
      return;
    }
    batch.forEach((e, i) => {
      const r = results[i];
      if (r?.ok) e.resolve();
      else e.reject(r ? r.error : new Error('no result for batch item'));
    });
  }
}
