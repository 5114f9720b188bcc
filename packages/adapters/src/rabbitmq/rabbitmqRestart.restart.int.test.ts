/**
 * The RabbitMQ server restarted under load (scenario 13): no confirmed message is lost, and the
 * publisher and the consumer reconnect by themselves. Runs in the serial `restart` project, since
 * it takes the shared server away from every other suite.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { rabbitmqUrl } from '#test-env';
import { event, sleep } from '../../test/fixtures.js';
import { cleanupBroker, recordingLogger, testNamespace } from '../../test/rabbitmq.js';
import { isBrokerError } from '../index.js';
import { createRabbitMqBroker } from './index.js';

const run = promisify(execFile);

async function restartRabbitMq(): Promise<void> {
  await run('rabbitmqctl', ['stop_app'], { timeout: 120_000 });
  await sleep(2000); // an outage long enough for every client to notice and start retrying
  await run('rabbitmqctl', ['start_app'], { timeout: 120_000 });
  await run('rabbitmqctl', ['await_startup'], { timeout: 120_000 });
}

describe.skipIf(!rabbitmqUrl)('RabbitMQ server restarted', () => {
  it('loses no confirmed message, and the publisher and consumer reconnect by themselves', async () => {
    const url = rabbitmqUrl!;
    const ns = testNamespace();
    const logger = recordingLogger();
    const connectionName = `evident-test:${ns}`;
    const broker = createRabbitMqBroker({
      url,
      namespace: ns,
      connectionName,
      logger,
      publishTimeoutMs: 120_000,
      reconnect: { initialMs: 100, maxMs: 1000 },
    });
    try {
      const type = `ClaimSubmitted${ns}`;
      const received = new Set<string>();
      await broker.subscribe({
        queue: 'claims',
        topics: [type],
        prefetch: 50,
        handler: (e) => void received.add(e.id),
      });
      const confirmed = new Set<string>();
      const failures: unknown[] = [];
      let stop = false;
      const lanes = Array.from({ length: 10 }, async () => {
        while (!stop) {
          const e = event(type);
          try {
            await broker.publish(e);
            confirmed.add(e.id);
          } catch (error) {
            failures.push(error);
          }
          await sleep(5);
        }
      });
      await vi.waitFor(() => expect(confirmed.size).toBeGreaterThanOrEqual(200), {
        timeout: 30_000,
      });
      await restartRabbitMq();
      const afterRestart = confirmed.size;
      await vi.waitFor(() => expect(confirmed.size).toBeGreaterThanOrEqual(afterRestart + 200), {
        timeout: 60_000,
        interval: 100,
      });
      stop = true;
      await Promise.all(lanes);
      expect(logger.lines.map((l) => l.message)).toContain(
        'RabbitMQ connection lost; reconnecting',
      );
      // A publish the broker refused while shutting down was reported, never silently dropped.
      for (const f of failures)
        expect(isBrokerError(f, 'PUBLISH_REJECTED', 'PUBLISH_TIMEOUT')).toBe(true);
      await vi.waitFor(() => expect([...confirmed].filter((id) => !received.has(id))).toEqual([]), {
        timeout: 60_000,
        interval: 250,
      });
      console.log(
        JSON.stringify({
          confirmed: confirmed.size,
          received: received.size,
          failures: failures.length,
        }),
      );
    } finally {
      await cleanupBroker(url, broker, connectionName);
    }
  });
});
