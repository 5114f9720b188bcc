/**
 * `pnpm --filter @evident/example-healthcare start`: bills three visits and prints what an
 * operator and an auditor would look at. In process on PGlite, or on PostgreSQL when DATABASE_URL
 * is set (the schema `evident_healthcare` is created there if missing); the outbox relay publishes
 * to an in-memory broker, or to RabbitMQ when RABBITMQ_URL is set (namespace `evident-healthcare`).
 */
import { PGlite } from '@electric-sql/pglite';
import { createRabbitMqBroker } from '@evident/adapters/rabbitmq';
import { createEventStore } from '@evident/eventstore';
import { claimIdOf, createClaimsApp } from './app.js';
import { simulatePayer } from './clearinghouse.js';
import { claimJourney, segregationOfDuties } from './reports.js';
import { lapsedCoverageVisit, orthodonticVisit, recallVisit } from './visits.js';

const url = process.env.DATABASE_URL;
const pglite = url ? undefined : new PGlite();
const store = url
  ? createEventStore({ connectionString: url, schema: 'evident_healthcare' })
  : createEventStore({ pglite: pglite! });
// The payer gateway is down for the first eligibility request: the step retries it.
const payer = simulatePayer({ outages: 1 });
// The one line that chooses the broker.
const broker = process.env.RABBITMQ_URL
  ? createRabbitMqBroker({ url: process.env.RABBITMQ_URL, namespace: 'evident-healthcare' })
  : undefined;
const app = await createClaimsApp({ store, ...payer, ...(broker ? { broker } : {}) });

for (const visit of [recallVisit, orthodonticVisit, lapsedCoverageVisit]) {
  const instance = await app.bill(visit);
  const claim = await app.claims.load(claimIdOf(visit.visitId));
  console.log(
    `\nvisit ${visit.visitId}: saga ${instance.status}, claim ${JSON.stringify(claim?.value ?? 'never drafted')}`,
  );
  for (const line of await claimJourney(store, instance.correlationId)) {
    console.log(`  ${line.recordedAt}  ${line.stream.padEnd(40)} ${line.event}  by ${line.actor}`);
  }
  const duties = await segregationOfDuties(store, claimIdOf(visit.visitId));
  console.log(
    `  segregation of duties: ${duties.separated ? 'kept' : 'BROKEN'} (submitted by ${duties.submittedBy}, posted by ${duties.postedBy})`,
  );
  await app.delivered(instance.correlationId);
}

console.log('\nbilling office feed (through the outbox relay and the broker):');
for (const entry of app.billingFeed) {
  console.log(`  ${entry.claimId}: ${entry.event} → ${JSON.stringify(entry.to)}`);
}
await app.close();
await broker?.close();
await store.close();
await pglite?.close();
