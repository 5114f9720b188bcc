/**
 * The inbox on every broker and database (scenario 14: duplicates delivered; the effect happens
 * once), and on PostgreSQL: two deliveries of one message at the same moment, a redelivery weeks
 * later, the application role's rights, the reviewed schema, pruning.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isEvidentError } from '@evident/envelope';
import { applicationRole, createEventStore, type EventStore } from '@evident/eventstore';
import type { FauxqsServer } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { postgresUrl, rabbitmqUrl } from '#test-env';
import { dumpOwnSchema } from '../../scripts/schemaDump.js';
import { event, sleep } from '../../test/fixtures.js';
import { createEffectsTable, inboxContract } from '../../test/inboxContract.js';
import {
  cleanupBroker,
  rabbitFixture,
  recordingLogger,
  testNamespace,
} from '../../test/rabbitmq.js';
import { sqsFixture, startEmulator } from '../../test/sqs.js';
import { pgliteFactory, postgresFactory, type StoreFixture } from '../../test/store.js';
import type { MessageContext } from '../index.js';
import { createMemoryBroker } from '../memory/index.js';
import { createRabbitMqBroker } from '../rabbitmq/index.js';
import { migrateInbox, pruneInbox, withInbox } from './index.js';

const memory = async () => {
  const broker = createMemoryBroker();
  return {
    broker,
    publishRaw: (topic: string, body: string) => broker.publishRaw(topic, body),
    cleanup: () => broker.close(),
    backoffUnitMs: 1,
  };
};

inboxContract('memory broker, PGlite', memory, pgliteFactory());

describe.skipIf(!postgresUrl)('inbox on PostgreSQL', () => {
  inboxContract('memory broker, PostgreSQL', memory, postgresFactory(postgresUrl!));

  describe.skipIf(!rabbitmqUrl)('RabbitMQ', () => {
    inboxContract(
      'RabbitMQ, PostgreSQL',
      rabbitFixture(rabbitmqUrl!, (namespace, connectionName) =>
        createRabbitMqBroker({
          url: rabbitmqUrl!,
          namespace,
          connectionName,
          logger: recordingLogger(),
        }),
      ),
      postgresFactory(postgresUrl!),
    );
  });

  describe('SQS', () => {
    let server: FauxqsServer;
    beforeAll(async () => {
      server = await startEmulator();
    });
    afterAll(async () => {
      await server?.stop();
    });
    inboxContract(
      'SQS standard, PostgreSQL',
      sqsFixture(() => server),
      postgresFactory(postgresUrl!),
    );
    inboxContract(
      'SQS FIFO, PostgreSQL',
      sqsFixture(() => server, { fifo: true }),
      postgresFactory(postgresUrl!),
    );
  });

  describe('withInbox', () => {
    let fixture: StoreFixture;
    let store: EventStore;
    let effects: string;

    beforeAll(async () => {
      fixture = await postgresFactory(postgresUrl!)();
      store = fixture.store;
      effects = await createEffectsTable(store);
    });
    afterAll(async () => {
      await fixture?.cleanup();
    });

    const context = (queue: string, attempt = 1): MessageContext => ({
      attempt,
      messageId: randomUUID(),
      topic: 'ClaimSubmitted',
      queue,
      signal: new AbortController().signal,
    });
    const count = async (id: string) =>
      Number(
        (
          await store.database.query<{ n: string }>(
            `select count(*) as n from ${effects} where event_id = $1`,
            [id],
          )
        )[0]!.n,
      );

    it("lets two deliveries of one message at the same moment make one effect: the second waits on the first's row, then skips", async () => {
      const sent = event();
      let runs = 0;
      let firstCommitted = false;
      const seenAfterCommit: boolean[] = [];
      const handler = withInbox(
        async (e, { tx }) => {
          runs += 1;
          await tx.query(`insert into ${effects} values ('ledger', $1, 1)`, [e.id]);
          await sleep(200); // both deliveries are in flight now
        },
        { store, consumer: 'ledger', onDuplicate: () => void seenAfterCommit.push(firstCommitted) },
      );
      const first = handler(sent, context('q')).then(() => {
        firstCommitted = true;
      });
      await sleep(50);
      const second = handler(sent, context('q'));
      await Promise.all([first, second]);
      expect(runs).toBe(1);
      expect(seenAfterCommit).toEqual([true]);
      expect(await count(sent.id)).toBe(1);
    });

    it('lets the waiting delivery do the work when the first one fails and rolls back', async () => {
      const sent = event();
      const outcomes: string[] = [];
      const handler = withInbox(
        async (e, { tx, attempt }) => {
          await tx.query(`insert into ${effects} values ('ledger', $1, $2)`, [e.id, attempt]);
          await sleep(200);
          if (attempt === 1) throw new Error('payer portal timed out');
        },
        { store, consumer: 'ledger' },
      );
      const first = handler(sent, context('q', 1)).then(
        () => outcomes.push('first done'),
        () => outcomes.push('first failed'),
      );
      await sleep(50);
      const second = handler(sent, context('q', 2)).then(() => outcomes.push('second done'));
      await Promise.all([first, second]);
      expect(outcomes).toEqual(['first failed', 'second done']);
      expect(
        await store.database.query(`select attempt from ${effects} where event_id = $1`, [sent.id]),
      ).toEqual([{ attempt: 2 }]);
    });

    it("skips a redelivery that comes weeks after SQS's 5-minute de-duplication window", async () => {
      const sent = event();
      let runs = 0;
      const handler = withInbox(
        async (e, { tx }) => {
          runs += 1;
          await tx.query(`insert into ${effects} values ('ledger', $1, 1)`, [e.id]);
        },
        { store },
      );
      await handler(sent, context('ledger'));
      await store.database.query(
        `update "${store.schema}".inbox set processed_at = now() - interval '30 days'
         where event_id = $1`,
        [sent.id],
      );
      await handler(sent, context('ledger', 2));
      expect(runs).toBe(1);
      expect(await count(sent.id)).toBe(1);
    });

    it('hands the handler the delivery context with the transaction added', async () => {
      const seen: unknown[] = [];
      const original = context('claims', 3);
      await withInbox(
        (_, c) => {
          seen.push({ ...c, tx: typeof c.tx.query });
        },
        { store },
      )(event(), original);
      expect(seen).toEqual([{ ...original, tx: 'function' }]);
    });

    it('prunes records older than a date, of one consumer or of all', async () => {
      const handler = (consumer: string) => withInbox(() => {}, { store, consumer });
      const old = [event(), event(), event()];
      await handler('prune-a')(old[0]!, context('x'));
      await handler('prune-b')(old[1]!, context('x'));
      await handler('prune-b')(old[2]!, context('x'));
      const fresh = event();
      await handler('prune-a')(fresh, context('x'));
      await store.database.query(
        `update "${store.schema}".inbox set processed_at = now() - interval '50 days'
         where event_id = any($1::uuid[])`,
        [old.map((e) => e.id)],
      );
      // Older than every other test's records (the oldest is 30 days).
      const sixWeeksAgo = new Date(Date.now() - 42 * 24 * 60 * 60 * 1000);
      expect(await pruneInbox(store, { olderThan: sixWeeksAgo, consumer: 'prune-a' })).toBe(1);
      expect(await pruneInbox(store, { olderThan: sixWeeksAgo, batchSize: 1 })).toBe(2);
      const left = await store.database.query<{ event_id: string }>(
        `select event_id from "${store.schema}".inbox where consumer like 'prune-%'`,
      );
      expect(left.map((r) => r.event_id)).toEqual([fresh.id]);
    });

    it('refuses a missing handler, a foreign store and a bad consumer name with INVALID_ARGUMENT', async () => {
      const bad = [
        () => withInbox(undefined as never, { store }),
        () => withInbox(() => {}, { store: {} as never }),
        () => withInbox(() => {}, { store, consumer: 'no spaces; or quotes"' }),
        () => withInbox(() => {}, { store, consumer: '' }),
      ];
      for (const call of bad) {
        let error: unknown;
        try {
          call();
        } catch (e) {
          error = e;
        }
        expect(isEvidentError(error, 'INVALID_ARGUMENT')).toBe(true);
      }
      await expect(pruneInbox(store, { olderThan: new Date('nope') })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    });

    it('matches the checked-in schema dump, so every schema change shows in review', async () => {
      const checkedIn = await readFile(
        fileURLToPath(new URL('../../sql/schema.sql', import.meta.url)),
        'utf8',
      );
      expect(await dumpOwnSchema(postgresUrl!, store.schema)).toBe(checkedIn);
    });

    it('migrates once: a second run applies nothing', async () => {
      expect(await migrateInbox(store)).toEqual({ applied: [] });
    });

    it('lets the application role record and check messages, but not remove the record of them', async () => {
      const login = `${store.schema}_svc`;
      await store.database.query(
        `create role "${login}" login in role "${applicationRole(store.schema)}"`,
      );
      const url = new URL(postgresUrl!);
      url.username = login;
      const service = createEventStore({
        connectionString: url.toString(),
        schema: store.schema,
        poolSize: 2,
      });
      try {
        let runs = 0;
        const handler = withInbox(
          () => {
            runs += 1;
          },
          { store: service },
        );
        const sent = event();
        await handler(sent, context('ledger'));
        await handler(sent, context('ledger', 2));
        expect(runs).toBe(1);
        await expect(
          service.database.query(`delete from "${store.schema}".inbox`),
        ).rejects.toMatchObject({ code: '42501' });
        await expect(
          pruneInbox(service, { olderThan: new Date(Date.now() + 60_000) }),
        ).rejects.toMatchObject({ code: '42501' });
      } finally {
        await service.close();
        await store.database.query(`drop role if exists "${login}"`);
      }
    });
  });

  describe.skipIf(!rabbitmqUrl)('two competing RabbitMQ consumers', () => {
    it('apply a message delivered to both at the same moment once', async () => {
      const url = rabbitmqUrl!;
      const ns = testNamespace();
      const connectionName = `evident-test:${ns}`;
      const broker = createRabbitMqBroker({
        url,
        namespace: ns,
        connectionName,
        logger: recordingLogger(),
      });
      const fixture = await postgresFactory(postgresUrl!)();
      try {
        const store = fixture.store;
        const effects = await createEffectsTable(store);
        const type = `ClaimSubmitted${ns}`;
        let runs = 0;
        let duplicates = 0;
        const handler = withInbox(
          async (e, { tx, queue }) => {
            runs += 1;
            await tx.query(`insert into ${effects} values ($1, $2, 1)`, [queue, e.id]);
            await sleep(200);
          },
          {
            store,
            onDuplicate: () => {
              duplicates += 1;
            },
          },
        );
        // Two subscriptions of one queue: RabbitMQ hands the two copies to one each, at once.
        for (let i = 0; i < 2; i++) {
          await broker.subscribe({ queue: 'ledger', topics: [type], prefetch: 1, handler });
        }
        const sent = event(type);
        await Promise.all([broker.publish(sent), broker.publish(sent)]);
        await vi.waitFor(() => expect(runs + duplicates).toBe(2), { timeout: 20_000 });
        expect(runs).toBe(1);
        const rows = await store.database.query(`select * from ${effects}`);
        expect(rows).toHaveLength(1);
      } finally {
        await cleanupBroker(url, broker, connectionName);
        await fixture.cleanup();
      }
    });
  });
});
