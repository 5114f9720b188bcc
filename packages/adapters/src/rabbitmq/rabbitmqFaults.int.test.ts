/**
 * RabbitMQ with faults injected for real: connections cut by a TCP proxy in the middle of
 * publishing and consuming, consumer processes killed with SIGKILL, and the topology checked
 * with rabbitmqctl. (Restarting the server itself is in rabbitmqRestart.restart.int.test.ts.)
 */

import type { Envelope } from '@evident/envelope';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rabbitmqUrl } from '#test-env';
import { startConsumerProcess } from '../../test/childProcess.js';
import { event, sleep } from '../../test/fixtures.js';
import {
  deleteNamespace,
  openConnections,
  rabbitmqctl,
  recordingLogger,
  testNamespace,
} from '../../test/rabbitmq.js';
import { startTcpProxy, type TcpProxy, viaProxy } from '../../test/tcpProxy.js';
import { isBrokerError, type MessageContext } from '../index.js';
import { createRabbitMqBroker, type RabbitMqBroker, type RabbitMqBrokerOptions } from './index.js';

describe.skipIf(!rabbitmqUrl)('RabbitMQ under faults', () => {
  const url = rabbitmqUrl!;
  let ns: string;
  let proxy: TcpProxy;
  let brokers: RabbitMqBroker[];
  let logger: ReturnType<typeof recordingLogger>;

  const broker = (options: Partial<RabbitMqBrokerOptions> = {}) => {
    const b = createRabbitMqBroker({
      url,
      namespace: ns,
      connectionName: `evident-test:${ns}:${brokers.length}`,
      logger,
      ...options,
    });
    brokers.push(b);
    return b;
  };

  beforeEach(async () => {
    ns = testNamespace();
    brokers = [];
    logger = recordingLogger();
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(url).port || 5672) });
  });

  afterEach(async () => {
    proxy.refuse = false;
    await Promise.all(brokers.map((b) => b.close()));
    await proxy.close();
    await deleteNamespace(url, ns);
    // Fail a test that leaves a connection behind (the server drops closed ones within moments).
    await vi.waitFor(async () => expect(await openConnections(`evident-test:${ns}`)).toEqual([]), {
      timeout: 10_000,
      interval: 250,
    });
  });

  it('confirms every publish across a connection dropped mid-publish, and delivers every confirmed message', async () => {
    const type = `ClaimSubmitted${ns}`;
    const received = new Map<string, number>();
    await broker().subscribe({
      queue: 'claims',
      topics: [type],
      prefetch: 100,
      handler: (e) => void received.set(e.id, (received.get(e.id) ?? 0) + 1),
    });
    const publisher = broker({ url: viaProxy(url, proxy), publishTimeoutMs: 30_000 });
    const events = Array.from({ length: 1000 }, () => event(type));
    let confirmed = 0;
    let droppedAt = -1;
    const outcomes: unknown[] = [];
    // 20 lanes publishing steadily; the connection is cut the moment the 200th confirm arrives,
    // with publishes in flight and others about to be sent.
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < events.length) {
          const e = events[next++]!;
          try {
            await publisher.publish(e);
            outcomes.push(true);
            confirmed += 1;
            if (confirmed === 200) {
              droppedAt = proxy.connections;
              proxy.drop();
            }
          } catch (error) {
            outcomes.push(error);
          }
        }
      }),
    );
    expect(droppedAt).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o !== true)).toEqual([]);
    expect(logger.lines.map((l) => l.message)).toContain('RabbitMQ connection lost; reconnecting');
    // Nothing confirmed is lost; a message whose confirm was cut off may arrive twice.
    await vi.waitFor(() => expect(received.size).toBe(events.length), {
      timeout: 30_000,
      interval: 100,
    });
    const duplicates = [...received.values()].filter((n) => n > 1).length;
    expect(duplicates).toBeLessThanOrEqual(40);
  });

  it('waits out an outage: a publish made while the broker is unreachable is confirmed once it is back', async () => {
    const type = `ClaimSubmitted${ns}`;
    const seen: string[] = [];
    await broker().subscribe({
      queue: 'claims',
      topics: [type],
      handler: (e) => void seen.push(e.id),
    });
    const publisher = broker({ url: viaProxy(url, proxy), publishTimeoutMs: 20_000 });
    await publisher.publish(event(type));
    proxy.refuse = true;
    proxy.drop();
    const late = event(type);
    let settled = false;
    const publishing = publisher.publish(late).finally(() => {
      settled = true;
    });
    await sleep(1500);
    expect(settled).toBe(false);
    proxy.refuse = false;
    await publishing;
    await vi.waitFor(() => expect(seen).toContain(late.id), { timeout: 10_000 });
  });

  it('is not ready while the connection is cut, and ready again once it is back', async () => {
    const b = broker({ url: viaProxy(url, proxy) });
    expect((await b.ready()).ready).toBe(true);
    proxy.refuse = true;
    proxy.drop();
    // As soon as the client sees the socket close (a silent death: at the next missed heartbeat).
    await vi.waitFor(
      async () =>
        expect(await b.ready({ timeout: 500 })).toEqual({
          ready: false,
          checks: { connection: { ok: false, error: 'BROKER_UNAVAILABLE' }, subscriptions: 0 },
        }),
      { timeout: 15_000, interval: 100 },
    );
    proxy.refuse = false;
    await vi.waitFor(async () => expect((await b.ready({ timeout: 500 })).ready).toBe(true), {
      timeout: 15_000,
      interval: 100,
    });
  });

  it('rejects a publish not confirmed within publishTimeoutMs with PUBLISH_TIMEOUT, for the caller to retry', async () => {
    const publisher = broker({ url: viaProxy(url, proxy), publishTimeoutMs: 1000 });
    await publisher.publish(event(`ClaimSubmitted${ns}`));
    proxy.refuse = true;
    proxy.drop();
    const error = await publisher.publish(event(`ClaimSubmitted${ns}`)).catch((e: unknown) => e);
    expect(isBrokerError(error, 'PUBLISH_TIMEOUT')).toBe(true);
  });

  it('gives a consumer whose connection dropped its in-flight message back as the next attempt, and keeps consuming', async () => {
    const type = `EligibilityRequested${ns}`;
    const calls: { id: string; attempt: number; context: MessageContext }[] = [];
    await broker({ url: viaProxy(url, proxy) }).subscribe({
      queue: 'eligibility',
      topics: [type],
      handler: async (e, context) => {
        calls.push({ id: e.id, attempt: context.attempt, context });
        // The first delivery is still being worked on when the connection goes.
        if (calls.length === 1) {
          await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
        }
      },
    });
    const publisher = broker();
    const first = event(type);
    await publisher.publish(first);
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    proxy.drop();
    await vi.waitFor(() => expect(calls[0]!.context.signal.aborted).toBe(true));
    expect(isBrokerError(calls[0]!.context.signal.reason, 'CONNECTION_LOST')).toBe(true);
    await vi.waitFor(() => expect(calls).toHaveLength(2), { timeout: 20_000 });
    expect(calls[1]).toMatchObject({ id: first.id, attempt: 2 });
    const second = event(type);
    await publisher.publish(second);
    await vi.waitFor(() => expect(calls.map((c) => c.id)).toContain(second.id), {
      timeout: 10_000,
    });
    expect(calls.at(-1)!.attempt).toBe(1);
  });

  it('redelivers the message of a consumer killed with SIGKILL after its work and before its ack, as attempt 2', async () => {
    const type = `ClaimAdjudicated${ns}`;
    const declare = await broker().subscribe({
      queue: 'adjudication',
      topics: [type],
      handler: () => {},
    });
    await declare.close();
    const consumer = await startConsumerProcess({
      kind: 'rabbitmq',
      url,
      namespace: ns,
      queue: 'adjudication',
      topic: type,
      attempts: 5,
      mode: 'work-then-hang',
    });
    await consumer.waitFor('ready');
    const sent = event(type);
    await broker().publish(sent);
    expect(await consumer.waitFor('worked')).toBe(`worked ${sent.id} 1`);
    consumer.child.kill('SIGKILL');
    expect(await consumer.exited).toBe('SIGKILL');
    const again: { envelope: Envelope; attempt: number }[] = [];
    await broker().subscribe({
      queue: 'adjudication',
      topics: [type],
      handler: (envelope, { attempt }) => void again.push({ envelope, attempt }),
    });
    await vi.waitFor(() => expect(again).toHaveLength(1), { timeout: 20_000 });
    expect(again[0]!.envelope).toEqual(sent);
    expect(again[0]!.attempt).toBe(2);
  });

  it('dead-letters a message that crashes its consumer on every delivery once its attempts are used up', async () => {
    const type = `XrayUploaded${ns}`;
    const declare = await broker().subscribe({
      queue: 'imaging',
      topics: [type],
      handler: () => {},
      retry: { attempts: 2, backoff: { initialMs: 100 } },
    });
    await declare.close();
    const poison = event(type);
    await broker().publish(poison);
    const config = {
      kind: 'rabbitmq',
      url,
      namespace: ns,
      queue: 'imaging',
      topic: type,
      attempts: 2,
    };
    for (const attempt of [1, 2]) {
      const crashing = await startConsumerProcess({ ...config, mode: 'crash' });
      expect(await crashing.waitFor('crashing')).toBe(`crashing ${poison.id} ${attempt}`);
      expect(await crashing.exited).toBe('SIGKILL');
    }
    // The third consumer sees delivery 3 of a 2-attempt message: dead-lettered, handler not run.
    const third = await startConsumerProcess({ ...config, mode: 'work-then-hang' });
    await third.waitFor('ready');
    const inspector = broker();
    await vi.waitFor(async () => expect(await inspector.deadLetters('imaging')).toHaveLength(1), {
      timeout: 20_000,
      interval: 200,
    });
    third.child.kill('SIGKILL');
    await third.exited;
    expect(third.lines.filter((l) => l.startsWith('worked'))).toEqual([]);
    const [dead] = await inspector.deadLetters('imaging');
    expect(dead).toMatchObject({
      reason: 'delivery_limit',
      attempts: 3,
      error: { code: 'DELIVERY_LIMIT' },
      topic: type,
    });
    expect(dead!.envelope).toEqual(poison);
  });

  it('declares the quorum, retry and dead-letter queues as documented (checked with rabbitmqctl)', async () => {
    const b = broker();
    const type = `ClaimSubmitted${ns}`;
    await (
      await b.subscribe({
        queue: 'claims',
        topics: [type],
        handler: () => {},
        retry: { attempts: 4, backoff: { initialMs: 500, factor: 4, maxMs: 5000 } },
      })
    ).close();
    await (
      await b.subscribe({ queue: 'alerts', topics: [type], handler: () => {}, maxPriority: 9 })
    ).close();
    await b.publish(event(type), { delay: 250 });
    type Row = { name: string; type: string; arguments: [string, string, unknown][] };
    const rows = await rabbitmqctl<Row[]>('list_queues', 'name', 'type', 'arguments');
    const ours = new Map(
      rows
        .filter((r) => r.name.startsWith(`${ns}.`))
        .map((r) => [
          r.name,
          { type: r.type, args: Object.fromEntries(r.arguments.map(([k, , v]) => [k, v])) },
        ]),
    );
    expect([...ours.keys()].sort()).toEqual(
      [
        `${ns}.alerts`,
        `${ns}.alerts.dead`,
        `${ns}.alerts.retry.1000`,
        `${ns}.alerts.retry.2000`,
        `${ns}.alerts.retry.4000`,
        `${ns}.alerts.retry.8000`,
        `${ns}.claims`,
        `${ns}.claims.dead`,
        `${ns}.claims.retry.500`,
        `${ns}.claims.retry.2000`,
        `${ns}.claims.retry.5000`,
        `${ns}.delay.250`,
      ].sort(),
    );
    expect(ours.get(`${ns}.claims`)).toEqual({
      type: 'quorum',
      args: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': `${ns}.claims.dead` },
    });
    expect(ours.get(`${ns}.claims.retry.2000`)).toEqual({
      type: 'quorum',
      args: {
        'x-queue-type': 'quorum',
        'x-message-ttl': 2000,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': `${ns}.claims`,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
    expect(ours.get(`${ns}.claims.dead`)).toEqual({
      type: 'quorum',
      args: { 'x-queue-type': 'quorum' },
    });
    expect(ours.get(`${ns}.alerts`)).toEqual({
      type: 'classic',
      args: {
        'x-queue-type': 'classic',
        'x-max-priority': 9,
        'x-dead-letter-exchange': `${ns}.alerts.dead`,
      },
    });
    expect(ours.get(`${ns}.delay.250`)).toMatchObject({
      type: 'quorum',
      args: { 'x-message-ttl': 250, 'x-dead-letter-exchange': `${ns}.events` },
    });
    type Binding = { source_name: string; destination_name: string; routing_key: string };
    const bindings = await rabbitmqctl<Binding[]>(
      'list_bindings',
      'source_name',
      'destination_name',
      'routing_key',
    );
    expect(bindings).toContainEqual({
      source_name: `${ns}.events`,
      destination_name: `${ns}.claims`,
      routing_key: type,
    });
    expect(bindings).toContainEqual({
      source_name: `${ns}.claims.dead`,
      destination_name: `${ns}.claims.dead`,
      routing_key: '',
    });
  });

  it('refuses to redeclare a quorum queue as a priority queue with TOPOLOGY_CONFLICT', async () => {
    const b = broker();
    const type = `ClaimSubmitted${ns}`;
    await (await b.subscribe({ queue: 'claims', topics: [type], handler: () => {} })).close();
    const error = await b
      .subscribe({ queue: 'claims', topics: [type], handler: () => {}, maxPriority: 5 })
      .catch((e: unknown) => e);
    expect(isBrokerError(error, 'TOPOLOGY_CONFLICT')).toBe(true);
  });
});
