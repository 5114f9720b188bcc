/** Helpers for tests against the SQS/SNS emulator (fauxqs, started in-process). */
import {
  DeleteTopicCommand,
  PublishCommand,
  SNSClient,
  UnsubscribeCommand,
} from '@aws-sdk/client-sns';
import { DeleteQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type FauxqsServer, startFauxqs } from 'fauxqs';
import { createSqsBroker, type SqsBroker, type SqsBrokerOptions } from '../src/sqs/index.js';
import type { BrokerFixture } from './brokerContract.js';
import { suffix } from './fixtures.js';
import { recordingLogger } from './rabbitmq.js';

/** Start the emulator on a free loopback port. */
export function startEmulator(): Promise<FauxqsServer> {
  return startFauxqs({ port: 0, host: 'localhost', logger: false });
}

/** SDK clients pointed at the emulator. */
export function clients(server: FauxqsServer) {
  const config = {
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  return { sqs: new SQSClient(config), sns: new SNSClient(config) };
}

/** Remove everything the broker created. */
export async function deleteSqsTopology(broker: SqsBroker, sqs: SQSClient, sns: SNSClient) {
  const { topicArn, queueUrls, subscriptionArns } = broker.topology();
  for (const arn of subscriptionArns)
    await sns.send(new UnsubscribeCommand({ SubscriptionArn: arn }));
  for (const url of queueUrls) await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
  if (topicArn) await sns.send(new DeleteTopicCommand({ TopicArn: topicArn }));
}

/** A contract fixture: a broker in its own namespace on the emulator. */
export function sqsFixture(
  server: () => FauxqsServer,
  options: Partial<Omit<SqsBrokerOptions, 'sqs' | 'sns' | 'namespace'>> = {},
): () => Promise<BrokerFixture> {
  return async () => {
    const { sqs, sns } = clients(server());
    const broker = createSqsBroker({
      sqs,
      sns,
      namespace: `t${suffix()}`,
      waitTimeSeconds: 1,
      logger: recordingLogger(),
      ...options,
    });
    return {
      broker,
      publishRaw: async (topic, body) => {
        // Make sure the topic exists (it is created lazily by the first subscribe or publish).
        const { topicArn } = broker.topology();
        const fifo = options.fifo === true;
        await sns.send(
          new PublishCommand({
            TopicArn: topicArn!,
            Message: body,
            MessageAttributes: { 'evident-topic': { DataType: 'String', StringValue: topic } },
            ...(fifo ? { MessageGroupId: suffix(), MessageDeduplicationId: suffix() } : {}),
          }),
        );
      },
      cleanup: async () => {
        await broker.close();
        await deleteSqsTopology(broker, sqs, sns);
        sqs.destroy();
        sns.destroy();
      },
      backoffUnitMs: 1000,
    };
  };
}
