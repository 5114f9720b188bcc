/**
 * The relay contract on every broker and database: in-memory on PostgreSQL and on PGlite (the
 * embedded demo), RabbitMQ, and SQS with SNS (FIFO for ordering, standard without) on the emulator.
 */
import type { FauxqsServer } from 'fauxqs';
import { afterAll, beforeAll, describe } from 'vitest';
import { postgresUrl, rabbitmqUrl } from '#test-env';
import { rabbitFixture, recordingLogger } from '../../test/rabbitmq.js';
import { relayContract } from '../../test/relayContract.js';
import { sqsFixture, startEmulator } from '../../test/sqs.js';
import { pgliteFactory, postgresFactory } from '../../test/store.js';
import { createMemoryBroker } from '../memory/index.js';
import { createRabbitMqBroker } from '../rabbitmq/index.js';

const memory = async () => {
  const broker = createMemoryBroker();
  return {
    broker,
    publishRaw: (topic: string, body: string) => broker.publishRaw(topic, body),
    cleanup: () => broker.close(),
    backoffUnitMs: 1,
  };
};

relayContract('memory broker, PGlite', memory, pgliteFactory());

describe.skipIf(!postgresUrl)('relay on PostgreSQL', () => {
  relayContract('memory broker, PostgreSQL', memory, postgresFactory(postgresUrl!));

  describe.skipIf(!rabbitmqUrl)('RabbitMQ', () => {
    relayContract(
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
    relayContract(
      'SQS FIFO, PostgreSQL',
      sqsFixture(() => server, { fifo: true }),
      postgresFactory(postgresUrl!),
    );
    relayContract(
      'SQS standard, PostgreSQL',
      sqsFixture(() => server),
      postgresFactory(postgresUrl!),
    );
  });
});
