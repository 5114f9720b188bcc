// biome-ignore-all assist/source/organizeImports: the usage region must read like the README's block
// #region usage
import { createMemoryBroker } from '@evident/adapters/memory';
import { createEnvelope } from '@evident/envelope';

const broker = createMemoryBroker(); // or createRabbitMqBroker({ url }), createSqsBroker({ sqs, sns })
await broker.subscribe({
  queue: 'claims-adjudication',
  topics: ['ClaimSubmitted'],
  retry: { attempts: 3, backoff: { initialMs: 50 } },
  handler: async (claim, { attempt }) => {
    console.log(`adjudicating ${claim.id}, attempt ${attempt}`);
  },
});
const submitted = createEnvelope({
  type: 'ClaimSubmitted',
  data: { claimId: 'CLM-000123', payerId: 'delta-dental' },
  source: 'billing-service',
  actor: { id: 'staff-17', role: 'billing-clerk' },
});
await broker.publish(submitted); // resolves once the broker has accepted the message
await broker.close(); // drains the handler in flight
// #endregion usage

import { readFileSync } from 'node:fs';
import { expect, it, vi } from 'vitest';

it('runs the README usage block, which is this file’s region verbatim', () => {
  const source = readFileSync(new URL(import.meta.url), 'utf8');
  const region = source.split('// #region usage\n')[1]!.split('// #endregion usage')[0]!;
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = readme.split('```ts\n')[1]!.split('```')[0]!;
  expect(block).toBe(region);
});

it('has handled the published claim by the time close() resolved', async () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  const b = createMemoryBroker();
  await b.subscribe({ queue: 'q', topics: ['ClaimSubmitted'], handler: (c) => console.log(c.id) });
  await b.publish(submitted);
  await b.close();
  expect(log).toHaveBeenCalledWith(submitted.id);
  log.mockRestore();
});
