/**
 * A consumer behind the inbox in its own process, for tests that kill it with SIGKILL after its
 * work and before its acknowledgement. Arguments: one JSON object
 * { kind: 'rabbitmq' | 'sqs', url | endpoint, namespace, queue, topic, postgresUrl, schema }.
 *
 * The handler records one effect per message in `<schema>.effects` through the inbox's
 * transaction; once that has committed it prints `worked <event id> <attempt>` and never returns.
 * Prints `ready` once subscribed.
 */
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createEventStore } from '@evident/eventstore';
import { withInbox } from '../src/inbox/index.js';
import type { Broker } from '../src/index.js';
import { createRabbitMqBroker } from '../src/rabbitmq/index.js';
import { createSqsBroker } from '../src/sqs/index.js';

const config = JSON.parse(process.argv[2]!) as {
  kind: 'rabbitmq' | 'sqs';
  url?: string;
  endpoint?: string;
  namespace: string;
  queue: string;
  topic: string;
  postgresUrl: string;
  schema: string;
};
const quiet = { warn: () => {} };
const store = createEventStore({
  connectionString: config.postgresUrl,
  schema: config.schema,
  poolSize: 2,
});
let broker: Broker;
if (config.kind === 'rabbitmq') {
  broker = createRabbitMqBroker({
    url: config.url!,
    namespace: config.namespace,
    connectionName: `evident-test:${config.namespace}:child`,
    logger: quiet,
  });
} else {
  const client = {
    endpoint: config.endpoint!,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  broker = createSqsBroker({
    sqs: new SQSClient(client),
    sns: new SNSClient(client),
    namespace: config.namespace,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 2,
    logger: quiet,
  });
}
const apply = withInbox(
  async (event, { tx, queue, attempt }) => {
    await tx.query(`insert into "${config.schema}".effects values ($1, $2, $3)`, [
      queue,
      event.id,
      attempt,
    ]);
  },
  { store },
);
await broker.subscribe({
  queue: config.queue,
  topics: [config.topic],
  retry: { attempts: 5, backoff: { initialMs: 100 } },
  handler: async (event, context) => {
    await apply(event, context);
    process.stdout.write(`worked ${event.id} ${context.attempt}\n`);
    await new Promise(() => {});
  },
});
process.stdout.write('ready\n');
