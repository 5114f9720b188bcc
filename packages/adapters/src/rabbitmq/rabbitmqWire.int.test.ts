/**
 * What the RabbitMQ adapter puts on the wire and how it settles deliveries, checked on the real
 * server with a raw amqplib client beside the adapter.
 */

import amqp from 'amqplib';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rabbitmqUrl } from '#test-env';
import { event, sleep } from '../../test/fixtures.js';
import {
  deleteNamespace,
  rabbitmqctl,
  recordingLogger,
  testNamespace,
} from '../../test/rabbitmq.js';
import { createRabbitMqBroker, type RabbitMqBroker } from './index.js';
import { names } from './topology.js';

describe.skipIf(!rabbitmqUrl)('RabbitMQ wire format and acknowledgements', () => {
  const url = rabbitmqUrl!;
  let ns: string;
  let broker: RabbitMqBroker;
  let raw: amqp.ChannelModel;

  beforeEach(async () => {
    ns = testNamespace();
    broker = createRabbitMqBroker({
      url,
      namespace: ns,
      connectionName: `evident-test:${ns}`,
      logger: recordingLogger(),
    });
    raw = await amqp.connect(url);
  });

  afterEach(async () => {
    await broker.close();
    await raw.close();
    await deleteNamespace(url, ns);
  });

  /** Declare a subscription's queues, then stop consuming so a raw client can read them. */
  async function declared(queue: string, topics: string[]) {
    await (await broker.subscribe({ queue, topics, handler: () => {} })).close();
  }

  it('carries the topic as the routing key, with no header of ours for a plain publish', async () => {
    await declared('claims', ['claims.resubmitted']);
    const sent = event('ClaimSubmitted');
    await broker.publish(sent, { topic: 'claims.resubmitted' });
    await broker.publish(event('ClaimSubmitted'), {
      topic: 'claims.resubmitted',
      orderingKey: 'claim-c-9',
    });
    const channel = await raw.createChannel();
    const take = async () => {
      const m = await channel.get(names.work(ns, 'claims'), { noAck: true });
      if (!m) throw new Error('the queue is empty');
      return m;
    };
    const plain = await take();
    const keyed = await take();
    // The adapter's own headers (the quorum queue adds its delivery count on the way out).
    const ours = (m: amqp.GetMessage) =>
      Object.fromEntries(
        Object.entries(m.properties.headers ?? {}).filter(([k]) => k.startsWith('evident-')),
      );
    expect(plain.fields.routingKey).toBe('claims.resubmitted');
    expect(ours(plain)).toEqual({});
    expect(JSON.parse(plain.content.toString()).id).toBe(sent.id);
    // An ordering key has no other place to travel: that message carries it, and only it.
    expect(ours(keyed)).toEqual({ 'evident-ordering-key': 'claim-c-9' });
    await channel.close();
  });

  it('sends each message of a burst with its own headers', async () => {
    // The publisher lends each message's headers to one reused object while amqplib encodes
    // them (see LentHeaders): a burst sent in one turn, mixing ordering keys with and without a
    // delay, must still leave every message with its own.
    await declared('claims', ['ClaimSubmitted']);
    const sent = Array.from({ length: 120 }, (_, i) => ({
      envelope: event('ClaimSubmitted', { key: `claim-c-${i}` }),
      options: { orderingKey: `claim-c-${i}`, ...(i % 3 === 0 ? { delay: 50 } : {}) },
    }));
    await Promise.all(sent.map(({ envelope, options }) => broker.publish(envelope, options)));
    const channel = await raw.createChannel();
    const keys = new Map<string, unknown>();
    await vi.waitFor(
      async () => {
        for (;;) {
          const m = await channel.get(names.work(ns, 'claims'), { noAck: true });
          if (!m) break;
          const { data } = JSON.parse(m.content.toString()) as { data: { key: string } };
          keys.set(data.key, m.properties.headers?.['evident-ordering-key']?.toString());
        }
        expect(keys.size).toBe(sent.length);
      },
      { timeout: 10_000, interval: 100 },
    );
    for (const [key, header] of keys) expect(header).toBe(key);
    await channel.close();
  });

  it('hands the handler the topic a message was published under', async () => {
    const topics: string[] = [];
    await broker.subscribe({
      queue: 'claims',
      topics: ['claims.#'],
      handler: (_, context) => void topics.push(context.topic),
    });
    await broker.publish(event('ClaimSubmitted'), { topic: 'claims.resubmitted' });
    await vi.waitFor(() => expect(topics).toEqual(['claims.resubmitted']), { timeout: 10_000 });
  });

  it('reports the topic of a message the broker dead-lettered itself, from its routing key', async () => {
    await declared('claims', ['claims.resubmitted']);
    const sent = event('ClaimSubmitted');
    await broker.publish(sent, { topic: 'claims.resubmitted' });
    // A rejection without requeue: the work queue's dead-letter exchange takes it, as the broker
    // does with a message past its delivery limit; no adapter header is written on the way.
    const channel = await raw.createChannel();
    const message = await vi.waitFor(
      async () => {
        const m = await channel.get(names.work(ns, 'claims'), { noAck: false });
        if (!m) throw new Error('not routed yet');
        return m;
      },
      { timeout: 10_000 },
    );
    channel.nack(message, false, false);
    await vi.waitFor(async () => expect(await broker.deadLetters('claims')).toHaveLength(1), {
      timeout: 10_000,
    });
    const [dead] = await broker.deadLetters('claims');
    expect(dead).toMatchObject({ topic: 'claims.resubmitted', reason: 'delivery_limit' });
    expect(dead!.envelope).toEqual(sent);
    await channel.close();
  });

  it('acknowledges later deliveries while an earlier one is still being handled', async () => {
    // Prefetch 2: if the acknowledgements of the quick messages waited for the slow one, the
    // broker would stop delivering after the first quick message.
    let release: () => void = () => {};
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handled: number[] = [];
    await broker.subscribe({
      queue: 'claims',
      topics: ['ClaimSubmitted'],
      prefetch: 2,
      handler: async (e) => {
        const { n } = e.data as { n: number };
        if (handled.length === 0 && n === first) await slow;
        handled.push(n);
      },
    });
    const events = Array.from({ length: 6 }, () => event('ClaimSubmitted'));
    const first = (events[0]!.data as { n: number }).n;
    for (const e of events) await broker.publish(e);
    await vi.waitFor(() => expect(handled).toHaveLength(5), { timeout: 10_000 });
    expect(handled).not.toContain(first);
    release();
    await vi.waitFor(() => expect(handled).toHaveLength(6), { timeout: 10_000 });
  });

  it('leaves nothing unacknowledged after a burst, and nothing is delivered again', async () => {
    const seen = new Map<string, number>();
    const subscription = await broker.subscribe({
      queue: 'claims',
      topics: ['ClaimSubmitted'],
      prefetch: 200,
      handler: (e) => void seen.set(e.id, (seen.get(e.id) ?? 0) + 1),
    });
    const events = Array.from({ length: 500 }, () => event('ClaimSubmitted'));
    await Promise.all(events.map((e) => broker.publish(e)));
    await vi.waitFor(() => expect(seen.size).toBe(500), { timeout: 20_000 });
    type Row = { name: string; messages: number; messages_unacknowledged: number };
    await vi.waitFor(
      async () => {
        const rows = await rabbitmqctl<Row[]>(
          'list_queues',
          'name',
          'messages',
          'messages_unacknowledged',
        );
        expect(rows.find((r) => r.name === names.work(ns, 'claims'))).toMatchObject({
          messages: 0,
          messages_unacknowledged: 0,
        });
      },
      { timeout: 10_000, interval: 250 },
    );
    await subscription.close();
    await broker.subscribe({
      queue: 'claims',
      topics: ['ClaimSubmitted'],
      handler: (e) => void seen.set(e.id, (seen.get(e.id) ?? 0) + 1),
    });
    await sleep(500);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  });
});
