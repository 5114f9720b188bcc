/**
 * The app assembled: one event store (PostgreSQL, or PGlite in process), the claim machine, the
 * claim lifecycle saga, and the outbox relay publishing every event to a broker where the billing
 * office's feed subscribes to claim transitions. Swap `createMemoryBroker()` for
 * `createRabbitMqBroker(...)` or `createSqsBroker(...)` and nothing else changes.
 */

import type { Broker } from '@evident/adapters';
import { createMemoryBroker } from '@evident/adapters/memory';
import { type Relay, relay } from '@evident/adapters/relay';
import type { Envelope } from '@evident/envelope';
import type { EventStore } from '@evident/eventstore';
import {
  createSagaRuntime,
  migrateSagas,
  type SagaInstance,
  type SagaRuntime,
} from '@evident/saga';
import {
  createDurableMachine,
  type DurableMachine,
  migrateStateMachines,
} from '@evident/statemachines';
import { claimMachine } from './claim.js';
import { claimIdOf, claimLifecycle, type VisitCharges } from './claimLifecycle.js';
import type { Clearinghouse, Ledger } from './clearinghouse.js';

export interface ClaimsAppOptions {
  readonly store: EventStore;
  readonly clearinghouse: Clearinghouse;
  readonly ledger: Ledger;
  /** Where the outbox relay publishes. @defaultValue an in-memory broker */
  readonly broker?: Broker;
}

/** What the billing office's feed received: each claim transition, in order per claim. */
export interface FeedEntry {
  readonly eventId: string;
  readonly claimId: string;
  readonly event: string;
  readonly to: unknown;
}

export interface ClaimsApp {
  readonly claims: DurableMachine<typeof claimMachine>;
  readonly runtime: SagaRuntime;
  readonly outbox: Relay;
  /** Claim transitions as the billing office's subscriber received them from the broker. */
  readonly billingFeed: readonly FeedEntry[];
  /** Start the claim lifecycle for a visit and wait until it ends; idempotent by visit. */
  bill(visit: VisitCharges): Promise<SagaInstance>;
  /**
   * Wait until the billing office's feed has every claim transition of the workflow: the relay
   * has published them and the broker delivered them.
   * @throws Error after `timeoutMs` (default 10000)
   */
  delivered(correlationId: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function createClaimsApp(options: ClaimsAppOptions): Promise<ClaimsApp> {
  const { store, clearinghouse, ledger } = options;
  await store.migrate();
  await migrateStateMachines(store);
  await migrateSagas(store);

  const claims = createDurableMachine(claimMachine, { store, streamType: 'claim' });
  const runtime = createSagaRuntime({
    store,
    sagas: [claimLifecycle({ store, claims, clearinghouse, ledger })],
    actor: { id: 'claims-workflow', role: 'system' },
  });

  const broker = options.broker ?? createMemoryBroker();
  const billingFeed: FeedEntry[] = [];
  await broker.subscribe({
    queue: 'billing-office',
    topics: ['claim.#'],
    handler: (event: Envelope, context) => {
      const { event: cause, to } = event.data as { event: { type: string }; to: unknown };
      billingFeed.push({
        eventId: event.id,
        claimId: context.topic.split('.')[1]!,
        event: cause.type,
        to,
      });
    },
  });
  // Topics say which stream an event is of: `claim.<claim id>.StateTransitioned`.
  const outbox = relay({
    store,
    broker,
    subscriptionName: 'claims-outbox',
    topicOf: (event) => `${event.stream.type}.${event.stream.id}.${event.type}`,
  });

  return {
    claims,
    runtime,
    outbox,
    billingFeed,
    async bill(visit) {
      const { id } = await runtime.start('claim-lifecycle', visit, {
        id: `claim-lifecycle-${visit.visitId}`,
        actor: visit.submittedBy,
      });
      return runtime.waitUntil(id, { timeout: '1m' });
    },
    async delivered(correlationId, timeoutMs = 10_000) {
      const events = await store.readByCorrelation(correlationId);
      const last = events[events.length - 1];
      if (last) await outbox.waitFor(last.checkpoint, { timeoutMs });
      const expected = events.filter((e) => e.stream.type === 'claim').map((e) => e.id);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const seen = new Set(billingFeed.map((entry) => entry.eventId));
        if (expected.every((id) => seen.has(id))) return;
        if (Date.now() > deadline)
          throw new Error('the billing office did not receive the claim in time');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      await outbox.stop();
      await runtime.stop();
      if (!options.broker) await broker.close();
    },
  };
}

export { claimIdOf };
