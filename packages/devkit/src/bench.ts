/**
 * Helpers the benchmarks of every package share: timed rounds, percentiles, and one JSON line per
 * figure with the ceiling it is measured against (see CONTRIBUTING.md, "Performance"). Printing
 * those lines to stdout is what a benchmark is for: this is never library code.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

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

/** How many rounds it takes `inBalancedOrder` to pair every contender with every other equally. */
export const balancedCycle = (contenders: number) =>
  contenders % 2 === 0 ? contenders : 2 * contenders;

/**
 * `items` in the order round `round` measures them, so that over a whole cycle of rounds each
 * contender runs right after every other one equally often: a contender pays for the work its
 * predecessor leaves behind (dirty pages, WAL to flush, autovacuum), and a fixed neighbour makes
 * that a bias. The rows of a Williams design: the first round runs 0, 1, n−1, 2, n−2, …, each
 * later round adds one to every index (mod n); for an odd n the next n rounds run those orders
 * reversed. A cycle is n rounds for an even n, 2n for an odd n.
 *
 * (This replaced a plain rotation — round r starting at item r — which keeps every contender's
 * neighbours: in the append benchmark the store followed the ceiling's burst of inserts in four
 * rounds of five, and the store with the hash chain off always followed the store with it on.)
 */
export function inBalancedOrder<T>(items: readonly T[], round: number): T[] {
  const n = items.length;
  const base: number[] = [];
  for (let low = 0, high = n - 1, k = 0; k < n; k++) {
    base.push(k % 2 === 0 ? low++ : high--);
  }
  const cycle = balancedCycle(n);
  const r = ((round % cycle) + cycle) % cycle;
  const order = base.map((index) => items[(index + r) % n]!);
  return r < n ? order : order.reverse();
}

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
   * lands on one pair instead of moving one median against the other. `ratioQuartiles` is printed
   * beside it: the middle half of those ratios.
   */
  readonly rounds?: readonly number[];
  readonly ceilingRounds?: readonly number[];
  readonly [extra: string]: unknown;
}

/** `values[i] / ceilings[i]`, sorted: the ratios of rounds measured back to back. */
function ownRatios(values: readonly number[], ceilings: readonly number[]): number[] {
  if (values.length === 0 || values.length !== ceilings.length) {
    throw new Error('paired rounds need as many ceiling rounds as rounds');
  }
  return values.map((v, i) => v / ceilings[i]!).sort((a, b) => a - b);
}

/** Median of `values[i] / ceilings[i]`: the ratio of rounds measured back to back. */
export function pairedRatio(values: readonly number[], ceilings: readonly number[]): number {
  return percentile(ownRatios(values, ceilings), 50);
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
      const ratios = ownRatios(figure.rounds, figure.ceilingRounds);
      out.ratio = three(percentile(ratios, 50));
      out.ratioOfMedians = three(ofMedians);
      // The middle half of the rounds' own ratios: how far to trust `ratio` near a target.
      out.ratioQuartiles = [three(percentile(ratios, 25)), three(percentile(ratios, 75))];
    } else {
      out.ratio = three(ofMedians);
    }
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** CPU time an operation cost, in microseconds (see {@link startCpuMeter}). */
export interface CpuPerOperation {
  /** This Node.js process: user and system time, the driver's socket writes included. */
  readonly node: number;
  /** Every `postgres` process of this machine, when the server runs here (Linux); else absent. */
  readonly postgres?: number;
  /** The RabbitMQ server (Erlang's `beam.smp`), when it runs here (Linux); else absent. */
  readonly rabbitmq?: number;
}

/** The servers whose CPU time a meter counts, by process name (`comm` in /proc/<pid>/stat). */
const servers = {
  postgres: (comm: string) => comm === 'postgres' || comm.startsWith('postgres:'),
  rabbitmq: (comm: string) => comm === 'beam.smp',
} as const;
export type Server = keyof typeof servers;
const serverNames = Object.keys(servers) as Server[];

export interface CpuMeterOptions {
  /** The servers on this machine to count beside this process. @defaultValue ['postgres'] */
  readonly servers?: readonly Server[];
  /** Where /proc is (tests give a fake one). @defaultValue '/proc' */
  readonly procDirectory?: string;
}

/**
 * Start counting CPU time; `perOperation(n)` divides what was spent since by `n` operations.
 *
 * Throughput on a shared two-core machine moves by ±5% from one round to the next; CPU time per
 * operation moves by about ±2%, because it does not count the time a contender spent waiting for
 * a core. It is the figure to compare when a change is meant to make a statement cheaper (which
 * of two SQL shapes costs the server less), beside the throughput that says whether it mattered.
 * The servers' figures say which process a path's cost lands in: on two cores, CPU one server
 * spends is CPU the others cannot.
 */
export function startCpuMeter({
  servers: counted = ['postgres'],
  procDirectory = '/proc',
}: CpuMeterOptions = {}): {
  perOperation(operations: number): CpuPerOperation;
} {
  const node = process.cpuUsage();
  const before = serverCpuMicros(procDirectory);
  return {
    perOperation(operations) {
      const spent = process.cpuUsage(node);
      const now = serverCpuMicros(procDirectory);
      const out: { -readonly [K in keyof CpuPerOperation]: CpuPerOperation[K] } = {
        node: (spent.user + spent.system) / operations,
      };
      for (const server of counted) {
        const from = before[server];
        const to = now[server];
        if (from !== undefined && to !== undefined) out[server] = (to - from) / operations;
      }
      return out;
    },
  };
}

/** The median of rounds' CPU per operation, each process apart, to 0.1 µs. */
export function medianCpu(rounds: readonly CpuPerOperation[]): CpuPerOperation {
  const tenth = (n: number) => Math.round(n * 10) / 10;
  const out: { -readonly [K in keyof CpuPerOperation]: CpuPerOperation[K] } = {
    node: tenth(median(rounds.map((c) => c.node))),
  };
  for (const server of serverNames) {
    const seen = rounds.flatMap((c) => (c[server] === undefined ? [] : [c[server]]));
    if (seen.length > 0) out[server] = tenth(median(seen));
  }
  return out;
}

/** `getconf CLK_TCK`: the unit of /proc/<pid>/stat's CPU times; 100 on every Linux we know. */
const clockTicksPerSecond = 100;

/**
 * User plus system CPU time of each server's processes (PostgreSQL: the server and its backends,
 * checkpointer, WAL writer, ...; RabbitMQ: its Erlang VM), in microseconds, from one pass over
 * /proc; a server with no process (or no /proc) is absent. Processes that exited in between are
 * lost: only a long-lived server's figures are meaningful.
 */
export function serverCpuMicros(procDirectory = '/proc'): { [S in Server]?: number } {
  let entries: string[];
  try {
    entries = readdirSync(procDirectory);
  } catch {
    return {};
  }
  const ticks: { [S in Server]?: number } = {};
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(join(procDirectory, entry, 'stat'), 'utf8');
    } catch {
      continue; // exited since the listing
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; it ends at the last ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const server = serverNames.find((s) => servers[s](comm));
    if (server === undefined) continue;
    const fields = stat.slice(close + 2).split(' ');
    // Fields 14 and 15 of stat(5), utime and stime, are the 12th and 13th after the comm.
    ticks[server] = (ticks[server] ?? 0) + Number(fields[11]) + Number(fields[12]);
  }
  const micros: { [S in Server]?: number } = {};
  for (const server of Object.keys(ticks) as Server[]) {
    micros[server] = (ticks[server]! * 1e6) / clockTicksPerSecond;
  }
  return micros;
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
