import { createEnvelope } from '@evident/envelope';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { FauxqsServer } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl, rabbitmqUrl } from '#test-env';
import type { BrokerFixture } from '../test/brokerContract.js';
import { rabbitFixture } from '../test/rabbitmq.js';
import { sqsFixture, startEmulator } from '../test/sqs.js';
import { postgresFactory, type StoreFixture } from '../test/store.js';
import { createRabbitMqBroker } from './rabbitmq/index.js';
import { relay } from './relay/index.js';

/**
 * One workflow, one trace: an HTTP request appends an event, the relay publishes it, a consumer on
 * the other side of RabbitMQ (or SQS) handles it — every span in the request's trace, each with its
 * parent. This file owns its process's global OpenTelemetry registration (vitest isolates files).
 */
const spans = new InMemorySpanExporter();
let emulator: FauxqsServer | undefined;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
  );
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.stop();
  trace.disable();
  propagation.disable();
  context.disable();
});

const brokers: Array<[string, () => Promise<BrokerFixture>, boolean]> = [
  [
    'RabbitMQ',
    rabbitFixture(rabbitmqUrl ?? 'amqp://unused', (namespace, connectionName) =>
      createRabbitMqBroker({ url: rabbitmqUrl!, namespace, connectionName }),
    ),
    !rabbitmqUrl,
  ],
  ['SQS', sqsFixture(() => emulator!), false],
];

describe.skipIf(!postgresUrl)('a workflow traced across the store, the relay and a broker', () => {
  for (const [name, fixture, skip] of brokers) {
    describe.skipIf(skip)(name, () => {
      let store: StoreFixture;
      let broker: BrokerFixture;
      beforeAll(async () => {
        store = await postgresFactory(postgresUrl!)();
        broker = await fixture();
      });
      afterAll(async () => {
        await broker?.cleanup();
        await store?.cleanup();
      });

      it('keeps append, relay, publish and consume in the request’s trace with their parents', async () => {
        spans.reset();
        const handled: string[] = [];
        const consumer = await broker.broker.subscribe({
          queue: 'billing',
          topics: ['ClaimSubmitted'],
          handler: (envelope) => void handled.push(envelope.id),
        });
        const outbox = relay({
          store: store.store,
          broker: broker.broker,
          subscriptionName: 'outbox',
        });
        try {
          const tracer = trace.getTracer('test');
          const request = await tracer.startActiveSpan('POST /claims', async (span) => {
            const submitted = createEnvelope({
              type: 'ClaimSubmitted',
              data: { claimId: 'c-77', payer: 'delta-dental' },
              source: 'billing-service',
              actor: { id: 'u-17', role: 'billing-clerk' },
            });
            await store.store.append({ type: 'claim', id: 'c-77' }, [submitted], {
              expectedVersion: 'no_stream',
            });
            span.end();
            return { span, submitted };
          });
          const deadline = Date.now() + 30_000;
          while (!handled.includes(request.submitted.id) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 20));
          }
          expect(handled).toContain(request.submitted.id);
        } finally {
          await outbox.stop();
          await consumer.close();
        }
        const finished = spans.getFinishedSpans();
        const root = finished.find((s) => s.name === 'POST /claims')!;
        const traceId = root.spanContext().traceId;
        const one = (prefix: string) => {
          const found = finished.filter(
            (s) => s.name.startsWith(prefix) && s.spanContext().traceId === traceId,
          );
          expect(found.length, prefix).toBeGreaterThanOrEqual(1);
          return found[0]!;
        };
        const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
        const append = one('evident.append');
        const relayed = one('evident.subscription.handle');
        const publish = one('evident.publish');
        const consume = one('evident.consume');
        expect(parentOf(append)).toBe(root.spanContext().spanId);
        expect(parentOf(relayed)).toBe(root.spanContext().spanId);
        expect(parentOf(publish)).toBe(relayed.spanContext().spanId);
        expect(parentOf(consume)).toBe(root.spanContext().spanId);
        expect(consume.attributes).toMatchObject({
          'evident.event.type': 'ClaimSubmitted',
          'evident.attempt': 1,
        });
      });
    });
  }
});
