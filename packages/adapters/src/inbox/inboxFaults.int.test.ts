/**
 * Consumers behind the inbox with faults injected for real: an AMQP redelivery after the
 * connection dropped between the handler's commit and its acknowledgement (scenario 14), and a
 * consumer process killed with SIGKILL after its work and before its ack or delete, on RabbitMQ
 * and on SQS (scenario 15). Each time the message comes back; its effect does not happen twice.
 */
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { EventStore } from '@evident/eventstore';
import type { FauxqsServer } from 'fauxqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { postgresUrl, rabbitmqUrl } from '#test-env';
import { startConsumerProcess } from '../../test/childProcess.js';
import { event, suffix } from '../../test/fixtures.js';
import { createEffectsTable } from '../../test/inboxContract.js';
import {
  deleteNamespace,
  openConnections,
  recordingLogger,
  testNamespace,
} from '../../test/rabbitmq.js';
import { clients, deleteSqsTopology, startEmulator } from '../../test/sqs.js';
import { postgresFactory, type StoreFixture } from '../../test/store.js';
import { startTcpProxy, type TcpProxy, viaProxy } from '../../test/tcpProxy.js';
import type { Broker, MessageContext } from '../index.js';
import { createRabbitMqBroker, type RabbitMqBroker } from '../rabbitmq/index.js';
import { createSqsBroker, type SqsBroker } from '../sqs/index.js';
import { withInbox } from './index.js';

describe.skipIf(!postgresUrl)('inbox under faults', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  let effects: string;

  beforeEach(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    effects = await createEffectsTable(store);
  });
  afterEach(async () => {
    await fixture.cleanup();
  });

  const effectsOf = (id: string) =>
    store.database.query<{ consumer: string; attempt: number }>(
      `select consumer, attempt from ${effects} where event_id = $1`,
      [id],
    );

  /** The handler the child process runs too: one effect row per message, through the inbox. */
  function ledger(duplicates: { id: string; attempt: number }[]) {
    return withInbox(
      async (e, { tx, queue, attempt }) => {
        await tx.query(`insert into ${effects} values ($1, $2, $3)`, [queue, e.id, attempt]);
      },
      {
        store,
        onDuplicate: (e, { attempt }) => void duplicates.push({ id: e.id, attempt }),
      },
    );
  }

  /**
   * Kill a consumer process after it committed its work and before its acknowledgement, then
   * consume the queue again here: the message comes back and is recognised.
   */
  async function killAfterWork(
    broker: Broker,
    child: Record<string, unknown>,
    queue: string,
    type: string,
  ) {
    await (await broker.subscribe({ queue, topics: [type], handler: () => {} })).close();
    const consumer = await startConsumerProcess(
      { ...child, queue, topic: type, postgresUrl, schema: store.schema },
      'inboxConsumerProcess.ts',
    );
    await consumer.waitFor('ready');
    const sent = event(type);
    await broker.publish(sent);
    expect(await consumer.waitFor('worked')).toBe(`worked ${sent.id} 1`);
    consumer.child.kill('SIGKILL');
    expect(await consumer.exited).toBe('SIGKILL');
    expect(await effectsOf(sent.id)).toEqual([{ consumer: queue, attempt: 1 }]);
    const duplicates: { id: string; attempt: number }[] = [];
    const again = await broker.subscribe({ queue, topics: [type], handler: ledger(duplicates) });
    await vi.waitFor(() => expect(duplicates).toEqual([{ id: sent.id, attempt: 2 }]), {
      timeout: 20_000,
      interval: 100,
    });
    await again.close();
    expect(await effectsOf(sent.id)).toEqual([{ consumer: queue, attempt: 1 }]);
  }

  describe.skipIf(!rabbitmqUrl)('RabbitMQ', () => {
    const url = rabbitmqUrl!;
    let ns: string;
    let proxy: TcpProxy;
    let brokers: RabbitMqBroker[];

    const broker = (options: { url?: string } = {}) => {
      const b = createRabbitMqBroker({
        url,
        namespace: ns,
        connectionName: `evident-test:${ns}:${brokers.length}`,
        logger: recordingLogger(),
        ...options,
      });
      brokers.push(b);
      return b;
    };

    beforeEach(async () => {
      ns = testNamespace();
      brokers = [];
      proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(url).port || 5672) });
    });
    afterEach(async () => {
      await Promise.all(brokers.map((b) => b.close()));
      await proxy.close();
      await deleteNamespace(url, ns);
      await vi.waitFor(
        async () => expect(await openConnections(`evident-test:${ns}`)).toEqual([]),
        { timeout: 10_000, interval: 250 },
      );
    });

    it('skips the AMQP redelivery of a message whose ack was lost with the connection after its work committed (scenario 14)', async () => {
      const type = `ClaimAdjudicated${ns}`;
      const duplicates: { id: string; attempt: number }[] = [];
      const apply = ledger(duplicates);
      const contexts: MessageContext[] = [];
      await broker({ url: viaProxy(url, proxy) }).subscribe({
        queue: 'ledger',
        topics: [type],
        handler: async (e, context) => {
          await apply(e, context); // committed: the effect and the record of the message
          contexts.push(context);
          if (context.attempt === 1) {
            // The connection goes before the ack can: RabbitMQ will deliver it again.
            proxy.drop();
            await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
          }
        },
      });
      const sent = event(type);
      await broker().publish(sent);
      await vi.waitFor(() => expect(contexts.map((c) => c.attempt)).toEqual([1, 2]), {
        timeout: 20_000,
        interval: 100,
      });
      expect(contexts[0]!.signal.aborted).toBe(true);
      expect(duplicates).toEqual([{ id: sent.id, attempt: 2 }]);
      expect(await effectsOf(sent.id)).toEqual([{ consumer: 'ledger', attempt: 1 }]);
    });

    it('has no second effect when a consumer is killed with SIGKILL after its work and before its ack (scenario 15)', async () => {
      await killAfterWork(
        broker(),
        { kind: 'rabbitmq', url, namespace: ns },
        'adjudication',
        `ClaimAdjudicated${ns}`,
      );
    });
  });

  describe('SQS', () => {
    let server: FauxqsServer;
    let ns: string;
    let made: { broker: SqsBroker; sqs: SQSClient; sns: SNSClient }[];
    beforeAll(async () => {
      server = await startEmulator();
    });
    afterAll(async () => {
      await server?.stop();
    });
    beforeEach(() => {
      ns = `t${suffix()}`;
      made = [];
    });
    afterEach(async () => {
      for (const { broker, sqs, sns } of made) {
        await broker.close();
        await deleteSqsTopology(broker, sqs, sns).catch(() => {});
        sqs.destroy();
        sns.destroy();
      }
    });

    it('has no second effect when a consumer is killed with SIGKILL after its work and before its delete (scenario 15)', async () => {
      const c = clients(server);
      const broker = createSqsBroker({
        ...c,
        namespace: ns,
        waitTimeSeconds: 1,
        visibilityTimeoutSeconds: 2,
        logger: recordingLogger(),
      });
      made.push({ broker, ...c });
      await killAfterWork(
        broker,
        { kind: 'sqs', endpoint: server.address, namespace: ns },
        'adjudication',
        `ClaimAdjudicated${ns}`,
      );
    });
  });
});
