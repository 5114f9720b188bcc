/**
 * Event store benchmark against PostgreSQL. Every figure is printed beside a ceiling measured in
 * the same run on the same database: plain node-postgres INSERTs into a table of the same shape
 * (same columns, defaults and indexes), 16 connections one row per statement, and the same rows in
 * batches of 100. Every round measures each contender once, in a balanced order, so all see the
 * same machine noise; each figure is the median of its rounds. Append figures also print the CPU
 * time an event cost (`cpuMicrosPerEvent`: this Node.js process, and the PostgreSQL server when it
 * runs on this machine), the steadier figure when the question is which of two SQL shapes costs
 * the server less.
 *
 *   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/evident_test pnpm --filter @evident/eventstore bench
 */

import {
  balancedCycle,
  type CpuPerOperation,
  ceilingInsert,
  ceilingRow,
  inBalancedOrder,
  latencies,
  median,
  medianCpu,
  percentile,
  report,
  startCpuMeter,
  throughput,
} from '@evident/devkit/bench';
import { dropSchema } from '@evident/devkit/postgres';
import { createEnvelope, type Envelope } from '@evident/envelope';
import { createEventStore } from '@evident/eventstore';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import pg from 'pg';

const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
const seconds = Number(process.env.BENCH_SECONDS ?? 2);
const writers = 16;
const schema = `bench_${process.pid}`;

const payload = {
  claimId: 'c-000123',
  payerId: 'delta-dental-ca',
  patientControlNumber: 'PCN-88812',
  lines: [
    { code: 'D0120', fee: 65.0, tooth: null },
    { code: 'D1110', fee: 110.0, tooth: null },
    { code: 'D0274', fee: 85.5, tooth: null },
  ],
  totals: { billed: 260.5, currency: 'USD' },
};
const envelope = (): Envelope =>
  createEnvelope({
    type: 'ClaimSubmitted',
    data: payload,
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
    metadata: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  });

const row = (streamId: string, version: number, e: Envelope) =>
  ceilingRow('claim', streamId, version, e);
const insertSql = (rowsPerStatement: number) =>
  ceilingInsert(`"${schema}".ceiling`, rowsPerStatement);

async function main() {
  // The ceiling's own connections; the stores open theirs as users' stores do.
  // Every contender keeps its connections between its rounds (pg closes idle ones after 10 s by
  // default): reconnecting would cost a round the connections' start-up, and the server's CPU
  // figure would lose the CPU of every backend that exited.
  const pools: pg.Pool[] = [];
  const keptPool = () => {
    const p = new pg.Pool({ connectionString: url, max: writers, idleTimeoutMillis: 0 });
    pools.push(p);
    return p;
  };
  const pool = keptPool();
  const store = createEventStore({ pool: keptPool(), schema });
  await store.migrate();
  // The ceiling table: the events table's shape exactly (columns, identity, defaults, indexes),
  // without the store's logic around it.
  await pool.query(`create table "${schema}".ceiling (like "${schema}".events including all)`);

  // The store as shipped (hash chain on, no tenant), with the hash chain off, and as a tenant
  // (row-level security and the chain on). Each round measures all of them and the ceilings.
  const variants = {
    store,
    integrityOff: createEventStore({
      pool: keptPool(),
      schema,
      integrity: false,
    }),
    tenant: createEventStore({
      pool: keptPool(),
      schema,
      tenant: 'practice-9',
    }),
    groupCommit: createEventStore({ pool: keptPool(), schema, groupCommit: true }),
  };
  type Variant = keyof typeof variants;
  type Contender = Variant | 'ceiling';
  /** CPU per event of each contender's rounds: the steadier figure when comparing SQL shapes. */
  const cpu = {
    single: {} as Record<Contender, CpuPerOperation[]>,
    batch: {} as Record<Contender, CpuPerOperation[]>,
  };
  /** Run one round of `fn` (which returns events per second) and keep its CPU per event. */
  const metered = async (
    shape: keyof typeof cpu,
    who: Contender,
    fn: () => Promise<number>,
  ): Promise<number> => {
    const started = performance.now();
    const meter = startCpuMeter();
    const rate = await fn();
    const events = (rate * (performance.now() - started)) / 1000;
    const kept = cpu[shape][who] ?? [];
    kept.push(meter.perOperation(events));
    cpu[shape][who] = kept;
    return rate;
  };
  /** Median microseconds per event of a contender's rounds, Node.js and PostgreSQL apart. */
  const cpuOf = (shape: keyof typeof cpu, who: Contender) => medianCpu(cpu[shape][who] ?? []);
  const figures = {
    single: {
      ceiling: [] as number[],
      store: [] as number[],
      integrityOff: [] as number[],
      tenant: [] as number[],
      groupCommit: [] as number[],
    },
    batch: {
      ceiling: [] as number[],
      store: [] as number[],
      integrityOff: [] as number[],
      tenant: [] as number[],
      groupCommit: [] as number[],
    },
  };
  const appendLoop = (variant: Variant, prefix: string, size: number) => {
    const versions = new Array<number>(writers).fill(0);
    return throughput(writers, seconds * 1000, async (lane) => {
      const events = Array.from({ length: size }, envelope);
      const result = await variants[variant].append(
        { type: 'claim', id: `${prefix}-w${lane}` },
        events,
        {
          expectedVersion: versions[lane]!,
        },
      );
      versions[lane] = result.nextExpectedVersion;
      return size;
    });
  };
  const batchSql = insertSql(100);
  // Warm up every contender (connections, prepared statements, plan caches) before measuring.
  await throughput(writers, 1000, async (lane, i) => {
    await pool.query(insertSql(1), row(`warm-w${lane}`, i + 1, envelope()));
    return 1;
  });
  for (const variant of Object.keys(variants) as Variant[]) {
    await appendLoop(variant, `warm-${variant}`, 1);
  }
  // Each round measures every contender once, in a balanced order (see inBalancedOrder): over the
  // rounds each contender follows every other equally often, so none always pays for the same
  // neighbour's leftover work (in a fixed order the store always followed the ceiling's burst).
  const contenders = ['ceiling', ...Object.keys(variants)] as Contender[];
  // One whole cycle of the balanced order (five contenders: ten rounds), unless asked otherwise.
  const rounds = Number(process.env.BENCH_ROUNDS ?? balancedCycle(contenders.length));
  for (let round = 0; round < rounds; round++) {
    for (const who of inBalancedOrder(contenders, round)) {
      figures.single[who].push(
        await metered('single', who, () =>
          who === 'ceiling'
            ? throughput(writers, seconds * 1000, async (lane, i) => {
                await pool.query(insertSql(1), row(`c${round}-w${lane}`, i + 1, envelope()));
                return 1;
              })
            : appendLoop(who, `s${round}-${who}`, 1),
        ),
      );
    }
    for (const who of inBalancedOrder(contenders, round)) {
      figures.batch[who].push(
        await metered('batch', who, () =>
          who === 'ceiling'
            ? throughput(writers, seconds * 1000, async (lane, i) => {
                const params = Array.from({ length: 100 }, (_, k) =>
                  row(`cb${round}-w${lane}`, i * 100 + k + 1, envelope()),
                ).flat();
                await pool.query(batchSql, params);
                return 100;
              })
            : appendLoop(who, `b${round}-${who}`, 100),
        ),
      );
    }
  }
  const single = figures.single;
  const batch = figures.batch;
  report({
    bench: 'eventstore.append.single',
    description: `single-event appends with expected-version checks and the hash chain, ${writers} writers`,
    value: median(single.store),
    unit: 'events/s',
    ceiling: median(single.ceiling),
    ceilingName: `plain INSERT, one row per statement, ${writers} connections`,
    target: '>= 0.8 x ceiling',
    rounds: single.store,
    ceilingRounds: single.ceiling,
    cpuMicrosPerEvent: cpuOf('single', 'store'),
    ceilingCpuMicrosPerEvent: cpuOf('single', 'ceiling'),
  });
  report({
    bench: 'eventstore.append.batch100',
    description: `100-event appends with the hash chain, ${writers} writers`,
    value: median(batch.store),
    unit: 'events/s',
    ceiling: median(batch.ceiling),
    ceilingName: `plain INSERT of 100 rows per statement, ${writers} connections`,
    target: '>= 0.7 x ceiling',
    rounds: batch.store,
    ceilingRounds: batch.ceiling,
    cpuMicrosPerEvent: cpuOf('batch', 'store'),
    ceilingCpuMicrosPerEvent: cpuOf('batch', 'ceiling'),
  });
  report({
    bench: 'eventstore.append.single.groupCommit',
    description: `the same single-event appends with group commit on (defaults), ${writers} writers`,
    value: median(single.groupCommit),
    unit: 'events/s',
    ceiling: median(single.ceiling),
    ceilingName: `plain INSERT, one row per statement, ${writers} connections`,
    rounds: single.groupCommit,
    ceilingRounds: single.ceiling,
    cpuMicrosPerEvent: cpuOf('single', 'groupCommit'),
    ceilingCpuMicrosPerEvent: cpuOf('single', 'ceiling'),
  });
  report({
    bench: 'eventstore.append.batch100.groupCommit',
    description: `the same 100-event appends with group commit on (defaults), ${writers} writers`,
    value: median(batch.groupCommit),
    unit: 'events/s',
    ceiling: median(batch.store),
    ceilingName: 'eventstore.append.batch100 (group commit off)',
    rounds: batch.groupCommit,
    ceilingRounds: batch.store,
    cpuMicrosPerEvent: cpuOf('batch', 'groupCommit'),
    ceilingCpuMicrosPerEvent: cpuOf('batch', 'store'),
  });
  for (const [shape, f] of [
    ['single', single],
    ['batch100', batch],
  ] as const) {
    const kind = shape === 'single' ? 'single' : 'batch';
    report({
      bench: `eventstore.append.${shape}.integrityOff`,
      description: 'the same appends with the hash chain off: the baseline for the figures below',
      value: median(f.integrityOff),
      unit: 'events/s',
      ceiling: median(f.ceiling),
      ceilingName: `plain INSERT (see eventstore.append.${shape})`,
      rounds: f.integrityOff,
      ceilingRounds: f.ceiling,
      cpuMicrosPerEvent: cpuOf(kind, 'integrityOff'),
    });
    report({
      bench: `eventstore.append.${shape}.hashChain`,
      description: 'hash chain on (the default) beside it off, same run',
      value: median(f.store),
      unit: 'events/s',
      ceiling: median(f.integrityOff),
      ceilingName: `eventstore.append.${shape}.integrityOff`,
      target: '>= 0.9 x with it off',
      rounds: f.store,
      ceilingRounds: f.integrityOff,
      cpuMicrosPerEvent: cpuOf(kind, 'store'),
      ceilingCpuMicrosPerEvent: cpuOf(kind, 'integrityOff'),
    });
    // Tenancy on its own: the tenant store beside the store as shipped, both with the chain.
    report({
      bench: `eventstore.append.${shape}.tenancy`,
      description: 'as a tenant (row-level security) beside no tenant, both with the hash chain',
      value: median(f.tenant),
      unit: 'events/s',
      ceiling: median(f.store),
      ceilingName: `eventstore.append.${shape}`,
      target: '>= 0.9 x without',
      rounds: f.tenant,
      ceilingRounds: f.store,
      cpuMicrosPerEvent: cpuOf(kind, 'tenant'),
      ceilingCpuMicrosPerEvent: cpuOf(kind, 'store'),
    });
    report({
      bench: `eventstore.append.${shape}.tenant`,
      description: 'as a tenant with the hash chain, beside neither (both costs together)',
      value: median(f.tenant),
      unit: 'events/s',
      ceiling: median(f.integrityOff),
      ceilingName: `eventstore.append.${shape}.integrityOff`,
      rounds: f.tenant,
      ceilingRounds: f.integrityOff,
    });
  }
  // Tracing: the same single-event appends with an OpenTelemetry SDK registered (spans recorded,
  // exported to nowhere) and without, alternating rounds.
  const tracing = { on: [] as number[], off: [] as number[] };
  const provider = new BasicTracerProvider({
    spanProcessors: [
      new BatchSpanProcessor({
        export: (_spans, done) => done({ code: 0 }),
        shutdown: async () => {},
      }),
    ],
  });
  for (let round = 0; round < rounds; round++) {
    trace.disable();
    tracing.off.push(await appendLoop('store', `t${round}-off`, 1));
    trace.setGlobalTracerProvider(provider);
    tracing.on.push(await appendLoop('store', `t${round}-on`, 1));
  }
  trace.disable();
  await provider.shutdown();
  report({
    bench: 'eventstore.append.single.tracing',
    description:
      'single-event appends with an OpenTelemetry SDK registered (no-op exporter), beside none',
    value: median(tracing.on),
    unit: 'events/s',
    ceiling: median(tracing.off),
    ceilingName: 'the same appends with no SDK registered',
    target: '>= 0.9 x without',
    rounds: tracing.on,
    ceilingRounds: tracing.off,
  });

  // Reads: one 1,000-event stream, read whole; and the same stream loaded as an aggregate that has
  // a snapshot (written every 50 events, so at most 49 events are folded after it).
  const long = { type: 'claim', id: 'long-1000' };
  for (let i = 0; i < 10; i++) {
    await store.append(long, Array.from({ length: 100 }, envelope), { expectedVersion: i * 100 });
  }
  await store.append(long, Array.from({ length: 1 }, envelope), { expectedVersion: 1000 });
  const read = await latencies(
    1000,
    50,
    async () => await store.readStream(long, { toVersion: 1000 }),
  );
  const ceilingRead = await latencies(1000, 50, () =>
    pool.query(
      // A stream the batch ceiling wrote (about 5,000 rows per lane), by its key as the store reads.
      `select * from "${schema}".ceiling where stream_type = 'claim' and stream_id = 'cb1-w0'
       order by stream_version limit 1000`,
    ),
  );
  report({
    bench: 'eventstore.readStream.1000.p50',
    value: percentile(read, 50),
    unit: 'ms',
    ceiling: percentile(ceilingRead, 50),
    ceilingName: 'plain SELECT of 1,000 rows of the same shape',
  });
  report({
    bench: 'eventstore.readStream.1000.p99',
    value: percentile(read, 99),
    unit: 'ms',
    ceiling: percentile(ceilingRead, 99),
    ceilingName: 'plain SELECT of 1,000 rows of the same shape',
    target: '< 10 ms',
  });
  const aggregateOptions = {
    initialState: () => ({ lines: 0, billed: 0 }),
    evolve: (s: { lines: number; billed: number }, e: { data: unknown }) => ({
      lines: s.lines + (e.data as typeof payload).lines.length,
      billed: s.billed + (e.data as typeof payload).totals.billed,
    }),
    snapshot: { schemaVersion: 1, every: 50 },
  };
  await store.aggregate(long, aggregateOptions);
  const load = await latencies(2000, 100, () => store.aggregate(long, aggregateOptions));
  report({
    bench: 'eventstore.aggregate.1000.snapshot.p50',
    value: percentile(load, 50),
    unit: 'ms',
  });
  report({
    bench: 'eventstore.aggregate.1000.snapshot.p99',
    value: percentile(load, 99),
    unit: 'ms',
    target: '< 2 ms',
  });

  await Promise.all(Object.values(variants).map((v) => v.close()));
  await Promise.all(pools.map((p) => p.end()));
  await dropSchema(url, schema);
}

await main();
