/** Helpers for tests against the real RabbitMQ: a raw client, clean-up, and leak checks. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import type { RabbitMqBroker, RabbitMqTopology } from '../src/rabbitmq/index.js';
import type { BrokerFixture } from './brokerContract.js';
import { suffix } from './fixtures.js';

const run = promisify(execFile);

/** A quiet logger that remembers what the adapter reported. */
export function recordingLogger() {
  const lines: { message: string; fields?: Readonly<Record<string, unknown>> }[] = [];
  return {
    lines,
    warn: (fields: Readonly<Record<string, unknown>>, message?: string) =>
      void lines.push({ message: message ?? '', fields }),
  };
}

/** A fresh namespace per test file, so names never collide with other suites or runs. */
export const testNamespace = () => `t${suffix()}`;

/** Run a rabbitmqctl command and parse its JSON output. */
export async function rabbitmqctl<T = unknown>(...args: string[]): Promise<T> {
  const { stdout } = await run('rabbitmqctl', [...args, '--formatter', 'json', '--quiet'], {
    timeout: 30_000,
  });
  return JSON.parse(stdout) as T;
}

/** Names of the open AMQP connections whose client-given name starts with `prefix`. */
export async function openConnections(prefix: string): Promise<string[]> {
  const rows = await rabbitmqctl<{ client_properties: unknown[] }[]>(
    'list_connections',
    'client_properties',
  );
  const names: string[] = [];
  for (const row of rows) {
    for (const entry of row.client_properties as unknown[]) {
      if (
        Array.isArray(entry) &&
        entry[0] === 'connection_name' &&
        String(entry[2]).startsWith(prefix)
      ) {
        names.push(String(entry[2]));
      }
    }
  }
  return names;
}

/** Delete every queue and exchange in `topology` with a raw connection. */
export async function deleteTopology(url: string, topology: RabbitMqTopology): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const q of topology.queues) await channel.deleteQueue(q);
    for (const e of topology.exchanges) await channel.deleteExchange(e);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/**
 * Delete every queue and exchange of a namespace, found with rabbitmqctl: also what other
 * processes (a killed child consumer) declared in it.
 */
export async function deleteNamespace(url: string, ns: string): Promise<void> {
  const queues = await rabbitmqctl<{ name: string }[]>('list_queues', 'name');
  const exchanges = await rabbitmqctl<{ name: string }[]>('list_exchanges', 'name');
  const ours = (rows: { name: string }[]) =>
    rows.map((r) => r.name).filter((n) => n.startsWith(`${ns}.`));
  await deleteTopology(url, { queues: ours(queues), exchanges: ours(exchanges) });
}

/** Publish a raw body to the namespace's events exchange, as a broken producer would. */
export async function publishRawAmqp(url: string, exchange: string, topic: string, body: string) {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    await new Promise<void>((resolve, reject) =>
      channel.publish(exchange, topic, Buffer.from(body), { persistent: true }, (e: unknown) =>
        e ? reject(e) : resolve(),
      ),
    );
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** Close the broker, delete what it declared, and fail if a connection of it stayed open. */
export async function cleanupBroker(url: string, broker: RabbitMqBroker, connectionPrefix: string) {
  await broker.close();
  await deleteTopology(url, broker.topology());
  // The server lists a connection for a moment after the client closed it.
  const deadline = Date.now() + 5000;
  let leaked = await openConnections(connectionPrefix);
  while (leaked.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    leaked = await openConnections(connectionPrefix);
  }
  if (leaked.length > 0) throw new Error(`leaked AMQP connections: ${leaked.join(', ')}`);
}

/** A contract fixture on the real broker, in its own namespace. */
export function rabbitFixture(
  url: string,
  create: (namespace: string, connectionName: string) => RabbitMqBroker,
): () => Promise<BrokerFixture> {
  return async () => {
    const ns = testNamespace();
    const connectionName = `evident-test:${ns}`;
    const broker = create(ns, connectionName);
    return {
      broker,
      publishRaw: (topic, body) => publishRawAmqp(url, `${ns}.events`, topic, body),
      cleanup: () => cleanupBroker(url, broker, connectionName),
      backoffUnitMs: 1,
    };
  };
}
