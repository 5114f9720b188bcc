import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { dropSchema, event, stream, uniqueSchema } from '../test/fixtures.js';
import { createEventStore, type EventStore } from './index.js';

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Index Name'?: string;
  readonly Plans?: readonly PlanNode[];
}

/** Every node of a plan, depth first, as `Node Type` (`Node Type on index` for index scans). */
function nodesOf(plan: PlanNode): string[] {
  const self = plan['Index Name']
    ? `${plan['Node Type']} on ${plan['Index Name']}`
    : plan['Node Type'];
  return [self, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

/**
 * A page of the global log must walk the log's index in order and stop at its limit, however far
 * behind the reader is and however old the planner's statistics. A plan made while the log was
 * empty (PostgreSQL caches one for a prepared statement after five calls) fetched and sorted every
 * event after the checkpoint on every page: a relay 20,000 events behind read 500-event pages in
 * 65–90 ms instead of about 1. The plans are the ones PostgreSQL ran, reported by auto_explain in
 * the store's only session.
 */
describe.skipIf(!postgresUrl)('reading the log on PostgreSQL', () => {
  const schema = uniqueSchema('plans');
  const notices: string[] = [];
  let pool: pg.Pool;
  let store: EventStore;

  beforeAll(async () => {
    // One connection, so every read below shares one session, its cached plans and its settings.
    pool = new pg.Pool({ connectionString: postgresUrl!, max: 1 });
    pool.on('connect', (client) => client.on('notice', (n) => notices.push(n.message ?? '')));
    store = createEventStore({ pool, schema });
    await store.migrate();
  });
  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await dropSchema(postgresUrl!, schema);
  });

  /** The plans of the statements that read the log's order, run during `action`. */
  async function logPlansDuring(action: () => Promise<unknown>): Promise<string[][]> {
    await pool.query(`load 'auto_explain'`);
    await pool.query(`set auto_explain.log_min_duration = 0;
                      set auto_explain.log_nested_statements = on;
                      set auto_explain.log_format = json;
                      set auto_explain.log_level = notice;
                      set client_min_messages = notice`);
    notices.length = 0;
    try {
      await action();
    } finally {
      await pool.query('set auto_explain.log_min_duration = -1; reset client_min_messages');
    }
    return notices
      .filter((n) => n.includes('order by ev.transaction_id'))
      .map((n) => nodesOf((JSON.parse(n.slice(n.indexOf('{'))) as { Plan: PlanNode }).Plan));
  }

  it('reads a backlog page by page in index order, whatever plan was made while the log was empty', async () => {
    // Read the empty log often enough for a generic plan to be cached, if the read had one.
    for (let i = 0; i < 8; i++) await store.readAll({ limit: 500 });
    for (let i = 0; i < 30; i++) {
      await store.appendMany(
        Array.from({ length: 10 }, () => ({
          stream: stream(),
          events: Array.from({ length: 10 }, () => event()),
          expectedVersion: 'no_stream' as const,
        })),
      );
    }

    for (const filter of [{}, { types: ['ClaimSubmitted'] }, { streamTypes: ['claim'] }]) {
      let read = 0;
      const plans = await logPlansDuring(async () => {
        read = (await store.readAll({ limit: 500, ...filter })).events.length;
      });
      expect(read).toBe(500);
      expect(plans.length).toBeGreaterThan(0);
      for (const plan of plans) {
        expect(plan, plan.join(' > ')).not.toContain('Sort');
        expect(plan, plan.join(' > ')).toContain('Index Scan on events_log_idx');
      }
    }
  });
});
