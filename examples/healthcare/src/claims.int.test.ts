/**
 * The claim lifecycle end to end, as the demo runs it: the event store, the claim machine, the
 * saga and the outbox relay together, on PGlite and on the real PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import type { Broker } from '@evident/adapters';
import { createRabbitMqBroker, type RabbitMqBroker } from '@evident/adapters/rabbitmq';
import { dropSchema } from '@evident/devkit/postgres';
import { createEventStore, type EventStore } from '@evident/eventstore';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl, rabbitmqUrl } from '#test-env';
import { type ClaimsApp, claimIdOf, createClaimsApp } from './app.js';
import { type SimulatedPayer, simulatePayer } from './clearinghouse.js';
import { claimJourney, segregationOfDuties } from './reports.js';
import { lapsedCoverageVisit, orthodonticVisit, recallVisit } from './visits.js';

interface Backend {
  readonly name: string;
  open(): Promise<{ store: EventStore; broker?: Broker; close(): Promise<void> }>;
}

/** A RabbitMQ broker in a namespace of its own, and a close that deletes what it declared. */
function rabbitmqBroker(url: string): { broker: RabbitMqBroker; close(): Promise<void> } {
  const broker = createRabbitMqBroker({
    url,
    namespace: `healthcare-${randomBytes(4).toString('hex')}`,
  });
  return {
    broker,
    async close() {
      const { exchanges, queues } = broker.topology();
      await broker.close();
      const connection = await amqp.connect(url);
      const channel = await connection.createChannel();
      for (const queue of queues) await channel.deleteQueue(queue);
      for (const exchange of exchanges) await channel.deleteExchange(exchange);
      await connection.close();
    },
  };
}

const backends: Backend[] = [
  {
    name: 'PGlite',
    async open() {
      const pglite = new PGlite();
      const store = createEventStore({ pglite });
      return {
        store,
        async close() {
          await store.close();
          await pglite.close();
        },
      };
    },
  },
];
const url = postgresUrl;
if (url) {
  const postgres = (schema: string) => {
    const store = createEventStore({ connectionString: url, schema });
    return { store, close: () => store.close().then(() => dropSchema(url, schema)) };
  };
  backends.push({
    name: 'PostgreSQL',
    async open() {
      return postgres(`example_healthcare_${randomBytes(4).toString('hex')}`);
    },
  });
  const amqpUrl = rabbitmqUrl;
  if (amqpUrl) {
    // The one line an integrator changes to move from the memory broker to RabbitMQ.
    backends.push({
      name: 'PostgreSQL, relaying to RabbitMQ',
      async open() {
        const database = postgres(`example_healthcare_${randomBytes(4).toString('hex')}`);
        const rabbitmq = rabbitmqBroker(amqpUrl);
        return {
          store: database.store,
          broker: rabbitmq.broker,
          async close() {
            await rabbitmq.close();
            await database.close();
          },
        };
      },
    });
  }
}

describe.each(backends)('billing a visit, on $name', (backend) => {
  let store: EventStore;
  let close: () => Promise<void>;
  let payer: SimulatedPayer;
  let app: ClaimsApp;

  beforeAll(async () => {
    const opened = await backend.open();
    ({ store, close } = opened);
    payer = simulatePayer({ outages: 1 });
    app = await createClaimsApp({
      store,
      ...payer,
      ...(opened.broker ? { broker: opened.broker } : {}),
    });
  });

  afterAll(async () => {
    await app?.close();
    await close?.();
  });

  const types = (events: readonly { type: string }[]) => events.map((e) => e.type);

  it('pays a covered recall visit and posts the payment, retrying the payer through its outage', async () => {
    const instance = await app.bill(recallVisit);
    expect(instance.status).toBe('completed');
    const claim = await app.claims.load(claimIdOf(recallVisit.visitId));
    expect(claim?.value).toBe('posted');
    // 80% of 65.00 + 110.00, on the claim and on the ledger.
    expect(claim?.context).toMatchObject({ billedCents: 17_500, paidCents: 14_000 });
    expect(payer.postings.get(claimIdOf(recallVisit.visitId))).toBe(14_000);
    // The eligibility request failed once (503) and was repeated with the same idempotency key.
    expect(payer.eligibilityAttempts).toHaveLength(2);
    expect(new Set(payer.eligibilityAttempts).size).toBe(1);
  });

  it("tells the claim's whole journey across its streams, in the order of the log", async () => {
    const instance = await app.runtime.get(`claim-lifecycle-${recallVisit.visitId}`);
    const events = await store.readByCorrelation(instance!.correlationId);
    const streams = new Set(events.map((e) => `${e.stream.type}/${e.stream.id}`));
    expect(streams).toEqual(
      new Set(['saga/claim-lifecycle-v-1001', 'encounter/v-1001', 'claim/claim-v-1001']),
    );
    const checkpoints = events.map((e) => e.checkpoint);
    expect(checkpoints).toEqual([...checkpoints].sort());
    const journey = await claimJourney(store, instance!.correlationId);
    expect(journey.map((line) => line.event)).toEqual(
      expect.arrayContaining([
        'SagaStarted',
        'StepFailed verifyEligibility (PayerUnavailable)',
        'ChargesCaptured',
        'SUBMIT: "draft" → "submitted"',
        'POST: "paid" → "posted"',
        'SagaCompleted',
      ]),
    );
    const submit = journey.find((line) => line.event.startsWith('SUBMIT'));
    expect(submit?.actor).toBe('u-17 (billing-clerk)');
  });

  it('puts a denied claim on hold and flags the encounter, deleting nothing', async () => {
    const instance = await app.bill(orthodonticVisit);
    expect(instance.status).toBe('compensated');
    const claim = await app.claims.load(claimIdOf(orthodonticVisit.visitId));
    expect(claim?.value).toBe('onHold');
    expect(claim?.context.denialReason).toBe('CARC 197');
    const transitions = await store.readStream({ type: 'claim', id: claimIdOf('v-1002') });
    expect(transitions.map((e) => (e.data as { event: { type: string } }).event.type)).toEqual([
      'xstate.init',
      'SUBMIT',
      'ACCEPT',
      'DENY',
      'HOLD',
    ]);
    const encounter = await store.readStream({ type: 'encounter', id: 'v-1002' });
    expect(types(encounter)).toEqual(['ChargesCaptured', 'EncounterFlaggedForBillingReview']);
    expect(payer.postings.has(claimIdOf('v-1002'))).toBe(false);
  });

  it('stops a visit with lapsed coverage before anything is captured or submitted', async () => {
    const submitted = payer.calls.get('submit') ?? 0;
    const instance = await app.bill(lapsedCoverageVisit);
    expect(instance.status).toBe('compensated');
    expect(instance.lastError).toMatchObject({ name: 'CoverageInactive' });
    expect(await app.claims.load(claimIdOf(lapsedCoverageVisit.visitId))).toBeUndefined();
    expect(await store.readStream({ type: 'encounter', id: 'v-1003' })).toEqual([]);
    expect(payer.calls.get('submit') ?? 0).toBe(submitted);
  });

  it('bills a visit once, however often it is submitted', async () => {
    const before = await store.readStream({ type: 'claim', id: claimIdOf('v-1001') });
    const again = await app.bill(recallVisit);
    expect(again.status).toBe('completed');
    expect(payer.calls.get('post')).toBe(1);
    expect(await store.readStream({ type: 'claim', id: claimIdOf('v-1001') })).toHaveLength(
      before.length,
    );
  });

  it('reports segregation of duties kept, and broken when one person submits and posts', async () => {
    expect(await segregationOfDuties(store, claimIdOf('v-1001'))).toEqual({
      claim: 'claim-v-1001',
      submittedBy: 'u-17',
      postedBy: 'u-42',
      separated: true,
    });
    const sameClerk = { ...recallVisit, visitId: 'v-1004', postedBy: recallVisit.submittedBy };
    expect((await app.bill(sameClerk)).status).toBe('completed');
    expect(await segregationOfDuties(store, claimIdOf('v-1004'))).toMatchObject({
      separated: false,
    });
  });

  it("publishes the claims' transitions to the billing office through the outbox relay", async () => {
    for (const visit of ['v-1001', 'v-1002']) {
      const instance = await app.runtime.get(`claim-lifecycle-${visit}`);
      await app.delivered(instance!.correlationId);
    }
    const feed = (claimId: string) =>
      app.billingFeed.filter((entry) => entry.claimId === claimId).map((entry) => entry.event);
    expect(feed('claim-v-1001')).toEqual(['xstate.init', 'SUBMIT', 'ACCEPT', 'PAY', 'POST']);
    expect(feed('claim-v-1002')).toEqual(['xstate.init', 'SUBMIT', 'ACCEPT', 'DENY', 'HOLD']);
  });
});
