/**
 * The relay on PostgreSQL and RabbitMQ with faults injected for real: the relay process killed
 * with SIGKILL between the commit of events and their publish (scenario 11), and its connection to
 * RabbitMQ cut mid-publish so confirms are lost, briefly or for longer than the publish timeout
 * (scenario 12). Consumers behind the inbox show what the duplicates cost: nothing.
 */
import type { Envelope } from '@evident/envelope';
import type { EventStore } from '@evident/eventstore';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { postgresUrl, rabbitmqUrl } from '#test-env';
import { startConsumerProcess } from '../../test/childProcess.js';
import { sleep } from '../../test/fixtures.js';
import { createEffectsTable } from '../../test/inboxContract.js';
import { instrument } from '../../test/instrumentedBroker.js';
import {
  deleteNamespace,
  openConnections,
  recordingLogger,
  testNamespace,
} from '../../test/rabbitmq.js';
import { appendClaims, firstSeen, postgresFactory, type StoreFixture } from '../../test/store.js';
import { startTcpProxy, type TcpProxy, viaProxy } from '../../test/tcpProxy.js';
import { withInbox } from '../inbox/index.js';
import {
  createRabbitMqBroker,
  type RabbitMqBroker,
  type RabbitMqBrokerOptions,
} from '../rabbitmq/index.js';
import { type Relay, relay } from './index.js';

describe.skipIf(!postgresUrl || !rabbitmqUrl)('relay under faults (PostgreSQL, RabbitMQ)', () => {
  const url = rabbitmqUrl!;
  let ns: string;
  let fixture: StoreFixture;
  let store: EventStore;
  let effects: string;
  let proxy: TcpProxy;
  let brokers: RabbitMqBroker[];
  let relays: Relay[];

  const broker = (options: Partial<RabbitMqBrokerOptions> = {}) => {
    const b = createRabbitMqBroker({
      url,
      namespace: ns,
      connectionName: `evident-test:${ns}:${brokers.length}`,
      logger: recordingLogger(),
      ...options,
    });
    brokers.push(b);
    return b;
  };

  beforeEach(async () => {
    ns = testNamespace();
    brokers = [];
    relays = [];
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    effects = await createEffectsTable(store);
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(url).port || 5672) });
  });

  afterEach(async () => {
    proxy.refuse = false;
    await Promise.all(relays.map((r) => r.stop()));
    await Promise.all(brokers.map((b) => b.close()));
    await proxy.close();
    await deleteNamespace(url, ns);
    await fixture.cleanup();
    await vi.waitFor(async () => expect(await openConnections(`evident-test:${ns}`)).toEqual([]), {
      timeout: 10_000,
      interval: 250,
    });
  });

  /**
   * A consumer of `type` behind the inbox: one row in the effects table per effect; returns the
   * deliveries it recognised as duplicates and skipped.
   */
  async function consumer(type: string) {
    const duplicates: Envelope[] = [];
    await broker().subscribe({
      queue: 'ledger',
      topics: [type],
      prefetch: 50,
      handler: withInbox(
        async (e, { tx, queue, attempt }) => {
          await tx.query(`insert into ${effects} values ($1, $2, $3)`, [queue, e.id, attempt]);
        },
        { store, onDuplicate: (e) => void duplicates.push(e) },
      ),
    });
    return duplicates;
  }

  async function effectCount(): Promise<{ rows: number; distinct: number }> {
    const [row] = await store.database.query<{ rows: string; distinct: string }>(
      `select count(*) as rows, count(distinct event_id) as distinct from ${effects}`,
    );
    return { rows: Number(row!.rows), distinct: Number(row!.distinct) };
  }

  it('publishes everything after the relay process is killed between commit and publish (scenario 11)', async () => {
    const type = `ClaimSubmitted${ns}`;
    const received: Envelope[] = [];
    await broker().subscribe({
      queue: 'audit',
      topics: [type],
      prefetch: 50,
      handler: (e) => void received.push(e),
    });
    const duplicates = await consumer(type);
    const { events, checkpoint, streams } = await appendClaims(store, {
      streams: 6,
      perStream: 10,
      type,
    });
    const hangOn = events[31]!; // stream 2's sixth event
    const name = `relay-${ns}`;
    const child = await startConsumerProcess(
      {
        url,
        namespace: ns,
        postgresUrl,
        schema: store.schema,
        subscriptionName: name,
        type,
        hangOn: hangOn.id,
      },
      'relayProcess.ts',
    );
    expect(await child.waitFor('hanging')).toBe(`hanging ${hangOn.id}`);
    // Other streams go on while that publish hangs: let their later events out too.
    await sleep(500);
    child.child.kill('SIGKILL');
    expect(await child.exited).toBe('SIGKILL');
    const publishedByChild = child.lines.filter((l) => l.startsWith('published')).length;
    expect(publishedByChild).toBeGreaterThan(31);
    expect(child.lines).not.toContain(`published ${hangOn.id}`);

    // The relay restarts (here, in this process) from the checkpoint the killed one committed.
    const r = relay({
      store,
      broker: broker(),
      subscriptionName: name,
      filter: { types: [type] },
      takeoverIntervalMs: 100,
      logger: recordingLogger(),
    });
    relays.push(r);
    await r.waitFor(checkpoint, { timeoutMs: 30_000 });
    await vi.waitFor(() => expect(new Set(received.map((e) => e.id)).size).toBe(events.length), {
      timeout: 30_000,
      interval: 100,
    });
    // Nothing lost; what the killed relay published and had not checkpointed came again.
    expect(received.length).toBeGreaterThan(events.length);
    const order = firstSeen(received);
    for (const id of streams) expect(order.get(id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Behind the inbox, each event had its effect once.
    await vi.waitFor(async () => expect(await effectCount()).toEqual({ rows: 60, distinct: 60 }), {
      timeout: 30_000,
      interval: 200,
    });
    await vi.waitFor(() => expect(duplicates.length).toBe(received.length - events.length), {
      timeout: 30_000,
      interval: 100,
    });
    console.log(
      JSON.stringify({
        scenario: 11,
        events: events.length,
        publishedBeforeKill: publishedByChild,
        deliveries: received.length,
        effects: 60,
      }),
    );
  });

  it('republishes what lost its confirm when the connection is cut mid-publish; the inbox absorbs the duplicates (scenario 12)', async () => {
    const type = `ClaimSubmitted${ns}`;
    const duplicates = await consumer(type);
    const received: Envelope[] = [];
    await broker().subscribe({
      queue: 'audit',
      topics: [type],
      prefetch: 50,
      handler: (e) => void received.push(e),
    });
    const { events, checkpoint, streams } = await appendClaims(store, {
      streams: 20,
      perStream: 30,
      type,
      concurrency: 20,
    });
    let confirmed = 0;
    let drops = 0;
    const logger = recordingLogger();
    const rabbit = broker({ url: viaProxy(url, proxy), publishTimeoutMs: 30_000, logger });
    const cutting = instrument(rabbit);
    const publish = cutting.publish.bind(cutting);
    cutting.publish = async (e, o) => {
      await publish(e, o);
      confirmed += 1;
      // Twice: RabbitMQ keeps storing what the relay sends but its confirms are lost, then the
      // connection drops. What was sent meanwhile is stored and unconfirmed: sent again.
      if (confirmed === 150 || confirmed === 400) {
        drops += 1;
        proxy.muteReplies = true;
        setTimeout(() => {
          proxy.drop();
          proxy.muteReplies = false;
        }, 300);
      }
    };
    const r = relay({
      store,
      broker: cutting,
      subscriptionName: `relay-${ns}`,
      filter: { types: [type] },
      logger: recordingLogger(),
    });
    relays.push(r);
    await r.waitFor(checkpoint, { timeoutMs: 60_000 });
    expect(drops).toBe(2);
    expect(logger.lines.map((l) => l.message)).toContain('RabbitMQ connection lost; reconnecting');
    await vi.waitFor(() => expect(new Set(received.map((e) => e.id)).size).toBe(events.length), {
      timeout: 30_000,
      interval: 100,
    });
    const order = firstSeen(received);
    for (const id of streams) {
      expect(order.get(id)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    }
    await vi.waitFor(
      async () => expect(await effectCount()).toEqual({ rows: 600, distinct: 600 }),
      { timeout: 30_000, interval: 200 },
    );
    await vi.waitFor(() => expect(duplicates.length).toBe(received.length - events.length), {
      timeout: 30_000,
      interval: 100,
    });
    // Confirms were lost for real: duplicates reached the consumers, and the inbox absorbed them.
    expect(duplicates.length).toBeGreaterThan(0);
    console.log(
      JSON.stringify({
        scenario: 12,
        events: events.length,
        deliveries: received.length,
        duplicatesAbsorbed: duplicates.length,
        effects: 600,
      }),
    );
  });

  it('retries publishes that time out during an outage without moving its checkpoint, then publishes everything in order (scenario 12)', async () => {
    const type = `ClaimSubmitted${ns}`;
    const duplicates = await consumer(type);
    const received: Envelope[] = [];
    await broker().subscribe({
      queue: 'audit',
      topics: [type],
      prefetch: 50,
      handler: (e) => void received.push(e),
    });
    const first = await appendClaims(store, { streams: 5, perStream: 4, type });
    const logger = recordingLogger();
    const r = relay({
      store,
      broker: broker({ url: viaProxy(url, proxy), publishTimeoutMs: 1000 }),
      subscriptionName: `relay-${ns}`,
      filter: { types: [type] },
      backoff: { initialMs: 200, maxMs: 1000 },
      logger,
    });
    relays.push(r);
    await r.waitFor(first.checkpoint);
    // An outage longer than the publish timeout: publishes are rejected, not just delayed.
    proxy.refuse = true;
    proxy.drop();
    const second = await appendClaims(store, { streams: 5, perStream: 4, type });
    await vi.waitFor(async () => expect((await r.status()).publishFailures).toBeGreaterThan(1), {
      timeout: 20_000,
      interval: 100,
    });
    const during = await r.status();
    expect(during.checkpoint < second.checkpoint).toBe(true);
    expect(during.lastPublishError?.code).toBe('PUBLISH_TIMEOUT');
    expect(logger.lines.map((l) => l.message)).toContain('relay publish failed; retrying');
    await sleep(1500);
    proxy.refuse = false;
    await r.waitFor(second.checkpoint, { timeoutMs: 30_000 });
    const all = [...first.events, ...second.events];
    await vi.waitFor(() => expect(new Set(received.map((e) => e.id)).size).toBe(all.length), {
      timeout: 30_000,
      interval: 100,
    });
    const order = firstSeen(received);
    for (const id of second.streams) expect(order.get(id)).toEqual([1, 2, 3, 4]);
    await vi.waitFor(async () => expect(await effectCount()).toEqual({ rows: 40, distinct: 40 }), {
      timeout: 30_000,
      interval: 200,
    });
    await vi.waitFor(() => expect(duplicates.length).toBe(received.length - all.length), {
      timeout: 30_000,
      interval: 100,
    });
    expect((await r.status()).parked).toBe(0);
  });
});
