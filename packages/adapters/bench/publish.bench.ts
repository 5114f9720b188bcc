/**
 * Publish throughput of the adapters beside the raw clients' own figures, measured in the same
 * run against the same servers: the RabbitMQ adapter (publisher confirms) beside plain amqplib
 * ConfirmChannel publishes, and the SQS adapter (SNS PublishBatch fan-out) beside plain SQS
 * SendMessageBatch and plain SNS PublishBatch on the fauxqs emulator.
 *
 * Prints one JSON object per line: { bench, value, unit, ceiling, ceilingName, ratio, rounds }.
 * Each figure is the median of several rounds; adapter and raw rounds alternate so drift hits both.
 * Target: ratio ≥ 0.8 (the adapter costs less than 20% of the raw figure).
 *
 * Run with `pnpm --filter @evident/adapters bench`. RABBITMQ_URL overrides the local default.
 */
import { randomUUID } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  PurgeQueueCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createRabbitMqBroker } from '@evident/adapters/rabbitmq';
import { createSqsBroker } from '@evident/adapters/sqs';
import { median, report, throughput } from '@evident/devkit/bench';
import { createEnvelope, type Envelope } from '@evident/envelope';
import amqp from 'amqplib';
import { startFauxqs } from 'fauxqs';

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const roundMs = Number(process.env.BENCH_ROUND_MS ?? 2000);
const lanes = 64;
const quiet = { warn: () => {} };

/** Messages per second of `publish` on `width` concurrent lanes for `ms`. */
const rate = (ms: number, publish: () => Promise<number>, width = lanes) =>
  throughput(width, ms, () => publish());

/** One figure beside its ceiling, rounds paired (adapter and raw rounds alternate). */
function publishReport(
  bench: string,
  values: number[],
  ceilingName: string,
  ceilings: number[],
): void {
  report({
    bench,
    value: median(values),
    unit: 'msg/s',
    ceiling: median(ceilings),
    ceilingName,
    target: '>= 0.8',
    rounds: values,
    ceilingRounds: ceilings,
  });
}

/** A claim event of a realistic size (about 600 bytes serialized). */
function claim(): Envelope {
  return createEnvelope({
    type: 'ClaimSubmitted',
    data: {
      claimId: randomUUID(),
      patientId: randomUUID(),
      payerId: 'delta-dental',
      procedures: [
        { code: 'D0120', fee: 65 },
        { code: 'D1110', fee: 110 },
      ],
    },
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
    metadata: { traceId: randomUUID() },
  });
}

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = tcpConnect({ host: hostname, port: Number(port || 5672) });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function rabbitmq(url: string): Promise<void> {
  const ns = `bench${randomUUID().slice(0, 8)}`;
  const broker = createRabbitMqBroker({ url, namespace: ns, logger: quiet });
  // A bound quorum queue for both, so every message is routed and stored as in production.
  const sub = await broker.subscribe({
    queue: 'sink',
    topics: ['ClaimSubmitted'],
    handler: () => {},
  });
  await sub.close();
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  const exchange = `${ns}.events`;
  const rawPublish = () =>
    new Promise<number>((resolve, reject) => {
      const body = Buffer.from(JSON.stringify(claim()));
      channel.publish(
        exchange,
        'ClaimSubmitted',
        body,
        { persistent: true, contentType: 'application/json' },
        (e: unknown) => (e ? reject(e) : resolve(1)),
      );
    });
  const adapterPublish = () => broker.publish(claim()).then(() => 1);
  const adapter: number[] = [];
  const raw: number[] = [];
  await rate(500, adapterPublish); // warm-up
  await rate(500, rawPublish);
  for (let i = 0; i < rounds; i++) {
    await channel.purgeQueue(`${ns}.sink`);
    raw.push(await rate(roundMs, rawPublish));
    await channel.purgeQueue(`${ns}.sink`);
    adapter.push(await rate(roundMs, adapterPublish));
  }
  publishReport(
    'rabbitmq.publish.confirmed',
    adapter,
    'amqplib ConfirmChannel.publish, 64 in flight',
    raw,
  );
  await broker.close();
  for (const q of broker.topology().queues) await channel.deleteQueue(q);
  for (const e of broker.topology().exchanges) await channel.deleteExchange(e);
  await channel.close();
  await connection.close();
}

async function sqs(): Promise<void> {
  const server = await startFauxqs({ port: 0, host: 'localhost', logger: false });
  const config = {
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  };
  const sqsClient = new SQSClient(config);
  const snsClient = new SNSClient(config);
  const ns = `bench${randomUUID().slice(0, 8)}`;
  const broker = createSqsBroker({
    sqs: sqsClient,
    sns: snsClient,
    namespace: ns,
    waitTimeSeconds: 1,
    logger: quiet,
  });
  const sub = await broker.subscribe({
    queue: 'sink',
    topics: ['ClaimSubmitted'],
    handler: () => {},
  });
  await sub.close();
  const { topicArn, queueUrls } = broker.topology();
  const sinkUrl = queueUrls.find((u) => u.endsWith(`${ns}-sink`))!;
  const rawQueue = (await sqsClient.send(new CreateQueueCommand({ QueueName: `${ns}-raw` })))
    .QueueUrl!;
  const attributes = { 'evident-topic': { DataType: 'String', StringValue: 'ClaimSubmitted' } };
  // Raw clients send whole batches of 10 on 8 lanes; the adapter gets single publishes on 80 lanes
  // and batches them itself (up to 8 batches in flight): 80 messages in flight either way.
  const batchLanes = 8;
  const singleLanes = batchLanes * 10;
  const sendBatch = async () => {
    await sqsClient.send(
      new SendMessageBatchCommand({
        QueueUrl: rawQueue,
        Entries: Array.from({ length: 10 }, (_, i) => ({
          Id: String(i),
          MessageBody: JSON.stringify(claim()),
          MessageAttributes: attributes,
        })),
      }),
    );
    return 10;
  };
  const publishBatch = async () => {
    await snsClient.send(
      new PublishBatchCommand({
        TopicArn: topicArn!,
        PublishBatchRequestEntries: Array.from({ length: 10 }, (_, i) => ({
          Id: String(i),
          Message: JSON.stringify(claim()),
          MessageAttributes: attributes,
        })),
      }),
    );
    return 10;
  };
  const adapterPublish = () => broker.publish(claim()).then(() => 1);
  const purge = async () => {
    await sqsClient.send(new PurgeQueueCommand({ QueueUrl: sinkUrl }));
    await sqsClient.send(new PurgeQueueCommand({ QueueUrl: rawQueue }));
  };
  const adapter: number[] = [];
  const rawSqs: number[] = [];
  const rawSns: number[] = [];
  await rate(500, adapterPublish, singleLanes);
  await rate(500, sendBatch, batchLanes);
  for (let i = 0; i < rounds; i++) {
    await purge();
    rawSqs.push(await rate(roundMs, sendBatch, batchLanes));
    await purge();
    rawSns.push(await rate(roundMs, publishBatch, batchLanes));
    await purge();
    adapter.push(await rate(roundMs, adapterPublish, singleLanes));
  }
  publishReport('sqs.publish', adapter, 'SQS SendMessageBatch of 10 (fauxqs)', rawSqs);
  publishReport(
    'sqs.publish.same-path',
    adapter,
    'SNS PublishBatch of 10 to the same topic (fauxqs)',
    rawSns,
  );
  await broker.close();
  for (const url of [...queueUrls, rawQueue])
    await sqsClient.send(new DeleteQueueCommand({ QueueUrl: url }));
  sqsClient.destroy();
  snsClient.destroy();
  await server.stop();
}

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
if (await reachable(url)) await rabbitmq(url);
else console.error(`RabbitMQ at ${new URL(url).host} unreachable: its figures are skipped`);
await sqs();
