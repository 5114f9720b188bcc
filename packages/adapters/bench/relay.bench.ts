/**
 * End-to-end throughput through the outbox relay — events appended to the store, published by the
 * relay to RabbitMQ with confirms, checkpointed, and received by a consumer — beside the raw
 * client's publish figure measured in the same run against the same server (plain amqplib
 * ConfirmChannel publishes, 64 in flight, the `rabbitmq.publish.confirmed` ceiling).
 *
 * Each relay round drains a backlog: `BENCH_EVENTS` events (default 5000) are appended first,
 * interleaved over 500 claim streams (10 events each), untimed; then a fresh relay starts at the
 * round's first event, and the clock runs from the moment it is active (lease held, checkpoint
 * loaded: where the hand-made relay below starts, with a warm pool and its first page to read)
 * until the consumer has received every one of them. The start itself (a session of its own for
 * the lease and LISTEN, the checkpoint row: 25-35 ms, most of it PostgreSQL starting a backend)
 * is printed apart as `startupMs`; in a 5,000-event round it would weigh as much as 5% of the
 * rate, which a relay that runs for hours pays once.
 * The same figure is printed again beside the raw client end to end (amqplib confirmed publishes
 * consumed and acknowledged by an amqplib consumer), the fairer ceiling for a path with a consumer.
 * The third ceiling does the relay's whole job with the raw clients, by hand: plain node-postgres
 * reads of the events table in position order (500 rows a page), each row published as its
 * envelope's JSON with amqplib confirms (at most 200 in flight, as the relay's defaults), a
 * checkpoint row upserted after each page's confirms, and an amqplib consumer that parses and
 * acknowledges — from the same kind of backlog. That is "the raw client's own figure" for a relay:
 * what the adapter adds beyond the clients it drives. It reads in the order of the log's index
 * (transaction id, then position), as a hand-written relay on this schema would (by position
 * alone it would sort the table on every page). (It has none of the relay's guarantees: it
 * skips events whose transaction commits after a later one, publishes nothing when RabbitMQ is
 * down instead of waiting, and has no lease, parking or per-stream ordering across restarts.)
 * A last figure relays while 8 writers append: events received per second beside the writers'
 * own append rate in the same rounds (ratio 1 means the relay keeps up).
 *
 * Prints one JSON object per line (`@evident/devkit/bench`): medians of rounds, and the ratio as the
 * median of paired rounds' ratios; relay and raw rounds alternate so drift hits both.
 *
 * Run with `pnpm --filter @evident/adapters bench`. POSTGRES_URL and RABBITMQ_URL override the
 * local defaults.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { createRabbitMqBroker, type RabbitMqBroker } from '@evident/adapters/rabbitmq';
import { relay } from '@evident/adapters/relay';
import {
  type CpuPerOperation,
  median,
  medianCpu,
  report,
  startCpuMeter,
  throughput,
} from '@evident/devkit/bench';
import { dropSchema } from '@evident/devkit/postgres';
import { createEnvelope, type Envelope } from '@evident/envelope';
import { type Checkpoint, createEventStore, type EventStore } from '@evident/eventstore';
import amqp from 'amqplib';
import pg from 'pg';

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const roundMs = Number(process.env.BENCH_ROUND_MS ?? 2000);
const backlog = Number(process.env.BENCH_EVENTS ?? 5000);
const streamsPerRound = 500;
const quiet = { warn: () => {} };

/** One figure beside its ceiling, rounds paired (relay and raw rounds alternate). */
function relayReport(
  bench: string,
  values: number[],
  ceilingName: string,
  ceilings: number[],
  target?: string,
  extra: Record<string, unknown> = {},
): void {
  report({
    bench,
    value: median(values),
    unit: 'events/s',
    ceiling: median(ceilings),
    ceilingName,
    ...(target ? { target } : {}),
    rounds: values,
    ceilingRounds: ceilings,
    ...extra,
  });
}

/** A claim event of a realistic size (about 600 bytes serialized). */
function claim(round: number, seq: number): Envelope {
  return createEnvelope({
    type: 'ClaimSubmitted',
    data: {
      round,
      seq,
      claimId: randomUUID(),
      patientId: randomUUID(),
      payerId: 'delta-dental',
      procedures: [
        { code: 'D0120', fee: 65 },
        { code: 'D1110', fee: 110 },
      ],
    },
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
    metadata: { traceId: randomUUID() },
  });
}

function reachable(url: string, port: number): Promise<boolean> {
  const { hostname } = new URL(url);
  return new Promise((resolve) => {
    const s = tcpConnect({ host: hostname, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Append `count` events interleaved over fresh streams, 50 streams per transaction. */
async function appendBacklog(store: EventStore, round: number, count: number) {
  const streams = Array.from({ length: streamsPerRound }, () => ({
    type: 'claim',
    id: `c-${randomBytes(6).toString('hex')}`,
  }));
  const perStream = Math.ceil(count / streamsPerRound);
  for (let seq = 1; seq <= perStream; seq++) {
    const chunks: (typeof streams)[] = [];
    for (let i = 0; i < streams.length; i += 50) chunks.push(streams.slice(i, i + 50));
    await Promise.all(
      chunks.map((chunk) =>
        store.appendMany(
          chunk.map((stream) => ({
            stream,
            events: [claim(round, seq)],
            expectedVersion: seq === 1 ? ('no_stream' as const) : seq - 1,
          })),
        ),
      ),
    );
  }
  return perStream * streamsPerRound;
}

/** The checkpoint of the newest event in the log (everything before it is settled). */
async function head(store: EventStore): Promise<Checkpoint> {
  let after: Checkpoint | undefined;
  for (;;) {
    const page = await store.readAll({ ...(after ? { after } : {}), limit: 10_000 });
    if (page.caughtUp) return page.checkpoint;
    after = page.checkpoint;
  }
}

async function main(): Promise<void> {
  const amqpUrl = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const pgUrl = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
  if (!(await reachable(amqpUrl, Number(new URL(amqpUrl).port || 5672)))) {
    console.error(`RabbitMQ at ${new URL(amqpUrl).host} unreachable: relay figures are skipped`);
    return;
  }
  if (!(await reachable(pgUrl, Number(new URL(pgUrl).port || 5432)))) {
    console.error(`PostgreSQL at ${new URL(pgUrl).host} unreachable: relay figures are skipped`);
    return;
  }
  const schema = `bench_relay_${randomBytes(4).toString('hex')}`;
  const store = createEventStore({ connectionString: pgUrl, schema, poolSize: 16 });
  const ns = `bench${randomUUID().slice(0, 8)}`;
  let broker: RabbitMqBroker | undefined;
  const connection = await amqp.connect(amqpUrl);
  try {
    await store.migrate();
    broker = createRabbitMqBroker({ url: amqpUrl, namespace: ns, logger: quiet });
    const received = new Map<number, number>();
    await broker.subscribe({
      queue: 'sink',
      topics: ['ClaimSubmitted'],
      prefetch: 200,
      handler: (e) => {
        const { round } = e.data as { round: number };
        received.set(round, (received.get(round) ?? 0) + 1);
      },
    });
    const channel = await connection.createConfirmChannel();
    const rawPublish = () =>
      new Promise<number>((resolve, reject) => {
        channel.publish(
          `${ns}.events`,
          'Unrouted',
          Buffer.from(JSON.stringify(claim(0, 0))),
          { persistent: true, contentType: 'application/json' },
          (e: unknown) => (e ? reject(e) : resolve(1)),
        );
      });
    // The raw figure goes to a bound quorum queue too, as the relay's messages do.
    await channel.assertQueue(`${ns}.raw`, {
      durable: true,
      arguments: { 'x-queue-type': 'quorum' },
    });
    await channel.bindQueue(`${ns}.raw`, `${ns}.events`, 'Unrouted');
    // And the raw client end to end: confirmed publishes consumed and acknowledged, on a
    // connection of their own as the adapter's consumer has.
    const consuming = await amqp.connect(amqpUrl);
    const rawConsumer = await consuming.createChannel();
    await rawConsumer.prefetch(200);
    /** A quorum queue whose messages amqplib parses and acknowledges; counts them. */
    const rawSink = async (queue: string) => {
      const sink = { received: 0 };
      await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await rawConsumer.consume(queue, (m) => {
        if (!m) return;
        JSON.parse(m.content.toString());
        sink.received += 1;
        rawConsumer.ack(m);
      });
      return sink;
    };
    const rawe2e = await rawSink(`${ns}.rawe2e`);
    const rawEndToEnd = async (): Promise<number> => {
      rawe2e.received = 0;
      let sent = 0;
      const started = performance.now();
      await throughput(
        64,
        roundMs,
        () =>
          new Promise<number>((resolve, reject) => {
            sent += 1;
            channel.publish(
              '',
              `${ns}.rawe2e`,
              Buffer.from(JSON.stringify(claim(0, 0))),
              { persistent: true, contentType: 'application/json' },
              (e: unknown) => (e ? reject(e) : resolve(1)),
            );
          }),
      );
      while (rawe2e.received < sent) await new Promise((r) => setTimeout(r, 2));
      return sent / ((performance.now() - started) / 1000);
    };

    // The relay's job done by hand with the raw clients (see the header). Its messages use their
    // own routing key, so the adapter's consumer never sees them.
    const pgPool = new pg.Pool({ connectionString: pgUrl, max: 4 });
    await pgPool.query(
      `create table "${schema}".raw_checkpoint (name text primary key, position text not null)`,
    );
    const rawRelayed = await rawSink(`${ns}.rawrelay`);
    await channel.bindQueue(`${ns}.rawrelay`, `${ns}.events`, 'raw.ClaimSubmitted');
    const rawRelay = async (): Promise<number> => {
      round += 1;
      // Where the log ends now, in its index's order (transaction id, then position).
      const last = await pgPool.query<{ tx: string; position: string }>(
        `select transaction_id::text as tx, global_position::text as position
         from "${schema}".events order by transaction_id desc, global_position desc limit 1`,
      );
      const count = await appendBacklog(store, round, backlog);
      rawRelayed.received = 0;
      const cpu = startCpuMeter({ servers: ['postgres', 'rabbitmq'] });
      const started = performance.now();
      let position = [last.rows[0]?.tx ?? '0', last.rows[0]?.position ?? '0'];
      let inFlight = 0;
      const slots: (() => void)[] = [];
      for (;;) {
        const { rows } = await pgPool.query({
          name: 'raw_relay_page',
          text: `select transaction_id::text as tx, global_position::text as position, event_id,
                        event_type, schema_version, occurred_at, correlation_id, causation_id,
                        source, actor_id, actor_role, data, metadata
                 from "${schema}".events where (transaction_id, global_position) > ($1::xid8, $2)
                 order by transaction_id, global_position limit 500`,
          values: position,
        });
        if (rows.length === 0) break;
        for (const row of rows) {
          while (inFlight >= 200) await new Promise<void>((resolve) => slots.push(resolve));
          inFlight += 1;
          const body = JSON.stringify({
            id: row.event_id,
            type: row.event_type,
            schemaVersion: row.schema_version,
            occurredAt: (row.occurred_at as Date).toISOString(),
            correlationId: row.correlation_id,
            causationId: row.causation_id,
            source: row.source,
            actor: { id: row.actor_id, role: row.actor_role },
            data: row.data,
            metadata: row.metadata,
          });
          channel.publish(
            `${ns}.events`,
            `raw.${row.event_type}`,
            Buffer.from(body),
            { persistent: true, contentType: 'application/json', messageId: row.event_id },
            () => {
              inFlight -= 1;
              slots.shift()?.();
            },
          );
        }
        await channel.waitForConfirms();
        position = [rows[rows.length - 1]!.tx, rows[rows.length - 1]!.position];
        await pgPool.query({
          name: 'raw_relay_checkpoint',
          text: `insert into "${schema}".raw_checkpoint (name, position) values ('raw', $1)
                 on conflict (name) do update set position = excluded.position`,
          values: [position.join('/')],
        });
      }
      while (rawRelayed.received < count) await new Promise((r) => setTimeout(r, 2));
      const rate = count / ((performance.now() - started) / 1000);
      rawRelayCpu.push(cpu.perOperation(count));
      return rate;
    };

    const waitForRound = async (round: number, count: number) => {
      while ((received.get(round) ?? 0) < count) await new Promise((r) => setTimeout(r, 2));
    };

    let round = 0;
    // CPU per event of each drain and hand-made relay round: this process (relay or hand-made
    // relay, and its consumer), PostgreSQL and RabbitMQ. Steadier than the rates on a shared
    // machine, and it says where the cores went: the broker's share is the same for both.
    const relayCpu: CpuPerOperation[] = [];
    const rawRelayCpu: CpuPerOperation[] = [];
    // Milliseconds from relay() to holding the lease with the checkpoint loaded, per drain.
    const startups: number[] = [];
    const drain = async (): Promise<number> => {
      round += 1;
      const from = await head(store);
      const count = await appendBacklog(store, round, backlog);
      const cpu = startCpuMeter({ servers: ['postgres', 'rabbitmq'] });
      const starting = performance.now();
      const outbox = relay({
        store,
        broker: broker!,
        subscriptionName: `bench-${round}`,
        from,
        logger: quiet,
      });
      // The clock starts once the relay holds its lease and has loaded its checkpoint, where the
      // hand-made relay's starts (a warm pool, its first page still to read); the start itself
      // (a session of its own for the lease and LISTEN, the checkpoint row) is printed apart.
      while (outbox.state !== 'active') {
        if (outbox.state === 'failed' || outbox.state === 'stopped') {
          throw new Error(`relay ${outbox.state} before it started`);
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      const started = performance.now();
      startups.push(started - starting);
      await waitForRound(round, count);
      const rate = count / ((performance.now() - started) / 1000);
      relayCpu.push(cpu.perOperation(count));
      await outbox.stop();
      return rate;
    };

    const live = async (): Promise<{ relayed: number; appended: number }> => {
      round += 1;
      const from = await head(store);
      const outbox = relay({
        store,
        broker: broker!,
        subscriptionName: `bench-${round}`,
        from,
        logger: quiet,
      });
      const thisRound = round;
      const started = performance.now();
      const versions = new Map<string, number>();
      const ids = Array.from({ length: 200 }, () => `c-${randomBytes(6).toString('hex')}`);
      const busy = new Set<string>();
      let next = 0;
      const appendRate = await throughput(8, roundMs, async () => {
        let id = ids[next++ % ids.length]!;
        while (busy.has(id)) id = ids[next++ % ids.length]!;
        busy.add(id);
        const version = versions.get(id) ?? 0;
        await store.append({ type: 'claim', id }, [claim(thisRound, version + 1)], {
          expectedVersion: version === 0 ? 'no_stream' : version,
        });
        versions.set(id, version + 1);
        busy.delete(id);
        return 1;
      });
      const appended = [...versions.values()].reduce((a, n) => a + n, 0);
      await waitForRound(thisRound, appended);
      const relayed = appended / ((performance.now() - started) / 1000);
      await outbox.stop();
      return { relayed, appended: appendRate };
    };

    await throughput(64, 500, rawPublish); // warm-up
    await drain();
    relayCpu.length = 0;
    startups.length = 0;
    const relayRates: number[] = [];
    const rawRates: number[] = [];
    const rawEndToEndRates: number[] = [];
    const rawRelayRates: number[] = [];
    const liveRates: number[] = [];
    const appendRates: number[] = [];
    for (let i = 0; i < rounds; i++) {
      await channel.purgeQueue(`${ns}.raw`);
      rawRates.push(await throughput(64, roundMs, rawPublish));
      rawEndToEndRates.push(await rawEndToEnd());
      relayRates.push(await drain());
      rawRelayRates.push(await rawRelay());
      const l = await live();
      liveRates.push(l.relayed);
      appendRates.push(l.appended);
    }
    relayReport(
      'relay.rabbitmq.end-to-end',
      relayRates,
      'amqplib ConfirmChannel.publish, 64 in flight (raw publish, no store, no consumer)',
      rawRates,
    );
    relayReport(
      'relay.rabbitmq.end-to-end.vs-raw-consume',
      relayRates,
      'amqplib confirmed publishes consumed and acknowledged by amqplib, 64 in flight',
      rawEndToEndRates,
    );
    relayReport(
      'relay.rabbitmq.end-to-end.vs-raw-relay',
      relayRates,
      'the same job by hand with the raw clients: node-postgres pages of 500, amqplib confirmed publishes (200 in flight), a checkpoint per page, an amqplib consumer',
      rawRelayRates,
      '>= 0.8 x the raw clients (the adapter costs < 20%)',
      {
        cpuMicrosPerEvent: medianCpu(relayCpu),
        ceilingCpuMicrosPerEvent: medianCpu(rawRelayCpu),
        startupMs: median(startups),
      },
    );
    relayReport(
      'relay.rabbitmq.live',
      liveRates,
      'appends by 8 writers in the same rounds (single-event appends)',
      appendRates,
    );
    await channel.deleteQueue(`${ns}.raw`);
    await rawConsumer.close();
    await consuming.close();
    await channel.deleteQueue(`${ns}.rawe2e`);
    await channel.deleteQueue(`${ns}.rawrelay`);
    await pgPool.end();
    await channel.close();
  } finally {
    if (broker) {
      await broker.close();
      const cleanup = await connection.createChannel();
      for (const q of broker.topology().queues) await cleanup.deleteQueue(q);
      for (const e of broker.topology().exchanges) await cleanup.deleteExchange(e);
      await cleanup.close();
    }
    await connection.close();
    await store.close();
    await dropSchema(pgUrl, schema);
  }
}

await main();
