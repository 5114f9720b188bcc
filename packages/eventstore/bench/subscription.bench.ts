/**
 * Read-side benchmark against PostgreSQL: end-to-end lag from append to handler at a sustained
 * rate with 4 writers, with the count of skipped and duplicated events; and projection rebuild
 * speed beside plain readAll over the same events in the same run.
 *
 *   pnpm --filter @evident/eventstore bench      (BENCH_LAG_SECONDS, BENCH_RATE to change the load)
 */

import { percentile, report } from '@evident/devkit/bench';
import { dropSchema } from '@evident/devkit/postgres';
import { createEnvelope } from '@evident/envelope';
import { createEventStore, defineProjection, runProjection, startOfLog } from '@evident/eventstore';
import pg from 'pg';

const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
const seconds = Number(process.env.BENCH_LAG_SECONDS ?? 30);
const rate = Number(process.env.BENCH_RATE ?? 800);
const writers = 4;
const schema = `bench_sub_${process.pid}`;

const envelope = (sentAt: number) =>
  createEnvelope({
    type: 'ClaimStatusChanged',
    data: { status: 'pending', payer: 'delta-dental-ca', sentAt },
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
  });

async function lag(store: ReturnType<typeof createEventStore>) {
  const lags: number[] = [];
  const handled = new Map<string, number>();
  const sub = store.subscribe({
    name: 'bench-lag',
    from: 'now',
    handler: (e) => {
      handled.set(e.id, (handled.get(e.id) ?? 0) + 1);
      lags.push(Date.now() - (e.data as { sentAt: number }).sentAt);
    },
  });
  while (sub.state !== 'active') await new Promise((r) => setTimeout(r, 10));
  const appended: string[] = [];
  const perWriterInterval = 1000 / (rate / writers);
  const deadline = Date.now() + seconds * 1000;
  let last = '';
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      let next = Date.now();
      for (let i = 0; Date.now() < deadline; i++) {
        const e = envelope(Date.now());
        const result = await store.append({ type: 'claim', id: `lag-w${w}-${i % 500}` }, [e], {
          expectedVersion: 'any',
        });
        appended.push(e.id);
        if (result.checkpoint! > last) last = result.checkpoint!;
        next += perWriterInterval;
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }),
  );
  await sub.waitFor(last as never, { timeoutMs: 60_000 });
  await sub.stop();
  const skipped = appended.filter((id) => !handled.has(id)).length;
  const duplicated = [...handled.values()].reduce((n, c) => n + c - 1, 0);
  const sorted = [...lags].sort((a, b) => a - b);
  const achieved = appended.length / seconds;
  report({
    bench: 'eventstore.subscription.lag.p50',
    value: percentile(sorted, 50),
    unit: 'ms',
    rate: Math.round(achieved),
    writers,
    seconds,
  });
  report({
    bench: 'eventstore.subscription.lag.p99',
    value: percentile(sorted, 99),
    unit: 'ms',
    target: '< 250 ms',
    rate: Math.round(achieved),
    writers,
    seconds,
  });
  report({
    bench: 'eventstore.subscription.skipped',
    value: skipped,
    unit: 'events',
    target: '0',
    appended: appended.length,
  });
  report({
    bench: 'eventstore.subscription.duplicated',
    value: duplicated,
    unit: 'events',
    target: '0',
    appended: appended.length,
  });
}

async function rebuild(store: ReturnType<typeof createEventStore>) {
  const total = 20_000;
  for (let i = 0; i < total / 500; i++) {
    const batch = Array.from({ length: 500 }, (_, k) =>
      createEnvelope({
        type: 'ClaimSubmitted',
        data: { payer: `payer-${k % 20}`, billed: 100 + (k % 7) },
        source: 'billing-service',
        actor: { id: 'u-17', role: 'billing-clerk' },
      }),
    );
    await store.append({ type: 'rebuild', id: `r-${i}` }, batch, { expectedVersion: 'no_stream' });
  }
  let t = performance.now();
  let read = 0;
  let after = startOfLog;
  for (;;) {
    const page = await store.readAll({ after, limit: 1000, types: ['ClaimSubmitted'] });
    read += page.events.length;
    after = page.checkpoint;
    if (page.caughtUp) break;
  }
  const readAllRate = read / ((performance.now() - t) / 1000);
  const projection = defineProjection({
    name: 'bench_totals',
    version: 1,
    tables: {
      by_payer:
        'create table {{table}} (payer text primary key, claims int not null, billed numeric not null)',
    },
    handlers: {
      ClaimSubmitted: async (e, { tx, table }) => {
        const d = e.data as { payer: string; billed: number };
        await tx.query(
          `insert into ${table('by_payer')} as t values ($1, 1, $2)
           on conflict (payer) do update set claims = t.claims + 1, billed = t.billed + excluded.billed`,
          [d.payer, d.billed],
        );
      },
    },
  });
  t = performance.now();
  const runner = runProjection(store, projection, { batchSize: 500 });
  await runner.live({ timeoutMs: 600_000 });
  const rebuildRate = read / ((performance.now() - t) / 1000);
  await runner.stop();
  report({
    bench: 'eventstore.projection.rebuild',
    value: rebuildRate,
    unit: 'events/s',
    ceiling: readAllRate,
    ceilingName: 'readAll over the same events, no handler',
    events: read,
  });
}

const pool = new pg.Pool({ connectionString: url, max: 16 });
const store = createEventStore({ pool, schema });
try {
  await store.migrate();
  await lag(store);
  await rebuild(store);
} finally {
  await store.close();
  await pool.end();
  await dropSchema(url, schema);
}
