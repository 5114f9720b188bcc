import { createEventStore } from '@evident/eventstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { dropSchema, postgresFactory, type StoreFixture, uniqueSchema } from '../test/fixtures.js';
import { createSagaRuntime, defineSaga } from './index.js';

const noop = defineSaga<{ n: number }>('noop', { version: 1 }).step('only', { run: () => null });

describe.skipIf(!postgresUrl)('readiness of a saga runtime', () => {
  let fixture: StoreFixture;
  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });

  it('is ready when the database answers, the tables are migrated and the workers claim', async () => {
    const runtime = createSagaRuntime({ store: fixture.store, sagas: [noop], workers: 4 });
    try {
      expect(await runtime.ready()).toEqual({
        ready: true,
        checks: {
          database: { ok: true },
          migrations: { ok: true, pending: [] },
          workers: { ok: true, running: 0, concurrency: 4 },
        },
      });
    } finally {
      await runtime.stop();
    }
    expect(await runtime.ready()).toMatchObject({
      ready: false,
      checks: { database: { ok: true }, workers: { ok: false, error: 'STOPPED' } },
    });
  });

  it('needs no workers when created without them', async () => {
    const client = createSagaRuntime({ store: fixture.store, sagas: [noop], workers: false });
    expect(await client.ready()).toMatchObject({
      ready: true,
      checks: { workers: { ok: true, running: 0, concurrency: 0 } },
    });
    await client.stop();
  });

  it('names the saga migrations still to apply', async () => {
    const schema = uniqueSchema();
    const store = createEventStore({ connectionString: postgresUrl!, schema, poolSize: 2 });
    await store.migrate();
    const runtime = createSagaRuntime({ store, sagas: [noop], workers: false });
    try {
      expect(await runtime.ready()).toEqual({
        ready: false,
        checks: {
          database: { ok: true },
          migrations: {
            ok: false,
            pending: [
              '0001_init',
              '0002_start_with_first_step',
              '0003_short_trigger_condition',
              '0004_claim_walks_the_due_index',
            ],
          },
          workers: { ok: true, running: 0, concurrency: 0 },
        },
      });
    } finally {
      await runtime.stop();
      await store.close();
      await dropSchema(postgresUrl!, schema);
    }
  });

  it('reports an unreachable database, and a worker whose claims fail, without throwing', async () => {
    const store = createEventStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/evident_test',
      schema: uniqueSchema(),
      poolSize: 1,
    });
    const runtime = createSagaRuntime({
      store,
      sagas: [noop],
      workers: { concurrency: 1, pollInterval: 50 },
    });
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(await runtime.ready()).toEqual({
        ready: false,
        checks: {
          database: { ok: false, error: 'ECONNREFUSED' },
          migrations: {
            ok: false,
            pending: [
              '0001_init',
              '0002_start_with_first_step',
              '0003_short_trigger_condition',
              '0004_claim_walks_the_due_index',
            ],
          },
          workers: { ok: false, running: 0, concurrency: 1, error: 'CLAIM_FAILING' },
        },
      });
    } finally {
      await runtime.stop();
      await store.close();
    }
  });
});
