import { dropSchema } from '@evident/devkit/postgres';
import { createEventStore, type EventStore } from '@evident/eventstore';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { uniqueSchema } from '../test/fixtures.js';
import { createSagaRuntime, defineSaga, migrateSagas, type SagaRuntime } from './index.js';

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Index Name'?: string;
  readonly Plans?: readonly PlanNode[];
}

/** Every node of a plan, depth first (`Node Type on index` for index scans). */
function nodesOf(plan: PlanNode): string[] {
  const self = plan['Index Name']
    ? `${plan['Node Type']} on ${plan['Index Name']}`
    : plan['Node Type'];
  return [self, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

const noop = defineSaga<{ n: number }>('noop', { version: 1 }).step('only', { run: () => null });

/**
 * A claim must walk the due index and stop at its limit, however many instances are due and
 * however old the planner's statistics: a plan cached while the table was empty fetched and
 * sorted every due instance on every claim (100,000 due: 123 ms and a sort spilled to disk per
 * claim of 16). The plans are the ones PostgreSQL ran, reported by auto_explain in the only
 * session of the store.
 */
describe.skipIf(!postgresUrl)('claiming due instances on PostgreSQL', () => {
  const schema = uniqueSchema('claims');
  const notices: string[] = [];
  let pool: pg.Pool;
  let store: EventStore;
  let runtime: SagaRuntime;

  beforeAll(async () => {
    // One connection: every claim below shares one session, its cached plans and its settings.
    pool = new pg.Pool({ connectionString: postgresUrl!, max: 1 });
    pool.on('connect', (client) => client.on('notice', (n) => notices.push(n.message ?? '')));
    store = createEventStore({ pool, schema });
    await store.migrate();
    await migrateSagas(store);
    runtime = createSagaRuntime({ store, sagas: [noop], workers: false });
  });
  afterAll(async () => {
    await runtime?.stop();
    await store?.close();
    await pool?.end();
    await dropSchema(postgresUrl!, schema);
  });

  it('walks the due index, whatever plan was made while nothing was due', async () => {
    // Claim from the empty table often enough for a generic plan to be cached, if the claim had one.
    for (let i = 0; i < 8; i++) expect(await runtime.drain()).toBe(0);
    for (let n = 0; n < 40; n++) await runtime.start('noop', { n }, { id: `noop-${n}` });

    await pool.query(`load 'auto_explain'`);
    await pool.query(`set auto_explain.log_min_duration = 0;
                      set auto_explain.log_nested_statements = on;
                      set auto_explain.log_format = json;
                      set auto_explain.log_level = notice;
                      set client_min_messages = notice`);
    notices.length = 0;
    try {
      expect(await runtime.drain({ limit: 1 })).toBe(1);
    } finally {
      await pool.query('set auto_explain.log_min_duration = -1; reset client_min_messages');
    }
    const plans = notices
      .filter((n) => /order by (i\.)?due_at/.test(n))
      .map((n) => nodesOf((JSON.parse(n.slice(n.indexOf('{'))) as { Plan: PlanNode }).Plan));
    expect(plans.length).toBeGreaterThan(0);
    for (const plan of plans) {
      expect(plan, plan.join(' > ')).not.toContain('Sort');
      expect(plan, plan.join(' > ')).toContain('Index Scan on saga_instances_due_idx');
    }
    // The rest are claimed and run as before.
    expect(await runtime.drain()).toBe(39);
  });
});
