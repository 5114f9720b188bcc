import { dropSchema, watchedPool } from '@evident/devkit/postgres';
import { createEventStore, type EventStore } from '@evident/eventstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { uniqueSchema } from '../test/fixtures.js';
import { createSagaRuntime, defineSaga, migrateSagas, type SagaRuntime } from './index.js';

const noop = defineSaga<{ n: number }>('noop', { version: 1 }).step('only', { run: () => null });

/**
 * A claim must walk the due index and stop at its limit, however many instances are due and
 * however old the planner's statistics: a plan cached while the table was empty fetched and
 * sorted every due instance on every claim (100,000 due: 123 ms and a sort spilled to disk per
 * claim of 16). The plans are the ones PostgreSQL ran, reported by auto_explain in the store's
 * only session.
 */
describe.skipIf(!postgresUrl)('claiming due instances on PostgreSQL', () => {
  const schema = uniqueSchema('claims');
  const watched = postgresUrl ? watchedPool(postgresUrl) : undefined;
  let store: EventStore;
  let runtime: SagaRuntime;

  beforeAll(async () => {
    store = createEventStore({ pool: watched!.pool, schema });
    await store.migrate();
    await migrateSagas(store);
    runtime = createSagaRuntime({ store, sagas: [noop], workers: false });
  });
  afterAll(async () => {
    await runtime?.stop();
    await store?.close();
    await watched?.pool.end();
    if (postgresUrl) await dropSchema(postgresUrl, schema);
  });

  it('walks the due index, whatever plan was made while nothing was due', async () => {
    // Claim from the empty table often enough for a generic plan to be cached, if the claim had one.
    for (let i = 0; i < 8; i++) expect(await runtime.drain()).toBe(0);
    for (let n = 0; n < 40; n++) await runtime.start('noop', { n }, { id: `noop-${n}` });

    const plans = await watched!.plansDuring(/order by (i\.)?due_at/, async () => {
      expect(await runtime.drain({ limit: 1 })).toBe(1);
    });
    expect(plans.length).toBeGreaterThan(0);
    for (const plan of plans) {
      expect(plan, plan.join(' > ')).not.toContain('Sort');
      expect(plan, plan.join(' > ')).toContain('Index Scan on saga_instances_due_idx');
    }
    // The rest are claimed and run as before.
    expect(await runtime.drain()).toBe(39);
  });
});
