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
        // The relay publishes ahead of its subscription's handler, so the publish joins the
        // event's own trace beside it rather than inside it.
        expect(parentOf(publish)).toBe(root.spanContext().spanId);
        expect(relayed.spanContext().traceId).toBe(traceId);
        expect(parentOf(consume)).toBe(root.spanContext().spanId);
        expect(consume.attributes).toMatchObject({
          'evident.event.type': 'ClaimSubmitted',
          'evident.attempt': 1,
        });
      });

      it('publishes each event in its own request’s trace, however far ahead of its handler the relay reads', async () => {
        spans.reset();
        const handled = new Set<string>();
        const consumer = await broker.broker.subscribe({
          queue: 'billing-many',
          topics: ['ClaimAdjudicated'],
          handler: (envelope) => void handled.add(envelope.id),
        });
        // Twelve requests, each appending one event; a window of 3 and pages of 12, so most
        // publishes start while the relay's handler holds another event (its span active).
        const tracer = trace.getTracer('test');
        const requests: { traceId: string; spanId: string; eventId: string }[] = [];
        for (let i = 0; i < 12; i++) {
          requests.push(
            await tracer.startActiveSpan(`POST /adjudications/${i}`, async (span) => {
              const adjudicated = createEnvelope({
                type: 'ClaimAdjudicated',
                data: { claimId: `c-${i}` },
                source: 'billing-service',
                actor: { id: 'u-17', role: 'billing-clerk' },
              });
              await store.store.append({ type: 'claim', id: `c-adj-${i}` }, [adjudicated], {
                expectedVersion: 'no_stream',
              });
              span.end();
              return { ...span.spanContext(), eventId: adjudicated.id };
            }),
          );
        }
        const outbox = relay({
          store: store.store,
          broker: broker.broker,
          subscriptionName: 'outbox-many',
          filter: { types: ['ClaimAdjudicated'] },
          maxInFlight: 3,
          batchSize: 12,
        });
        try {
          const deadline = Date.now() + 30_000;
          while (requests.some((r) => !handled.has(r.eventId)) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 20));
          }
          expect(requests.filter((r) => !handled.has(r.eventId))).toEqual([]);
        } finally {
          await outbox.stop();
          await consumer.close();
        }
        const publishes = spans
          .getFinishedSpans()
          .filter((s) => s.name.startsWith('evident.publish'));
        for (const request of requests) {
          const own = publishes.filter((s) => s.spanContext().traceId === request.traceId);
          expect(own.map((s) => s.parentSpanContext?.spanId)).toEqual([request.spanId]);
        }
      });
    });
  }
});
