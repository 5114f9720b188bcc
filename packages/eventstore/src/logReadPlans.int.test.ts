import { watchedPool } from '@evident/devkit/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { dropSchema, event, stream, uniqueSchema } from '../test/fixtures.js';
import { createEventStore, type EventStore } from './index.js';

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
  const watched = postgresUrl ? watchedPool(postgresUrl) : undefined;
  let store: EventStore;

  beforeAll(async () => {
    store = createEventStore({ pool: watched!.pool, schema });
    await store.migrate();
  });
  afterAll(async () => {
    await store?.close();
    await watched?.pool.end();
    if (postgresUrl) await dropSchema(postgresUrl, schema);
  });

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
      const plans = await watched!.plansDuring(/order by ev\.transaction_id/, async () => {
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
