/**
 * A consumer in its own process, for tests that kill it with SIGKILL. Arguments: one JSON object
 * { kind: 'rabbitmq' | 'sqs', url | endpoint, namespace, queue, topic, attempts, mode }.
 *
 * Modes:
 * - `work-then-hang`: the handler prints `worked <event id> <attempt>` and never returns, so the
 *   parent can kill the process after the work and before the acknowledgement;
 * - `crash`: the handler prints `crashing <event id> <attempt>` and kills its own process.
 * Prints `ready` once subscribed.
 */
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
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
  attempts: number;
  mode: 'work-then-hang' | 'crash';
  visibilityTimeoutSeconds?: number;
};
const quiet = { warn: () => {} };
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
    visibilityTimeoutSeconds: config.visibilityTimeoutSeconds ?? 2,
    logger: quiet,
  });
}
await broker.subscribe({
  queue: config.queue,
  topics: [config.topic],
  retry: { attempts: config.attempts, backoff: { initialMs: 100 } },
  handler: async (event, { attempt }) => {
    if (config.mode === 'crash') {
      process.stdout.write(`crashing ${event.id} ${attempt}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
    process.stdout.write(`worked ${event.id} ${attempt}\n`);
    await new Promise(() => {});
  },
});
process.stdout.write('ready\n');
