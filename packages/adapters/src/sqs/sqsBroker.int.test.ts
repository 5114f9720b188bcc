import type { FauxqsServer } from 'fauxqs';
import { afterAll, beforeAll, describe } from 'vitest';
import { brokerContract } from '../../test/brokerContract.js';
import { sqsFixture, startEmulator } from '../../test/sqs.js';

let server: FauxqsServer;
beforeAll(async () => {
  server = await startEmulator();
});
afterAll(async () => {
  await server?.stop();
});

describe('SQS broker', () => {
  brokerContract(
    'sqs (standard)',
    sqsFixture(() => server),
  );
  brokerContract(
    'sqs (fifo)',
    sqsFixture(() => server, { fifo: true }),
  );
});
