/**
 * Durable state machine benchmark against PostgreSQL. Every throughput figure is printed beside
 * the event store's own single-event append rate (expected-version checks, 16 concurrent writers)
 * measured in the same run on the same database; every round measures each once, in a balanced
 * order (over the rounds each contender follows every other equally often), and a ratio is the
 * median of the rounds' own ratios (each figure the median of its rounds).
 *
 *   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/evident_test pnpm --filter @evident/statemachines bench
 */
import { randomBytes } from 'node:crypto';
import {
  balancedCycle,
  inBalancedOrder,
  latencies,
  median,
  percentile,
  report,
  throughput,
} from '@evident/devkit/bench';
import { dropSchema } from '@evident/devkit/postgres';
import { createEnvelope } from '@evident/envelope';
import { createEventStore } from '@evident/eventstore';
import { createDurableMachine, migrateStateMachines } from '@evident/statemachines';
import { assign, setup } from 'xstate';

const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const lanes = 16;
const schema = `bench_sm_${process.pid}`;
const actor = { id: 'u-17', role: 'billing-clerk' };

// The event store benchmark's own event (packages/eventstore/bench/append.bench.ts), so the
// reference is the store's single-append figure, not a smaller event chosen to flatter.
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
const metadata = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };

/**
 * A claim that is put on hold and released: a guard on every step, context that changes, and
 * optionally an action on every hold (a job written by the trigger and run after commit).
 */
const holdMachine = (withAction: boolean) =>
  setup({
    types: {
      context: {} as { holds: number; payerId: string },
      events: {} as { type: 'HOLD'; reason: string } | { type: 'RELEASE' },
    },
    guards: { underLimit: ({ context }) => context.holds < 1_000_000_000 },
    actions: { notifyBilling: () => {} },
  }).createMachine({
    id: 'claimHold',
    context: { holds: 0, payerId: 'delta-dental-ca' },
    initial: 'active',
    states: {
      active: {
        on: {
          HOLD: {
            guard: 'underLimit',
            target: 'onHold',
            actions: assign({ holds: ({ context }) => context.holds + 1 }),
          },
        },
      },
      onHold: { entry: withAction ? 'notifyBilling' : [], on: { RELEASE: 'active' } },
    },
  });

const store = createEventStore({ connectionString: url, schema, poolSize: lanes });
try {
  await store.migrate();
  await migrateStateMachines(store);

  const plain = createDurableMachine(holdMachine(false), { store, streamType: 'claim-hold' });
  const withAction = createDurableMachine(holdMachine(true), {
    store,
    streamType: 'claim-hold-job',
    actions: { notifyBilling: () => {} },
  });
  const cold = createDurableMachine(holdMachine(false), {
    store,
    streamType: 'claim-hold-cold',
    cacheSize: 0,
  });

  const id = () => `c-${randomBytes(6).toString('hex')}`;
  const storeVersions = new Map<string, number>();
  const storeStreams = Array.from({ length: lanes }, () => id());
  const appendOne = async (lane: number) => {
    const streamId = storeStreams[lane]!;
    const version = storeVersions.get(streamId) ?? 0;
    const e = createEnvelope({
      type: 'ClaimSubmitted',
      data: payload,
      source: 'billing-service',
      actor,
      metadata,
    });
    const r = await store.append({ type: 'claim', id: streamId }, [e], {
      expectedVersion: version === 0 ? 'no_stream' : version,
    });
    storeVersions.set(streamId, r.nextExpectedVersion);
    return 1;
  };
  const stepper = (durable: typeof plain) => {
    const entities = Array.from({ length: lanes }, () => id());
    const held = new Map<string, boolean>();
    return async (lane: number) => {
      const entityId = entities[lane]!;
      const onHold = held.get(entityId) ?? false;
      await durable.send(
        entityId,
        onHold ? { type: 'RELEASE' } : { type: 'HOLD', reason: 'missing-x-ray' },
        { actor, metadata },
      );
      held.set(entityId, !onHold);
      return 1;
    };
  };
  const plainStep = stepper(plain);
  const actionStep = stepper(withAction);
  const coldStep = stepper(cold);

  // Warm up pools, prepared statements and the JIT.
  await throughput(lanes, 500, appendOne);
  await throughput(lanes, 500, plainStep);
  await throughput(lanes, 300, actionStep);
  await throughput(lanes, 300, coldStep);

  const figures = {
    append: [] as number[],
    plain: [] as number[],
    action: [] as number[],
    cold: [] as number[],
  };
  // Each round measures every contender once, in a balanced order (see inBalancedOrder: in a
  // fixed order one contender always follows the same neighbour's leftover work).
  const contenders = [
    ['append', appendOne],
    ['plain', plainStep],
    ['action', actionStep],
    ['cold', coldStep],
  ] as const;
  // Two whole cycles of the balanced order (four contenders: eight rounds), unless asked otherwise.
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2 * balancedCycle(contenders.length));
  for (let r = 0; r < rounds; r++) {
    for (const [name, step] of inBalancedOrder(contenders, r)) {
      figures[name].push(await throughput(lanes, seconds * 1000, step));
    }
  }
  const ceiling = median(figures.append);
  report({
    bench: 'store single-event appends, 16 writers (reference)',
    value: ceiling,
    unit: 'events/s',
  });
  report({
    bench: 'durable transitions, 16 entities in parallel',
    value: median(figures.plain),
    unit: 'transitions/s',
    ceiling,
    rounds: figures.plain,
    ceilingRounds: figures.append,
    ceilingName: 'store single-event appends, same run',
    target: '>= 0.7',
  });
  report({
    bench: 'durable transitions, no cache (read + append per step)',
    value: median(figures.cold),
    unit: 'transitions/s',
    ceiling,
    rounds: figures.cold,
    ceilingRounds: figures.append,
    ceilingName: 'store single-event appends, same run',
  });
  report({
    bench: 'durable transitions, an action on every other one (job by trigger, run inline)',
    value: median(figures.action),
    unit: 'transitions/s',
    ceiling,
    rounds: figures.action,
    ceilingRounds: figures.append,
    ceilingName: 'store single-event appends, same run',
  });

  // Time travel on an entity with 200 transitions.
  const travelled = id();
  const instants: string[] = [];
  for (let i = 0; i < 200; i++) {
    await plain.send(travelled, i % 2 === 0 ? { type: 'HOLD', reason: 'r' } : { type: 'RELEASE' }, {
      actor,
    });
  }
  for (const h of await plain.history(travelled)) instants.push(h.recordedAt);
  let n = 0;
  const stateAt = await latencies(2000, 200, () =>
    plain.stateAt(travelled, instants[(n++ * 37) % instants.length]!),
  );
  report({
    bench: 'stateAt on an entity with 200 transitions, p50',
    value: percentile(stateAt, 50),
    unit: 'ms',
  });
  report({
    bench: 'stateAt on an entity with 200 transitions, p99',
    value: percentile(stateAt, 99),
    unit: 'ms',
    target: '< 5',
  });
  const history = await latencies(200, 20, () => plain.history(travelled));
  report({ bench: 'history of 200 transitions, p50', value: percentile(history, 50), unit: 'ms' });
  const load = await latencies(2000, 200, () => cold.load(travelled));
  report({ bench: 'load (latest state, no cache), p99', value: percentile(load, 99), unit: 'ms' });
} finally {
  await store.close();
  await dropSchema(url, schema);
}
