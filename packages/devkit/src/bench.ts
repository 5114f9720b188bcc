/**
 * Helpers the benchmarks of every package share: timed rounds, percentiles, and one JSON line per
 * figure with the ceiling it is measured against (see CONTRIBUTING.md, "Performance"). Printing
 * those lines to stdout is what a benchmark is for: this is never library code.
 */

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

export const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

/** Run `worker` on `concurrency` lanes for `ms`; returns operations completed per second. */
export async function throughput(
  concurrency: number,
  ms: number,
  worker: (lane: number, iteration: number) => Promise<number>,
): Promise<number> {
  const deadline = performance.now() + ms;
  const started = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, lane) => {
      for (let i = 0; performance.now() < deadline; i++) {
        // Not `done += await worker()`: that reads `done` before the await and loses the other
        // lanes' updates.
        const n = await worker(lane, i);
        done += n;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

/** Time `fn` `count` times after `warmup` runs; returns sorted durations in ms. */
export async function latencies(count: number, warmup: number, fn: () => Promise<unknown>) {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

export interface Figure {
  readonly bench: string;
  readonly value: number;
  readonly unit: string;
  readonly ceiling?: number;
  readonly ceilingName?: string;
  readonly target?: string;
  /**
   * The figure's own rounds and its ceiling's, measured in pairs (round i of each back to back).
   * With both, `ratio` is the median of the rounds' own ratios: a burst of machine noise then
   * lands on one pair instead of moving one median against the other.
   */
  readonly rounds?: readonly number[];
  readonly ceilingRounds?: readonly number[];
  readonly [extra: string]: unknown;
}

/** Median of `values[i] / ceilings[i]`: the ratio of rounds measured back to back. */
export function pairedRatio(values: readonly number[], ceilings: readonly number[]): number {
  if (values.length === 0 || values.length !== ceilings.length) {
    throw new Error('paired rounds need as many ceiling rounds as rounds');
  }
  return median(values.map((v, i) => v / ceilings[i]!));
}

export function report(figure: Figure): void {
  const round = (n: number) => (Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 1000) / 1000);
  const three = (n: number) => Math.round(n * 1000) / 1000;
  const out: Record<string, unknown> = { ...figure, value: round(figure.value) };
  if (figure.rounds) out.rounds = figure.rounds.map(round);
  if (figure.ceilingRounds) out.ceilingRounds = figure.ceilingRounds.map(round);
  if (figure.ceiling !== undefined) {
    out.ceiling = round(figure.ceiling);
    const ofMedians = figure.value / figure.ceiling;
    if (figure.rounds && figure.ceilingRounds) {
      out.ratio = three(pairedRatio(figure.rounds, figure.ceilingRounds));
      out.ratioOfMedians = three(ofMedians);
    } else {
      out.ratio = three(ofMedians);
    }
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** Columns an append writes into the events table, in the order of {@link ceilingRow}. */
const eventColumns = [
  'stream_type',
  'stream_id',
  'stream_version',
  'event_id',
  'event_type',
  'schema_version',
  'data',
  'metadata',
  'correlation_id',
  'causation_id',
  'source',
  'actor_id',
  'actor_role',
  'tenant_id',
  'occurred_at',
] as const;

/**
 * The INSERT ceiling of the append benchmarks: `rows` rows per statement into `table`, a table
 * made `like <schema>.events including all` (the events table's shape exactly, without the store's
 * logic around it).
 */
export function ceilingInsert(table: string, rows = 1): string {
  const values = Array.from(
    { length: rows },
    (_, r) => `(${eventColumns.map((_, c) => `$${r * eventColumns.length + c + 1}`).join(', ')})`,
  ).join(', ');
  return `insert into ${table} (${eventColumns.join(', ')}) values ${values}`;
}

/** The parameters of one ceiling row: the event an append of `envelope` would write. */
export function ceilingRow(
  streamType: string,
  streamId: string,
  version: number,
  e: {
    readonly id: string;
    readonly type: string;
    readonly schemaVersion: number;
    readonly data: unknown;
    readonly metadata: unknown;
    readonly correlationId: string;
    readonly causationId: string;
    readonly source: string;
    readonly actor: { readonly id: string; readonly role: string };
    readonly tenantId?: string | undefined;
    readonly occurredAt: string;
  },
): unknown[] {
  return [
    streamType,
    streamId,
    version,
    e.id,
    e.type,
    e.schemaVersion,
    JSON.stringify(e.data),
    JSON.stringify(e.metadata),
    e.correlationId,
    e.causationId,
    e.source,
    e.actor.id,
    e.actor.role,
    e.tenantId ?? null,
    e.occurredAt,
  ];
}
