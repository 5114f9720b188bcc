// biome-ignore-all assist/source/organizeImports: the usage region must read like the README's block
// #region outbox
import { PGlite } from '@electric-sql/pglite';
import { migrateInbox, withInbox } from '@evident/adapters/inbox';
import { createMemoryBroker } from '@evident/adapters/memory';
import { relay } from '@evident/adapters/relay';
import { createEnvelope } from '@evident/envelope';
import { createEventStore } from '@evident/eventstore';

const store = createEventStore({ pglite: new PGlite() }); // or { connectionString }
await store.migrate();
await migrateInbox(store); // once, as the schema's owner
await store.database.exec('create table ledger (claim_id text primary key, allowed int)');

const broker = createMemoryBroker(); // or createRabbitMqBroker({ url }), createSqsBroker({ sqs, sns })
await broker.subscribe({
  queue: 'claims-ledger',
  topics: ['ClaimAdjudicated'],
  // Each event's effect once: a redelivered or republished copy finds its inbox row and skips.
  handler: withInbox(
    async (event, { tx }) => {
      const { claimId, allowed } = event.data as { claimId: string; allowed: number };
      await tx.query('insert into ledger values ($1, $2)', [claimId, allowed]);
    },
    { store },
  ),
});

// The event store is the outbox: whatever is appended gets published, in order per stream.
const outbox = relay({ store, broker, subscriptionName: 'claims-outbox' });
const adjudicated = createEnvelope({
  type: 'ClaimAdjudicated',
  data: { claimId: 'CLM-000123', allowed: 110 },
  source: 'billing-service',
  actor: { id: 'staff-17', role: 'billing-clerk' },
});
const { checkpoint } = await store.append({ type: 'claim', id: 'CLM-000123' }, [adjudicated], {
  expectedVersion: 'any',
});
await outbox.waitFor(checkpoint); // the broker has confirmed it
await outbox.stop();
await broker.close(); // drains the handler in flight
// #endregion outbox

import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

it('runs the README outbox block, which is this file’s region verbatim', () => {
  const source = readFileSync(new URL(import.meta.url), 'utf8');
  const region = source.split('// #region outbox\n')[1]!.split('// #endregion outbox')[0]!;
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const after = readme.split('<!-- usage: src/readmeOutbox.int.test.ts')[1]!;
  const block = after.split('```ts\n')[1]!.split('```')[0]!;
  expect(block).toBe(region);
});

it('has recorded the adjudicated claim once, and skips the same event published again', async () => {
  expect(await store.database.query('select * from ledger')).toEqual([
    { claim_id: 'CLM-000123', allowed: 110 },
  ]);
  const again = createMemoryBroker();
  await again.subscribe({
    queue: 'claims-ledger',
    topics: ['ClaimAdjudicated'],
    handler: withInbox(
      async (_, { tx }) => {
        await tx.query("insert into ledger values ('CLM-000123', 110)");
      },
      { store },
    ),
  });
  await again.publish(adjudicated);
  await again.close();
  expect(await store.database.query('select count(*)::int as n from ledger')).toEqual([{ n: 1 }]);
  await store.close();
});
