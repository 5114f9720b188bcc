/**
 * What the outbox relay promises, run against each broker (in-memory, RabbitMQ, SQS FIFO, SQS
 * standard) and each database (PostgreSQL, PGlite): every event of the log published, in order per
 * stream, checkpointed only once the broker confirmed it, failures retried without the checkpoint
 * moving, unpublishable events parked.
 */
import { type Envelope, PayloadError } from '@evident/envelope';
import type { Checkpoint, EventStore } from '@evident/eventstore';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Broker,
  BrokerError,
  type MessageHandler,
  type SubscribeOptions,
  type Subscription,
} from '../src/index.js';
import { type Relay, type RelayOptions, relay } from '../src/relay/index.js';
import type { BrokerFactory, BrokerFixture } from './brokerContract.js';
import { suffix } from './fixtures.js';
import { instrument } from './instrumentedBroker.js';
import { recordingLogger } from './rabbitmq.js';
import { appendClaims, claimEvent, claimStream, firstSeen, type StoreFactory } from './store.js';

const wait = { timeout: 30_000, interval: 25 };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function relayContract(name: string, brokers: BrokerFactory, stores: StoreFactory): void {
  describe(`relay contract: ${name}`, () => {
    let fixture: BrokerFixture;
    let broker: Broker;
    let store: EventStore;
    let cleanupStore: () => Promise<void>;
    const open: Subscription[] = [];
    const relays: Relay[] = [];

    beforeAll(async () => {
      fixture = await brokers();
      broker = fixture.broker;
      const s = await stores();
      store = s.store;
      cleanupStore = s.cleanup;
    });
    afterEach(async () => {
      await Promise.all(relays.splice(0).map((r) => r.stop()));
      await Promise.all(open.splice(0).map((s) => s.close({ timeoutMs: 5000 })));
    });
    afterAll(async () => {
      await Promise.all(relays.splice(0).map((r) => r.stop()));
      await fixture?.cleanup();
      await cleanupStore?.();
    });

    const unique = (base: string) => `${base}_${suffix()}`;

    function start(options: Partial<RelayOptions> & { types: string[] }): Relay {
      const { types, ...rest } = options;
      const r = relay({
        store,
        broker,
        subscriptionName: `relay-${suffix()}`,
        filter: { types },
        pollIntervalMs: 200,
        takeoverIntervalMs: 100,
        logger: recordingLogger(),
        ...rest,
      });
      relays.push(r);
      return r;
    }

    async function consume(
      topics: string[],
      options: Partial<SubscribeOptions> = {},
    ): Promise<Envelope[]> {
      const received: Envelope[] = [];
      const handler: MessageHandler = (e) => void received.push(e);
      open.push(
        await broker.subscribe({
          queue: unique('relayed'),
          topics,
          prefetch: 20,
          handler,
          ...options,
        }),
      );
      return received;
    }

    /**
     * The log position of one event, found by id. Waits for it to be readable: other suites' open
     * transactions can hold the log's horizon for a few milliseconds after an append.
     */
    async function checkpointOf(id: string, type: string): Promise<Checkpoint> {
      for (const deadline = Date.now() + 10_000; ; ) {
        const { events } = await store.readAll({ types: [type], limit: 1000 });
        const found = events.find((e) => e.id === id);
        if (found) return found.checkpoint;
        if (Date.now() > deadline) throw new Error('the event did not become readable in 10 s');
        await sleep(5);
      }
    }

    it('publishes every event of the log as it was produced, in order per stream, once the broker confirmed it', async () => {
      const type = unique('ClaimSubmitted');
      const received = await consume([type]);
      const { events, checkpoint, streams } = await appendClaims(store, {
        streams: 10,
        perStream: 10,
        type,
      });
      const r = start({ types: [type] });
      await r.waitFor(checkpoint, { timeoutMs: 30_000 });
      const status = await r.status();
      expect(status.state).toBe('active');
      expect(status.checkpoint >= checkpoint).toBe(true);
      expect(status.published).toBeGreaterThanOrEqual(events.length);
      expect(status.publishFailures).toBe(0);
      await vi.waitFor(() => expect(new Set(received.map((e) => e.id)).size).toBe(100), wait);
      // The envelope as produced: where the store recorded it is not part of the message.
      const byId = new Map(received.map((e) => [e.id, e]));
      for (const e of events) expect(byId.get(e.id)).toEqual(e);
      if (broker.capabilities.ordering) {
        const order = firstSeen(received);
        for (const id of streams) expect(order.get(id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      }
    });

    it('publishes only what the filter lets through, to the topic topicOf names', async () => {
      const submitted = unique('ClaimSubmitted');
      const denied = unique('ClaimDenied');
      const billing = await consume([`billing.${submitted}`]);
      const plain = await consume([submitted, denied]);
      await appendClaims(store, { streams: 3, perStream: 2, type: submitted });
      const b = await appendClaims(store, { streams: 3, perStream: 2, type: denied });
      const r = start({ types: [submitted], topicOf: (e) => `billing.${e.type}` });
      await r.waitFor(b.checkpoint); // appended after a's
      await vi.waitFor(() => expect(new Set(billing.map((e) => e.id)).size).toBe(6), wait);
      expect(billing.every((e) => e.type === submitted)).toBe(true);
      await sleep(300);
      expect(plain).toEqual([]);
    });

    it('resumes from its checkpoint: events appended while no relay ran are published by the next relay of the name', async () => {
      const type = unique('EligibilityVerified');
      const received = await consume([type]);
      const name = `relay-${suffix()}`;
      const first = await appendClaims(store, { streams: 4, perStream: 3, type });
      const r1 = start({ types: [type], subscriptionName: name });
      await r1.waitFor(first.checkpoint);
      await r1.stop();
      const second = await appendClaims(store, { streams: 4, perStream: 3, type });
      const r2 = start({ types: [type], subscriptionName: name });
      await r2.waitFor(second.checkpoint);
      await vi.waitFor(() => {
        for (const e of [...first.events, ...second.events])
          expect(received.map((x) => x.id)).toContain(e.id);
      }, wait);
      expect((await r2.status()).checkpoint >= second.checkpoint).toBe(true);
    });

    it('keeps one active relay per name: the standby takes over when the active one stops', async () => {
      const type = unique('ClaimSubmitted');
      const received = await consume([type]);
      const name = `relay-${suffix()}`;
      const a = start({ types: [type], subscriptionName: name });
      const b = start({ types: [type], subscriptionName: name });
      await vi.waitFor(
        () => expect([a.state, b.state].sort()).toEqual(['active', 'standby']),
        wait,
      );
      const [active, standby] = a.state === 'active' ? [a, b] : [b, a];
      const first = await appendClaims(store, { streams: 2, perStream: 2, type });
      await active.waitFor(first.checkpoint);
      await active.stop();
      const second = await appendClaims(store, { streams: 2, perStream: 2, type });
      await standby.waitFor(second.checkpoint, { timeoutMs: 30_000 });
      expect(standby.state).toBe('active');
      await vi.waitFor(() => expect(new Set(received.map((e) => e.id)).size).toBe(8), wait);
    });

    it('publishes different streams concurrently, up to maxInFlight, and one event at a time per stream', async () => {
      const type = unique('ClaimSubmitted');
      const slow = instrument(broker, () => sleep(20));
      const { checkpoint, events } = await appendClaims(store, { streams: 12, perStream: 4, type });
      const r = start({ types: [type], broker: slow, maxInFlight: 8 });
      await r.waitFor(checkpoint);
      expect(slow.calls.filter((c) => c.outcome === 'confirmed')).toHaveLength(events.length);
      expect(slow.keyOverlapped).toBe(false);
      expect(slow.maxInFlight).toBeLessThanOrEqual(8);
      // PGlite has one session: the relay cannot read ahead while a checkpoint is open.
      if (store.database.kind === 'pglite') expect(slow.maxInFlight).toBe(1);
      else expect(slow.maxInFlight).toBeGreaterThan(4);
    });

    it('reads each event from the log once: the relay reads and its subscription takes its pages from the relay', async () => {
      const type = unique('ClaimSubmitted');
      const { checkpoint, events } = await appendClaims(store, {
        streams: 40,
        perStream: 15,
        type,
        concurrency: 20,
      });
      // Every readAll of this store (the relay's reads ahead and its subscription's pages).
      const readAll = store.readAll;
      let read = 0;
      store.readAll = async (options) => {
        const page = await readAll.call(store, options);
        read += page.events.length;
        return page;
      };
      try {
        // Pages of 50 and a window of 20: pages larger than the window, each event read before
        // the subscription asks for it or when it does, never both.
        const r = start({ types: [type], batchSize: 50, maxInFlight: 20 });
        await r.waitFor(checkpoint, { timeoutMs: 30_000 });
      } finally {
        store.readAll = readAll;
      }
      // Twice as many when the subscription read every page again; more than once each when the
      // subscription read a page the relay then read again to fill its window.
      expect(read).toBe(events.length);
    });

    it('checkpoints on stop what the broker confirmed, so the next relay of the name sends it again only where a stream had a publish in flight', async () => {
      const type = unique('ClaimSubmitted');
      const { events, checkpoint } = await appendClaims(store, { streams: 3, perStream: 10, type });
      const name = `relay-${suffix()}`;
      const slow = instrument(broker, () => sleep(30));
      const first = start({ types: [type], subscriptionName: name, broker: slow, maxInFlight: 4 });
      await vi.waitFor(() => expect(slow.calls.length).toBeGreaterThanOrEqual(10), wait);
      await first.stop();
      const before = new Set(slow.calls.filter((c) => c.outcome === 'confirmed').map((c) => c.id));
      expect(before.size).toBeLessThan(events.length);
      const again = instrument(broker);
      const second = start({ types: [type], subscriptionName: name, broker: again });
      await second.waitFor(checkpoint);
      const republished = again.calls.filter((c) => before.has(c.id));
      // At most one confirmed-but-not-checkpointed event per stream with a publish in flight.
      expect(republished.length).toBeLessThanOrEqual(3);
      const all = new Set([...before, ...again.calls.map((c) => c.id)]);
      expect(all.size).toBe(events.length);
    });

    it('never checkpoints past a publish the broker has not confirmed, even when later ones are', async (ctx) => {
      // On PGlite the waiting publish holds the only session: status() would wait for it.
      if (store.database.kind === 'pglite') ctx.skip();
      const type = unique('ClaimAdjudicated');
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const { events, checkpoint } = await appendClaims(store, { streams: 6, perStream: 4, type });
      const held = events[8]!; // stream 3's second event
      const heldAt = await checkpointOf(held.id, type);
      const gated = instrument(broker, (e) => (e.id === held.id ? gate : undefined));
      const r = start({ types: [type], broker: gated, batchSize: 5 });
      await vi.waitFor(() => expect(gated.calls.length).toBeGreaterThanOrEqual(8), wait);
      await sleep(500);
      const { checkpoint: stuck } = await r.status();
      expect(stuck < heldAt).toBe(true);
      release();
      await r.waitFor(checkpoint);
      expect(gated.calls.map((c) => c.id)).toContain(held.id);
    });

    it('retries a rejected publish with backoff, keeps its checkpoint before it meanwhile, and sends nothing of its stream ahead of it', async () => {
      const type = unique('ClaimSubmitted');
      const logger = recordingLogger();
      const { events, checkpoint } = await appendClaims(store, { streams: 3, perStream: 5, type });
      const rejected = events[7]!; // stream 2's third event
      let refusals = 0;
      const flaky = instrument(broker, (e) => {
        if (e.id === rejected.id && refusals < 3) {
          refusals += 1;
          throw new BrokerError('PUBLISH_REJECTED', 'RabbitMQ refused the message (nack)');
        }
      });
      const rejectedAt = await checkpointOf(rejected.id, type);
      const r = start({
        types: [type],
        broker: flaky,
        logger,
        backoff: { initialMs: 100, factor: 2, maxMs: 400 },
      });
      // (On PGlite the retrying relay holds the only session: status() would wait for it.)
      if (store.database.kind !== 'pglite') {
        await vi.waitFor(() => expect(refusals).toBeGreaterThanOrEqual(2), wait);
        expect((await r.status()).checkpoint < rejectedAt).toBe(true);
      }
      await r.waitFor(checkpoint);
      const status = await r.status();
      expect(status.publishFailures).toBe(3);
      expect(status.lastPublishError).toMatchObject({
        name: 'BrokerError',
        code: 'PUBLISH_REJECTED',
      });
      expect(status.parked).toBe(0);
      expect(
        logger.lines.filter((l) => l.message === 'relay publish failed; retrying'),
      ).toHaveLength(3);
      // The stream's confirmed publishes, in order: 3 went before 4 and 5 were even tried.
      const stream = (rejected.data as { stream: string }).stream;
      const ofStream = flaky.calls.filter((c) => (c.data as { stream: string }).stream === stream);
      expect(ofStream.map((c) => `${(c.data as { seq: number }).seq}:${c.outcome}`)).toEqual([
        '1:confirmed',
        '2:confirmed',
        '3:failed',
        '3:failed',
        '3:failed',
        '3:confirmed',
        '4:confirmed',
        '5:confirmed',
      ]);
      // Nothing confirmed was sent twice.
      const confirmed = flaky.calls.filter((c) => c.outcome === 'confirmed').map((c) => c.id);
      expect(new Set(confirmed).size).toBe(confirmed.length);
      expect(confirmed).toHaveLength(events.length);
    });

    it('parks an event the broker can never take, relays the rest, and publishes it when retried', async () => {
      const type = unique('XrayAttached');
      const received = await consume([type]);
      const stream = claimStream();
      const big = claimEvent(type, { stream: stream.id, seq: 1 });
      const after = claimEvent(type, { stream: stream.id, seq: 2 });
      const other = await appendClaims(store, { streams: 2, perStream: 2, type });
      const { checkpoint } = await store.append(stream, [big, after], {
        expectedVersion: 'no_stream',
      });
      let limit = 'refuse';
      const picky = instrument(broker, (e) => {
        if (e.id === big.id && limit === 'refuse') {
          throw new PayloadError('PAYLOAD_TOO_LARGE', 'serialized envelope exceeds 262144 bytes');
        }
      });
      const r = start({ types: [type], broker: picky });
      await r.waitFor(checkpoint!);
      const parked = await r.parked();
      expect(parked).toHaveLength(1);
      expect(parked[0]).toMatchObject({
        eventId: big.id,
        eventType: type,
        error: { name: 'PayloadError', code: 'PAYLOAD_TOO_LARGE' },
      });
      expect((await r.status()).parked).toBe(1);
      await vi.waitFor(() => {
        const ids = received.map((e) => e.id);
        for (const e of [...other.events, after]) expect(ids).toContain(e.id);
      }, wait);
      expect(received.map((e) => e.id)).not.toContain(big.id);
      limit = 'accept';
      await r.retryParked(parked[0]!.id);
      expect(await r.parked()).toEqual([]);
      await vi.waitFor(() => expect(received.map((e) => e.id)).toContain(big.id), wait);
    });

    it("stops at an unpublishable event with unpublishable: 'stop', checkpointed just before it", async () => {
      const type = unique('ClaimSubmitted');
      const { events } = await appendClaims(store, { streams: 1, perStream: 4, type });
      const poison = events[2]!;
      const r = start({
        types: [type],
        unpublishable: 'stop',
        topicOf: (e) => {
          if (e.id === poison.id) throw new TypeError('no topic for this claim');
          return e.type;
        },
      });
      await vi.waitFor(() => expect(r.state).toBe('failed'), wait);
      const status = await r.status();
      // Past the events before it (and maybe other suites' events between), never past it.
      expect(status.checkpoint >= (await checkpointOf(events[1]!.id, type))).toBe(true);
      expect(status.checkpoint < (await checkpointOf(poison.id, type))).toBe(true);
      expect(status.lastPublishError).toMatchObject({ name: 'TypeError' });
      expect(status.parked).toBe(0);
    });
  });
}
