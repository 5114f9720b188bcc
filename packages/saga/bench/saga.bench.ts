/**
 * Saga runtime benchmark against PostgreSQL: seven-step sagas whose steps do no work, run by 4
 * workers with 64 instances in flight. Printed as JSON lines, each figure beside a ceiling measured
 * in the same run on the same database:
 *
 * - completed sagas per second, beside plain single-row INSERTs per second into a table of the
 *   events table's shape, on as many connections as the workers have together;
 * - the per-step overhead (from one step's `run` returning to the next one's starting, taken in
 *   the step functions with `performance.now()`), p50 and p99, with 64 in flight and for a saga
 *   running alone, beside the latency of one such INSERT under the same concurrency.
 *
 * The throughput line also prints the CPU time a saga cost (`cpuMicrosPerSaga`: this Node.js
 * process, and the PostgreSQL server when it runs on this machine) beside one ceiling INSERT's:
 * the steadier figure when the question is what a change saved.
 *
 * "4 workers" are 4 saga runtimes in this process, each with its own event store and pool (as 4
 * worker processes would have) and `workers: { concurrency: 16 }`; 64 lanes each start a saga on
 * their runtime and wait for it to end, so 64 instances are in flight at all times. A runtime
 * that starts an instance with a free slot runs it at once (no claim), which is how a worker
 * process that starts its own sagas runs them. Rounds alternate the sagas and the ceiling so both
 * see the same machine noise; each figure is the median of its rounds.
 *
 *   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/evident_test pnpm --filter @evident/saga bench
 *
 * BENCH_SECONDS (per round, default 3), BENCH_ROUNDS (default 5), BENCH_POOL (connections per
 * worker, default 4).
 */

import {
  type CpuPerOperation,
  ceilingInsert,
  ceilingRow,
  median,
  medianCpu,
  percentile,
  report,
  startCpuMeter,
  throughput,
} from '@evident/devkit/bench';
import { dropSchema } from '@evident/devkit/postgres';
import { createEnvelope } from '@evident/envelope';
import { createEventStore, type EventStore } from '@evident/eventstore';
import { createSagaRuntime, defineSaga, migrateSagas, type SagaRuntime } from '@evident/saga';
import pg from 'pg';

const url =
  process.env.POSTGRES_URL ??
  process.env.DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/evident_test';
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const workers = 4;
const perWorker = 16;
const inFlight = workers * perWorker;
const poolPerWorker = Number(process.env.BENCH_POOL ?? 4);
const connections = workers * poolPerWorker;
const schema = `bench_saga_${process.pid}`;
const steps = 7;

// Step timestamps of each running instance: [start1, end1, start2, end2, ...].
const marks = new Map<string, number[]>();
const mark = (sagaId: string) => {
  const m = marks.get(sagaId);
  if (m) m.push(performance.now());
  else marks.set(sagaId, [performance.now()]);
};
const stepNames = [
  'createPatientRecord',
  'verifyInsuranceEligibility',
  'checkPriorAuthorization',
  'openBillingAccount',
  'assignCareCoordinator',
  'sendWelcomePacket',
  'bookInitialConsultation',
] as const;
let saga = defineSaga<{ readonly patientId: string }>('bench-onboarding', { version: 1 });
for (const name of stepNames) {
  saga = saga.step(name, {
    run: ({ sagaId }) => {
      mark(sagaId); // start
      mark(sagaId); // end: the step does no work
      return null;
    },
    // Never runs (no step fails); recorded as the step's compensation intent, as in real sagas.
    compensate: { transition: `undo-${name}`, run: () => null },
  }) as unknown as typeof saga;
}

/** The gaps between one step's end and the next one's start of a finished instance, in ms. */
const takeGaps = (sagaId: string, into: number[]) => {
  const m = marks.get(sagaId);
  marks.delete(sagaId);
  if (!m || m.length !== steps * 2) throw new Error(`instance ${sagaId} ran ${m?.length} marks`);
  for (let k = 1; k < steps; k++) into.push(m[2 * k]! - m[2 * k - 1]!);
};

/**
 * Statements sent per pool, by prepared-statement name, to report statements per saga. node-postgres
 * runs `pool.query` through `pool.connect`: only the connects of transactions are counted as such.
 */
const statements = new Map<string, number>();
const count = (name: string) => statements.set(name, (statements.get(name) ?? 0) + 1);
const countStatements = (store: EventStore) => {
  const pool = store.database.pool!;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  let viaQuery = false;
  (pool as { query: unknown }).query = (config: unknown, ...rest: unknown[]) => {
    const c = config as { name?: string; text?: string } | string;
    const text = typeof c === 'string' ? c : (c.text ?? '');
    const name = typeof c === 'string' ? undefined : c.name;
    count(
      /insert into \S+\.events \(/.test(text)
        ? text.includes('inserted_1 as')
          ? 'append group (several appends in one statement)'
          : 'append'
        : (name ?? text.replace(/\s+/g, ' ').slice(0, 30)),
    );
    viaQuery = true;
    try {
      return query(config, ...rest);
    } finally {
      viaQuery = false;
    }
  };
  (pool as { connect: unknown }).connect = (...args: unknown[]) => {
    if (!viaQuery) count('transactions (pool.connect)');
    return connect(...args);
  };
};

const insertCeiling = ceilingInsert(`"${schema}".ceiling`);
const stepRow = (streamId: string, version: number) => {
  const e = createEnvelope({
    type: 'StepSucceeded',
    data: {
      step: 'verifyInsuranceEligibility',
      attempt: 1,
      result: null,
      next: [{ step: 'checkPriorAuthorization', attempt: 1, compensation: 'declared' }],
    },
    source: 'evident.saga',
    actor: { id: 'saga-runtime', role: 'system' },
  });
  return ceilingRow('saga', streamId, version, e);
};

async function main() {
  // The ceiling's own connections, as many as the workers have together.
  const pool = new pg.Pool({ connectionString: url, max: connections });
  // The workers' stores use group commit, as docs/sagas.md recommends for worker processes; the
  // same sagas on stores without it run in the same rounds, for the difference it makes.
  const storesOf = (groupCommit: boolean) =>
    Array.from({ length: workers }, () =>
      createEventStore({
        connectionString: url,
        schema,
        poolSize: poolPerWorker,
        groupCommit,
      }),
    );
  const stores = storesOf(true);
  const storesWithout = storesOf(false);
  let runtimes: SagaRuntime[] = [];
  let runtimesWithout: SagaRuntime[] = [];
  try {
    await stores[0]!.migrate();
    await migrateSagas(stores[0]!);
    await pool.query(`create table "${schema}".ceiling (like "${schema}".events including all)`);
    for (const store of stores) countStatements(store);
    const runtimesOf = (on: EventStore[]) =>
      on.map((store) =>
        createSagaRuntime({ store, sagas: [saga], workers: { concurrency: perWorker } }),
      );
    runtimes = runtimesOf(stores);
    runtimesWithout = runtimesOf(storesWithout);

    let next = 0;
    /** Start one saga on `runtime`, wait for its end, collect its step gaps. */
    const runOne = async (runtime: SagaRuntime, prefix: string, gaps: number[]) => {
      const id = `${prefix}-${next++}`;
      await runtime.start('bench-onboarding', { patientId: id }, { id });
      const end = await runtime.waitUntil(id, { timeout: '60s' });
      if (end.status !== 'completed') throw new Error(`instance ${id} ended ${end.status}`);
      takeGaps(id, gaps);
      return 1;
    };
    const sagaLoop = (prefix: string, ms: number, gaps: number[], on = runtimes) =>
      throughput(inFlight, ms, (lane) => runOne(on[lane % workers]!, prefix, gaps));
    const insertLatencies: number[] = [];
    const insertLoop = (prefix: string, lanes: number, ms: number) =>
      throughput(lanes, ms, async (lane, i) => {
        const t = performance.now();
        await pool.query(insertCeiling, stepRow(`${prefix}-${lane}`, i + 1));
        insertLatencies.push(performance.now() - t);
        return 1;
      });

    // Warm up connections, prepared statements, plan caches and the JIT.
    await insertLoop('warm', connections, 1000);
    await sagaLoop('warm', 2000, []);
    await sagaLoop('warm-without', 2000, [], runtimesWithout);
    statements.clear();

    const figures = {
      sagas: [] as number[],
      inserts: [] as number[],
      gapP50: [] as number[],
      gapP99: [] as number[],
      insertP50: [] as number[],
      insertP99: [] as number[],
      completed: 0,
      // CPU time per saga and per ceiling INSERT (this process; PostgreSQL when it runs here).
      sagaCpu: [] as CpuPerOperation[],
      insertCpu: [] as CpuPerOperation[],
      sagasWithout: [] as number[],
      sagaCpuWithout: [] as CpuPerOperation[],
    };
    for (let round = 0; round < rounds; round++) {
      insertLatencies.length = 0;
      const insertMeter = startCpuMeter();
      figures.inserts.push(await insertLoop(`c${round}`, connections, seconds * 1000));
      figures.insertCpu.push(insertMeter.perOperation(insertLatencies.length));
      const insertSorted = [...insertLatencies].sort((a, b) => a - b);
      figures.insertP50.push(percentile(insertSorted, 50));
      figures.insertP99.push(percentile(insertSorted, 99));
      const gaps: number[] = [];
      const before = next;
      const sagaMeter = startCpuMeter();
      figures.sagas.push(await sagaLoop(`r${round}`, seconds * 1000, gaps));
      figures.completed += next - before;
      figures.sagaCpu.push(sagaMeter.perOperation(next - before));
      gaps.sort((a, b) => a - b);
      figures.gapP50.push(percentile(gaps, 50));
      figures.gapP99.push(percentile(gaps, 99));
      const beforeWithout = next;
      const meterWithout = startCpuMeter();
      figures.sagasWithout.push(await sagaLoop(`w${round}`, seconds * 1000, [], runtimesWithout));
      figures.sagaCpuWithout.push(meterWithout.perOperation(next - beforeWithout));
    }
    const perSaga = [...statements.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => [name, Math.round((n / figures.completed) * 100) / 100]);
    const statementsPerSaga =
      [...statements.values()].reduce((a, b) => a + b, 0) / figures.completed;

    // A saga alone: one instance at a time on one worker, beside one INSERT at a time.
    const alone = {
      gapP50: [] as number[],
      gapP99: [] as number[],
      insertP50: [] as number[],
      insertP99: [] as number[],
    };
    const aloneCount = 100;
    for (let round = 0; round < rounds; round++) {
      const lone: number[] = [];
      for (let i = 0; i < aloneCount; i++) {
        const t = performance.now();
        await pool.query(insertCeiling, stepRow(`alone-${round}`, i + 1));
        lone.push(performance.now() - t);
      }
      lone.sort((a, b) => a - b);
      alone.insertP50.push(percentile(lone, 50));
      alone.insertP99.push(percentile(lone, 99));
      const gaps: number[] = [];
      for (let i = 0; i < aloneCount; i++) await runOne(runtimes[0]!, `a${round}`, gaps);
      gaps.sort((a, b) => a - b);
      alone.gapP50.push(percentile(gaps, 50));
      alone.gapP99.push(percentile(gaps, 99));
    }

    const ceilingName = `plain single-row INSERT into a table of the events table's shape, ${connections} connections`;
    report({
      bench: 'saga.sevenStep.throughput',
      description: `seven-step sagas, steps doing no work, ${workers} workers x ${perWorker} = ${inFlight} in flight, ${poolPerWorker} connections per worker`,
      value: median(figures.sagas),
      unit: 'sagas/s',
      ceiling: median(figures.inserts),
      ceilingName: `${ceilingName} (rows/s)`,
      target: '>= 400 sagas/s',
      stepsPerSecond: Math.round(median(figures.sagas) * steps),
      statementsPerSaga: Math.round(statementsPerSaga * 100) / 100,
      // The statements the sagas sent per second, beside the ceiling's: how close each statement
      // (an append with its work-table row, mostly) comes to a plain single-row INSERT.
      statementRatio:
        Math.round(((median(figures.sagas) * statementsPerSaga) / median(figures.inserts)) * 1000) /
        1000,
      statements: Object.fromEntries(perSaga),
      // Where a saga's time goes: CPU per saga beside CPU per ceiling INSERT.
      cpuMicrosPerSaga: medianCpu(figures.sagaCpu),
      ceilingCpuMicrosPerInsert: medianCpu(figures.insertCpu),
      rounds: figures.sagas.map(Math.round),
      ceilingRounds: figures.inserts.map(Math.round),
    });
    report({
      bench: 'saga.sevenStep.throughput.groupCommit',
      description: "the same sagas with their stores' group commit on, beside it off (same rounds)",
      value: median(figures.sagas),
      unit: 'sagas/s',
      ceiling: median(figures.sagasWithout),
      ceilingName: 'the same sagas on stores without group commit (sagas/s)',
      cpuMicrosPerSaga: medianCpu(figures.sagaCpu),
      ceilingCpuMicrosPerSaga: medianCpu(figures.sagaCpuWithout),
      rounds: figures.sagas.map(Math.round),
      ceilingRounds: figures.sagasWithout.map(Math.round),
    });
    report({
      bench: 'saga.sevenStep.stepOverhead.p50',
      description: `end of one step to the start of the next, ${inFlight} in flight (Little's law: about in-flight / steps per second)`,
      value: median(figures.gapP50),
      unit: 'ms',
      ceiling: median(figures.insertP50),
      ceilingName: `${ceilingName}, latency p50`,
      rounds: figures.gapP50.map((v) => Math.round(v * 100) / 100),
    });
    report({
      bench: 'saga.sevenStep.stepOverhead.p99',
      description: `end of one step to the start of the next, ${inFlight} in flight`,
      value: median(figures.gapP99),
      unit: 'ms',
      ceiling: median(figures.insertP99),
      ceilingName: `${ceilingName}, latency p99`,
      rounds: figures.gapP99.map((v) => Math.round(v * 100) / 100),
    });
    report({
      bench: 'saga.sevenStep.alone.stepOverhead.p50',
      description: 'end of one step to the start of the next, one saga at a time',
      value: median(alone.gapP50),
      unit: 'ms',
      ceiling: median(alone.insertP50),
      ceilingName: 'plain single-row INSERT, one at a time, latency p50',
      target: '< 1.5 ms',
      rounds: alone.gapP50.map((v) => Math.round(v * 100) / 100),
    });
    report({
      bench: 'saga.sevenStep.alone.stepOverhead.p99',
      description: 'end of one step to the start of the next, one saga at a time',
      value: median(alone.gapP99),
      unit: 'ms',
      ceiling: median(alone.insertP99),
      ceilingName: 'plain single-row INSERT, one at a time, latency p99',
      rounds: alone.gapP99.map((v) => Math.round(v * 100) / 100),
    });
  } finally {
    await Promise.all([...runtimes, ...runtimesWithout].map((r) => r.stop()));
    await Promise.all([...stores, ...storesWithout].map((s) => s.close()));
    await dropSchema(url, schema);
    await pool.end();
  }
}

await main();
