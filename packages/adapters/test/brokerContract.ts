/**
 * The behaviour every Broker promises, run against each adapter (in-memory, RabbitMQ, SQS with
 * SNS, SQS FIFO). A new adapter is done when this suite passes against it unchanged; what an
 * adapter cannot do is declared in `broker.capabilities`, and only those tests are skipped.
 */
import { createEnvelope, type Envelope, isEvidentError } from '@evident/envelope';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Broker,
  isBrokerError,
  type MessageContext,
  type MessageHandler,
  type SubscribeOptions,
  type Subscription,
} from '../src/index.js';
import { suffix } from './fixtures.js';

/** One broker under test and how to inject and clean up around it. */
export interface BrokerFixture {
  readonly broker: Broker;
  /** Put a body that is not a valid envelope on a topic, as a broken producer would. */
  readonly publishRaw: (topic: string, body: string) => Promise<void>;
  /** Delete everything the broker declared, close it, and throw if it leaked a connection. */
  readonly cleanup: () => Promise<void>;
  /** Smallest backoff step the broker honours (SQS rounds delays up to whole seconds). */
  readonly backoffUnitMs: number;
}

export type BrokerFactory = () => Promise<BrokerFixture>;

interface Received {
  readonly envelope: Envelope;
  readonly context: MessageContext;
  readonly at: number;
}

/** A handler that records what it receives, optionally doing `work` first. */
function recorder(work?: (envelope: Envelope, context: MessageContext) => Promise<void> | void) {
  const received: Received[] = [];
  const handler: MessageHandler = async (envelope, context) => {
    await work?.(envelope, context);
    received.push({ envelope, context, at: Date.now() });
  };
  return { received, handler };
}

let counter = 0;
function claim(type: string, data: Record<string, unknown> = {}): Envelope {
  counter += 1;
  return createEnvelope({
    type,
    data: { n: counter, ...data },
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

export function brokerContract(name: string, factory: BrokerFactory): void {
  describe(`broker contract: ${name}`, () => {
    let fixture: BrokerFixture;
    let broker: Broker;
    const open: Subscription[] = [];

    beforeAll(async () => {
      fixture = await factory();
      broker = fixture.broker;
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close({ timeoutMs: 5000 })));
    });
    afterAll(async () => {
      await fixture?.cleanup();
    });

    const wait = { timeout: 20_000, interval: 25 };
    const unique = (base: string) => `${base}_${suffix()}`;

    async function subscribe(options: SubscribeOptions): Promise<Subscription> {
      const subscription = await broker.subscribe(options);
      open.push(subscription);
      return subscription;
    }

    it('delivers a published envelope to the queue bound to its type, as a decoded copy with attempt 1', async () => {
      const type = unique('ClaimSubmitted');
      const queue = unique('q');
      const { received, handler } = recorder();
      await subscribe({ queue, topics: [type], handler });
      const sent = claim(type, { payer: 'delta-dental' });
      await broker.publish(sent);
      await vi.waitFor(() => expect(received).toHaveLength(1), wait);
      const [first] = received;
      expect(first!.envelope).toEqual(sent);
      expect(first!.envelope).not.toBe(sent);
      expect(first!.context).toMatchObject({ attempt: 1, topic: type, queue });
      expect(first!.context.messageId).toEqual(expect.any(String));
      expect(first!.context.signal.aborted).toBe(false);
    });

    it('routes by topic: each queue receives only the topics it is bound to', async () => {
      const submitted = unique('ClaimSubmitted');
      const denied = unique('ClaimDenied');
      const a = recorder();
      const b = recorder();
      await subscribe({ queue: unique('qa'), topics: [submitted], handler: a.handler });
      await subscribe({ queue: unique('qb'), topics: [denied], handler: b.handler });
      await broker.publish(claim(submitted));
      await broker.publish(claim(denied));
      await broker.publish(claim(submitted), { topic: denied });
      await vi.waitFor(() => {
        expect(a.received).toHaveLength(1);
        expect(b.received).toHaveLength(2);
      }, wait);
      expect(a.received[0]!.context.topic).toBe(submitted);
      expect(b.received.map((r) => r.context.topic)).toEqual([denied, denied]);
      await sleep(300);
      expect(a.received).toHaveLength(1);
    });

    it('fans one message out to every queue bound to its topic', async () => {
      const type = unique('EligibilityVerified');
      const a = recorder();
      const b = recorder();
      await subscribe({ queue: unique('billing'), topics: [type], handler: a.handler });
      await subscribe({ queue: unique('scheduling'), topics: [type], handler: b.handler });
      const sent = claim(type);
      await broker.publish(sent);
      await vi.waitFor(() => {
        expect(a.received.map((r) => r.envelope.id)).toEqual([sent.id]);
        expect(b.received.map((r) => r.envelope.id)).toEqual([sent.id]);
      }, wait);
    });

    it('shares one queue between two subscriptions: each message is handled once', async () => {
      const type = unique('ClaimSubmitted');
      const queue = unique('shared');
      const a = recorder();
      const b = recorder();
      await subscribe({ queue, topics: [type], handler: a.handler });
      await subscribe({ queue, topics: [type], handler: b.handler });
      const sent = Array.from({ length: 10 }, () => claim(type));
      await Promise.all(sent.map((e) => broker.publish(e)));
      await vi.waitFor(() => expect(a.received.length + b.received.length).toBe(sent.length), wait);
      await sleep(300);
      const ids = [...a.received, ...b.received].map((r) => r.envelope.id).sort();
      expect(ids).toEqual(sent.map((e) => e.id).sort());
    });

    it('keeps messages published while no consumer runs for the next subscription of the queue', async () => {
      const type = unique('ClaimSubmitted');
      const queue = unique('durable');
      const first = await subscribe({ queue, topics: [type], handler: () => {} });
      await first.close();
      const sent = claim(type);
      await broker.publish(sent);
      const { received, handler } = recorder();
      await subscribe({ queue, topics: [type], handler });
      await vi.waitFor(() => expect(received.map((r) => r.envelope.id)).toEqual([sent.id]), wait);
    });

    it('retries a failing handler with growing backoff and increasing attempt numbers, then acknowledges', async () => {
      const type = unique('EligibilityRequested');
      const attempts: number[] = [];
      const times: number[] = [];
      const { received, handler } = recorder((_, context) => {
        attempts.push(context.attempt);
        times.push(Date.now());
        if (context.attempt < 3) throw new Error('payer portal timed out');
      });
      const initialMs = Math.max(200, fixture.backoffUnitMs);
      await subscribe({
        queue: unique('retry'),
        topics: [type],
        handler,
        retry: { attempts: 4, backoff: { initialMs, factor: 2, maxMs: 10_000 } },
      });
      await broker.publish(claim(type));
      await vi.waitFor(() => expect(received).toHaveLength(1), { ...wait, timeout: 30_000 });
      expect(attempts).toEqual([1, 2, 3]);
      expect(received[0]!.context.attempt).toBe(3);
      // Lower bounds only: a retry never comes before its delay; how much later is the machine's.
      const unit = fixture.backoffUnitMs;
      const rounded = (ms: number) => Math.ceil(ms / unit) * unit;
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(rounded(initialMs) * 0.8);
      expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(rounded(initialMs * 2) * 0.8);
      await sleep(300);
      expect(attempts).toEqual([1, 2, 3]);
    });

    it('dead-letters a message after its last attempt with the error name, code and message', async () => {
      const type = unique('ClaimAdjudicated');
      const queue = unique('poison');
      const calls: number[] = [];
      class PayerRejectedError extends Error {
        readonly code = 'PAYER_REJECTED';
        override readonly name = 'PayerRejectedError';
      }
      await subscribe({
        queue,
        topics: [type],
        handler: (_, context) => {
          calls.push(context.attempt);
          throw new PayerRejectedError('payer rejected the claim format');
        },
        retry: { attempts: 2, backoff: { initialMs: fixture.backoffUnitMs > 1 ? 1000 : 50 } },
      });
      const sent = claim(type);
      await broker.publish(sent);
      await vi.waitFor(async () => expect(await broker.deadLetters(queue)).toHaveLength(1), {
        ...wait,
        timeout: 30_000,
      });
      const [dead] = await broker.deadLetters(queue);
      expect(dead).toMatchObject({
        queue,
        topic: type,
        reason: 'handler_failed',
        attempts: 2,
        error: {
          name: 'PayerRejectedError',
          code: 'PAYER_REJECTED',
          message: 'payer rejected the claim format',
        },
      });
      expect(dead!.envelope).toEqual(sent);
      expect(calls).toEqual([1, 2]);
      await sleep(300);
      expect(calls).toEqual([1, 2]);
      // Reading dead letters leaves them where they are.
      expect(await broker.deadLetters(queue)).toHaveLength(1);
    });

    it('dead-letters a malformed message without calling the handler, with a typed reason', async () => {
      const type = unique('ClaimSubmitted');
      const queue = unique('malformed');
      const { received, handler } = recorder();
      await subscribe({ queue, topics: [type], handler });
      await fixture.publishRaw(type, '{"id":"not-a-uuid","type":42}');
      await fixture.publishRaw(type, 'not json at all');
      await vi.waitFor(async () => expect(await broker.deadLetters(queue)).toHaveLength(2), wait);
      const dead = await broker.deadLetters(queue);
      expect(dead.map((d) => d.reason)).toEqual(['malformed_message', 'malformed_message']);
      expect(dead.map((d) => d.error.code).sort()).toEqual([
        'INVALID_ARGUMENT',
        'PAYLOAD_MALFORMED',
      ]);
      expect(dead.every((d) => d.envelope === undefined)).toBe(true);
      expect(dead.map((d) => d.body).sort()).toEqual([
        'not json at all',
        '{"id":"not-a-uuid","type":42}',
      ]);
      expect(received).toEqual([]);
    });

    it('hands messages with the same ordering key to the handler one at a time, in publish order', async (ctx) => {
      if (!broker.capabilities.ordering) ctx.skip();
      const type = unique('ClaimEvent');
      const keys = ['claim-1', 'claim-2', 'claim-3'];
      const running = new Set<string>();
      let overlapped = false;
      const { received, handler } = recorder(async (envelope) => {
        const key = (envelope.data as { key: string }).key;
        if (running.has(key)) overlapped = true;
        running.add(key);
        await sleep(Math.random() * 20);
        running.delete(key);
      });
      await subscribe({ queue: unique('ordered'), topics: [type], handler, prefetch: 10 });
      const sent = Array.from({ length: 30 }, (_, i) => claim(type, { key: keys[i % 3], seq: i }));
      for (const e of sent) {
        await broker.publish(e, { orderingKey: (e.data as { key: string }).key });
      }
      await vi.waitFor(() => expect(received).toHaveLength(sent.length), wait);
      for (const key of keys) {
        const seqs = received
          .filter((r) => (r.envelope.data as { key: string }).key === key)
          .map((r) => (r.envelope.data as { seq: number }).seq);
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
        expect(seqs).toHaveLength(10);
      }
      expect(overlapped).toBe(false);
    });

    it('delivers urgent messages before routine ones on a priority queue', async (ctx) => {
      if (!broker.capabilities.priority) ctx.skip();
      const type = unique('ToothacheReported');
      const queue = unique('triage');
      const declare = await subscribe({ queue, topics: [type], handler: () => {}, maxPriority: 9 });
      await declare.close();
      const routine = Array.from({ length: 5 }, () => claim(type, { urgent: false }));
      const urgent = Array.from({ length: 5 }, () => claim(type, { urgent: true }));
      for (const e of routine) await broker.publish(e, { priority: 1 });
      for (const e of urgent) await broker.publish(e, { priority: 8 });
      const { received, handler } = recorder();
      await subscribe({ queue, topics: [type], handler, maxPriority: 9, prefetch: 1 });
      await vi.waitFor(() => expect(received).toHaveLength(10), wait);
      expect(received.map((r) => (r.envelope.data as { urgent: boolean }).urgent)).toEqual([
        ...Array(5).fill(true),
        ...Array(5).fill(false),
      ]);
    });

    it('delivers a message once when it is published twice with the same deduplication id', async (ctx) => {
      if (!broker.capabilities.deduplication) ctx.skip();
      const type = unique('ClaimSubmitted');
      const { received, handler } = recorder();
      await subscribe({ queue: unique('dedupe'), topics: [type], handler });
      const sent = claim(type);
      const other = claim(type);
      await broker.publish(sent);
      await broker.publish(sent); // a relay retrying after a lost confirm
      await broker.publish(other, { deduplicationId: `retry-of-${other.id}` });
      await broker.publish(other, { deduplicationId: `retry-of-${other.id}` });
      await vi.waitFor(() => expect(received).toHaveLength(2), wait);
      await sleep(500);
      expect(received.map((r) => r.envelope.id).sort()).toEqual([sent.id, other.id].sort());
    });

    it('delays a message published with a delay', async (ctx) => {
      if (!broker.capabilities.delay) ctx.skip();
      const type = unique('ReminderDue');
      const { received, handler } = recorder();
      await subscribe({ queue: unique('delayed'), topics: [type], handler });
      const start = Date.now();
      await broker.publish(claim(type), { delay: 600 });
      await vi.waitFor(() => expect(received).toHaveLength(1), wait);
      expect(received[0]!.at - start).toBeGreaterThanOrEqual(500);
    });

    it('refuses a delay it cannot honour with UNSUPPORTED_OPTION instead of delivering early', async (ctx) => {
      if (broker.capabilities.delay) ctx.skip();
      const error = await rejection(broker.publish(claim('ReminderDue'), { delay: 600 }));
      expect(isBrokerError(error, 'UNSUPPORTED_OPTION')).toBe(true);
    });

    it('close waits for handlers in flight, which are acknowledged and not redelivered', async () => {
      const type = unique('ClaimSubmitted');
      const queue = unique('drain');
      let started = 0;
      let finished = 0;
      const subscription = await broker.subscribe({
        queue,
        topics: [type],
        handler: async () => {
          started += 1;
          await sleep(400);
          finished += 1;
        },
      });
      await broker.publish(claim(type));
      await broker.publish(claim(type));
      await vi.waitFor(() => expect(started).toBe(2), wait);
      await subscription.close();
      expect(finished).toBe(2);
      const again = recorder();
      await subscribe({ queue, topics: [type], handler: again.handler });
      await sleep(fixture.backoffUnitMs > 1 ? 2000 : 500);
      expect(again.received).toEqual([]);
    });

    it('refuses a payload over the size limit with PAYLOAD_TOO_LARGE before sending', async () => {
      const error = await rejection(
        broker.publish(claim(unique('XrayAttached'), { image: 'x'.repeat(2 * 1024 * 1024) })),
      );
      expect(isEvidentError(error, 'PAYLOAD_TOO_LARGE')).toBe(true);
    });

    it('refuses bad topics, queue names and options with INVALID_ARGUMENT', async () => {
      const bad = [
        broker.publish(claim('ClaimSubmitted'), { topic: 'has space' }),
        broker.publish(claim('ClaimSubmitted'), { priority: -1 }),
        broker.publish(claim('ClaimSubmitted'), { orderingKey: '' }),
        broker.subscribe({ queue: 'no.dots', topics: ['ClaimSubmitted'], handler: () => {} }),
        broker.subscribe({ queue: unique('q'), topics: [], handler: () => {} }),
        broker.subscribe({ queue: unique('q'), topics: ['a..b'], handler: () => {} }),
        broker.subscribe({
          queue: unique('q'),
          topics: ['ClaimSubmitted'],
          handler: () => {},
          retry: { attempts: 0 },
        }),
      ];
      for (const call of bad) {
        expect(isEvidentError(await rejection(call), 'INVALID_ARGUMENT')).toBe(true);
      }
    });

    it('reports itself ready while its server answers, with its subscriptions, and not after close', async () => {
      const other = await factory();
      try {
        expect(await other.broker.ready()).toEqual({
          ready: true,
          checks: { connection: { ok: true }, subscriptions: 0 },
        });
        const type = unique('ClaimSubmitted');
        await other.broker.subscribe({ queue: unique('q'), topics: [type], handler: () => {} });
        expect(await other.broker.ready()).toMatchObject({
          ready: true,
          checks: { subscriptions: 1 },
        });
        await other.broker.close();
        expect(await other.broker.ready()).toMatchObject({
          ready: false,
          checks: { connection: { ok: false, error: 'BROKER_CLOSED' } },
        });
      } finally {
        await other.cleanup();
      }
    });

    it('refuses to publish or subscribe after close with BROKER_CLOSED', async () => {
      const other = await factory();
      try {
        await other.broker.close();
        const type = unique('ClaimSubmitted');
        expect(
          isBrokerError(await rejection(other.broker.publish(claim(type))), 'BROKER_CLOSED'),
        ).toBe(true);
        const subscribing = other.broker.subscribe({
          queue: unique('q'),
          topics: [type],
          handler: () => {},
        });
        expect(isBrokerError(await rejection(subscribing), 'BROKER_CLOSED')).toBe(true);
      } finally {
        await other.cleanup();
      }
    });
  });
}
