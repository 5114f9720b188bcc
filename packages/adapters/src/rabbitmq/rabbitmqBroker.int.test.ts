import { describe } from 'vitest';
import { rabbitmqUrl } from '#test-env';
import { brokerContract } from '../../test/brokerContract.js';
import { rabbitFixture, recordingLogger } from '../../test/rabbitmq.js';
import { createRabbitMqBroker } from './index.js';

describe.skipIf(!rabbitmqUrl)('RabbitMQ broker', () => {
  brokerContract(
    'rabbitmq',
    rabbitFixture(rabbitmqUrl!, (namespace, connectionName) =>
      createRabbitMqBroker({
        url: rabbitmqUrl!,
        namespace,
        connectionName,
        logger: recordingLogger(),
      }),
    ),
  );
});
