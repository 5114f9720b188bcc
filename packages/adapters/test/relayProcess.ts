/**
 * An outbox relay in its own process, for tests that kill it with SIGKILL between the commit of
 * an event and its publish. Arguments: one JSON object
 * { url, namespace, postgresUrl, schema, subscriptionName, type, hangOn }.
 *
 * Relays events of `type` to RabbitMQ; the publish of event `hangOn` never reaches the broker (the
 * process prints `hanging <id>` and waits there to be killed). Prints `published <id>` for each
 * confirmed publish and `active` once the relay holds its checkpoint.
 */
import { createEventStore } from '@evident/eventstore';
import { createRabbitMqBroker } from '../src/rabbitmq/index.js';
import { relay } from '../src/relay/index.js';
import { instrument } from './instrumentedBroker.js';

const config = JSON.parse(process.argv[2]!) as {
  url: string;
  namespace: string;
  postgresUrl: string;
  schema: string;
  subscriptionName: string;
  type: string;
  hangOn: string;
};
const store = createEventStore({
  connectionString: config.postgresUrl,
  schema: config.schema,
  poolSize: 4,
});
const rabbit = createRabbitMqBroker({
  url: config.url,
  namespace: config.namespace,
  connectionName: `evident-test:${config.namespace}:relay-child`,
  logger: { warn: () => {} },
});
const broker = instrument(rabbit, async (envelope) => {
  if (envelope.id === config.hangOn) {
    process.stdout.write(`hanging ${envelope.id}\n`);
    await new Promise(() => {});
  }
});
const published = broker.publish.bind(broker);
broker.publish = async (envelope, options) => {
  await published(envelope, options);
  process.stdout.write(`published ${envelope.id}\n`);
};
const outbox = relay({
  store,
  broker,
  subscriptionName: config.subscriptionName,
  filter: { types: [config.type] },
  batchSize: 10,
  logger: { warn: () => {} },
});
const timer = setInterval(() => {
  if (outbox.state === 'active') {
    process.stdout.write('active\n');
    clearInterval(timer);
  }
}, 10);
