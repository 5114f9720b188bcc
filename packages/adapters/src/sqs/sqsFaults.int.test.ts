/**
 * SQS + SNS on the emulator with faults: handlers that outlive the visibility timeout, consumer
 * processes killed with SIGKILL, crash-looping messages redriven by SQS, oversized payloads.
 */
import { PublishBatchCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { isEvidentError } from '@evident/envelope';
import type { FauxqsServer } from 'fauxqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startConsumerProcess } from '../../test/childProcess.js';
import { event, sleep, suffix } from '../../test/fixtures.js';
import { recordingLogger } from '../../test/rabbitmq.js';
import { clients, deleteSqsTopology, startEmulator } from '../../test/sqs.js';
import { createSqsBroker, type SqsBroker, type SqsBrokerOptions } from './index.js';

let server: FauxqsServer;
beforeAll(async () => {
  server = await startEmulator();
});
afterAll(async () => {
  await server?.stop();
});

describe('SQS broker under faults', () => {
  let ns: string;
  let brokers: { broker: SqsBroker; sqs: SQSClient; sns: SNSClient }[];

  const broker = (options: Partial<SqsBrokerOptions> = {}) => {
    const c = clients(server);
    const b = createSqsBroker({
      ...c,
      namespace: ns,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 2,
      logger: recordingLogger(),
      ...options,
    });
    brokers.push({ broker: b, ...c });
    return b;
  };

  beforeEach(() => {
    ns = `t${suffix()}`;
    brokers = [];
  });
  afterEach(async () => {
    await Promise.all(brokers.map(({ broker: b }) => b.close()));
    for (const { broker: b, sqs, sns } of brokers) {
      await deleteSqsTopology(b, sqs, sns).catch(() => {});
      sqs.destroy();
      sns.destroy();
    }
  });

  it('is not ready once its endpoint stops answering', async () => {
    const own = await startEmulator();
    const c = clients(own);
    const b = createSqsBroker({ ...c, namespace: ns, logger: recordingLogger() });
    try {
      expect(await b.ready()).toEqual({
        ready: true,
        checks: { connection: { ok: true }, subscriptions: 0 },
      });
      await own.stop();
      expect(await b.ready({ timeout: 1000 })).toEqual({
        ready: false,
        checks: { connection: { ok: false, error: 'BROKER_UNAVAILABLE' }, subscriptions: 0 },
      });
    } finally {
      await b.close();
      await own.stop().catch(() => {});
      c.sqs.destroy();
      c.sns.destroy();
    }
  });

  it('keeps a message invisible while its handler outlives the visibility timeout: no parallel second receipt', async () => {
    const type = `EligibilityRequested${ns}`;
    const calls: number[] = [];
    let done = 0;
    const slow = async (_: unknown, { attempt }: { attempt: number }) => {
      calls.push(attempt);
      await sleep(5000); // 2.5 × the 2-second visibility timeout
      done += 1;
    };
    // Two competing consumers of one queue: the second would get the message if it reappeared.
    await broker().subscribe({ queue: 'eligibility', topics: [type], handler: slow });
    await broker().subscribe({ queue: 'eligibility', topics: [type], handler: slow });
    await brokers[0]!.broker.publish(event(type));
    await vi.waitFor(() => expect(done).toBe(1), { timeout: 15_000, interval: 100 });
    // Deleted after success: nothing comes back once the visibility timeout has passed again.
    await sleep(3000);
    expect(calls).toEqual([1]);
    const queue = server.inspectQueue(`${ns}-eligibility`);
    expect(queue?.messages.ready).toEqual([]);
    expect(queue?.messages.inflight).toEqual([]);
  });

  it('lets a handler extend its visibility itself, and refuses a bad extension', async () => {
    const type = `ClaimSubmitted${ns}`;
    const results: unknown[] = [];
    await broker().subscribe({
      queue: 'claims',
      topics: [type],
      handler: async (_, context) => {
        results.push(await context.extendVisibility!(60));
        results.push(await context.extendVisibility!(-1).catch((e: unknown) => e));
      },
    });
    await brokers[0]!.broker.publish(event(type));
    await vi.waitFor(() => expect(results).toHaveLength(2), { timeout: 10_000 });
    expect(results[0]).toBeUndefined();
    expect(isEvidentError(results[1], 'INVALID_ARGUMENT')).toBe(true);
  });

  it('receives the message of a consumer killed with SIGKILL after its work again once its visibility lapses, as attempt 2', async () => {
    const type = `ClaimAdjudicated${ns}`;
    const parent = broker();
    await (
      await parent.subscribe({ queue: 'adjudication', topics: [type], handler: () => {} })
    ).close();
    const consumer = await startConsumerProcess({
      kind: 'sqs',
      endpoint: server.address,
      namespace: ns,
      queue: 'adjudication',
      topic: type,
      attempts: 5,
      mode: 'work-then-hang',
      visibilityTimeoutSeconds: 2,
    });
    await consumer.waitFor('ready');
    const sent = event(type);
    await parent.publish(sent);
    expect(await consumer.waitFor('worked')).toBe(`worked ${sent.id} 1`);
    consumer.child.kill('SIGKILL');
    expect(await consumer.exited).toBe('SIGKILL');
    const again: { id: string; attempt: number }[] = [];
    await broker().subscribe({
      queue: 'adjudication',
      topics: [type],
      handler: (e, { attempt }) => void again.push({ id: e.id, attempt }),
    });
    await vi.waitFor(() => expect(again).toEqual([{ id: sent.id, attempt: 2 }]), {
      timeout: 15_000,
      interval: 100,
    });
  });

  it('redrives a message that crashes its consumer on every receive to the dead-letter queue after maxReceiveCount', async () => {
    const type = `XrayUploaded${ns}`;
    const parent = broker();
    await (
      await parent.subscribe({
        queue: 'imaging',
        topics: [type],
        handler: () => {},
        retry: { attempts: 2, backoff: { initialMs: 1000 } },
      })
    ).close();
    const poison = event(type);
    await parent.publish(poison);
    const config = {
      kind: 'sqs',
      endpoint: server.address,
      namespace: ns,
      queue: 'imaging',
      topic: type,
      attempts: 2,
      visibilityTimeoutSeconds: 2,
    };
    for (const attempt of [1, 2]) {
      const crashing = await startConsumerProcess({ ...config, mode: 'crash' });
      expect(await crashing.waitFor('crashing', 20_000)).toBe(`crashing ${poison.id} ${attempt}`);
      await crashing.exited;
    }
    // Its third receive never reaches a handler: SQS moves it to the dead-letter queue.
    const third = await startConsumerProcess({ ...config, mode: 'work-then-hang' });
    await third.waitFor('ready');
    await vi.waitFor(async () => expect(await parent.deadLetters('imaging')).toHaveLength(1), {
      timeout: 20_000,
      interval: 500,
    });
    third.child.kill('SIGKILL');
    await third.exited;
    expect(third.lines.filter((l) => l.startsWith('worked'))).toEqual([]);
    const [dead] = await parent.deadLetters('imaging');
    expect(dead).toMatchObject({ reason: 'delivery_limit', attempts: 2, topic: type });
    expect(dead!.envelope).toEqual(poison);
  });

  it('refuses an envelope over the SNS limit with PAYLOAD_TOO_LARGE before sending, and sends one just under it', async () => {
    const type = `XrayAttached${ns}`;
    const b = broker();
    const seen: string[] = [];
    await b.subscribe({ queue: 'xrays', topics: [type], handler: (e) => void seen.push(e.id) });
    const big = event(type, { image: 'x'.repeat(262_144) });
    const error = await b.publish(big).catch((e: unknown) => e);
    expect(isEvidentError(error, 'PAYLOAD_TOO_LARGE')).toBe(true);
    const fits = event(type, { image: 'x'.repeat(250_000) });
    await b.publish(fits);
    await vi.waitFor(() => expect(seen).toEqual([fits.id]), { timeout: 10_000 });
  });

  it('sends concurrent publishes as PublishBatch requests of up to ten', async () => {
    const type = `ClaimSubmitted${ns}`;
    const b = broker();
    const sns = brokers[0]!.sns;
    const send = sns.send.bind(sns);
    const batches: number[] = [];
    sns.send = ((command: unknown, ...rest: unknown[]) => {
      if (command instanceof PublishBatchCommand) {
        batches.push(command.input.PublishBatchRequestEntries?.length ?? 0);
      }
      return (send as (...args: unknown[]) => unknown)(command, ...rest);
    }) as typeof sns.send;
    const seen = new Set<string>();
    await b.subscribe({
      queue: 'claims',
      topics: [type],
      handler: (e) => void seen.add(e.id),
      prefetch: 50,
    });
    const events = Array.from({ length: 95 }, () => event(type));
    await Promise.all(events.map((e) => b.publish(e)));
    expect(batches.reduce((a, n) => a + n, 0)).toBe(95);
    expect(Math.max(...batches)).toBe(10);
    expect(batches.length).toBeLessThanOrEqual(12);
    await vi.waitFor(() => expect(seen.size).toBe(95), { timeout: 20_000 });
  });
});
