/**
 * What the inbox promises on every broker and database: a message delivered twice has one
 * database effect, a failed handler leaves no record (so the retry does the work), and each
 * consumer records its own.
 */
import type { Envelope } from '@evident/envelope';
import type { EventStore } from '@evident/eventstore';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { withInbox } from '../src/inbox/index.js';
import type { Broker, MessageContext, Subscription } from '../src/index.js';
import type { BrokerFactory, BrokerFixture } from './brokerContract.js';
import { event, sleep, suffix } from './fixtures.js';
import type { StoreFactory } from './store.js';

const wait = { timeout: 30_000, interval: 50 };

/** A table of effects without any uniqueness: a second effect would be a second row. */
export async function createEffectsTable(store: EventStore): Promise<string> {
  const table = `"${store.schema}".effects`;
  await store.database.exec(
    `create table ${table} (consumer text not null, event_id uuid not null, attempt int not null)`,
  );
  return table;
}

export function inboxContract(name: string, brokers: BrokerFactory, stores: StoreFactory): void {
  describe(`inbox contract: ${name}`, () => {
    let fixture: BrokerFixture;
    let broker: Broker;
    let store: EventStore;
    let effects: string;
    let cleanupStore: () => Promise<void>;
    const open: Subscription[] = [];

    beforeAll(async () => {
      fixture = await brokers();
      broker = fixture.broker;
      const s = await stores();
      store = s.store;
      cleanupStore = s.cleanup;
      effects = await createEffectsTable(store);
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close({ timeoutMs: 5000 })));
    });
    afterAll(async () => {
      await fixture?.cleanup();
      await cleanupStore?.();
    });

    const unique = (base: string) => `${base}_${suffix()}`;

    async function effectsOf(id: string): Promise<{ consumer: string; attempt: number }[]> {
      return store.database.query(
        `select consumer, attempt from ${effects} where event_id = $1 order by attempt`,
        [id],
      );
    }

    /** Subscribe a handler that records one effect per message through the inbox. */
    async function consume(
      queue: string,
      topic: string,
      options: { fail?: (e: Envelope, c: MessageContext) => boolean; consumer?: string } = {},
    ) {
      const calls: { id: string; attempt: number }[] = [];
      const duplicates: { id: string; attempt: number }[] = [];
      open.push(
        await broker.subscribe({
          queue,
          topics: [topic],
          retry: { attempts: 5, backoff: { initialMs: fixture.backoffUnitMs > 1 ? 1000 : 50 } },
          handler: withInbox(
            async (e, context) => {
              calls.push({ id: e.id, attempt: context.attempt });
              await context.tx.query(
                `insert into ${effects} (consumer, event_id, attempt) values ($1, $2, $3)`,
                [options.consumer ?? context.queue, e.id, context.attempt],
              );
              if (options.fail?.(e, context)) throw new Error('payer portal timed out');
            },
            {
              store,
              ...(options.consumer ? { consumer: options.consumer } : {}),
              onDuplicate: (e, context) =>
                void duplicates.push({ id: e.id, attempt: context.attempt }),
            },
          ),
        }),
      );
      return { calls, duplicates };
    }

    it('applies a message published twice once: the second delivery is recognised and skipped', async () => {
      const type = unique('ClaimSubmitted');
      const queue = unique('ledger');
      const { calls, duplicates } = await consume(queue, type);
      const sent = event(type);
      // Distinct de-duplication ids get both copies past brokers that de-duplicate (SQS FIFO,
      // memory): what a producer retrying on its own would do.
      await broker.publish(sent, { deduplicationId: `first-${sent.id}` });
      await vi.waitFor(() => expect(calls).toHaveLength(1), wait);
      await broker.publish(sent, { deduplicationId: `second-${sent.id}` });
      await vi.waitFor(() => expect(duplicates).toHaveLength(1), wait);
      expect(calls).toHaveLength(1);
      expect(await effectsOf(sent.id)).toEqual([{ consumer: queue, attempt: 1 }]);
    });

    it('keeps no record of a failed attempt, so the retry does the work, once', async () => {
      const type = unique('EligibilityRequested');
      const queue = unique('eligibility');
      const { calls, duplicates } = await consume(queue, type, {
        fail: (_, context) => context.attempt < 3,
      });
      const sent = event(type);
      await broker.publish(sent);
      await vi.waitFor(() => expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3]), wait);
      await sleep(300);
      // Attempts 1 and 2 rolled back with their effect; only attempt 3's is left.
      expect(await effectsOf(sent.id)).toEqual([{ consumer: queue, attempt: 3 }]);
      expect(duplicates).toEqual([]);
    });

    it('records per consumer: two queues receiving the same event each apply it once', async () => {
      const type = unique('ClaimAdjudicated');
      const billingQueue = unique('billing');
      const billing = await consume(billingQueue, type);
      const audit = await consume(unique('audit'), type, { consumer: 'claims-audit' });
      const sent = event(type);
      await broker.publish(sent, { deduplicationId: `a-${sent.id}` });
      await broker.publish(sent, { deduplicationId: `b-${sent.id}` });
      await vi.waitFor(() => {
        expect(billing.calls.length + billing.duplicates.length).toBe(2);
        expect(audit.calls.length + audit.duplicates.length).toBe(2);
      }, wait);
      const applied = await effectsOf(sent.id);
      expect(applied.map((a) => a.consumer).sort()).toEqual([billingQueue, 'claims-audit'].sort());
    });
  });
}
