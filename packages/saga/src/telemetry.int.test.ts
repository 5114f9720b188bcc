import { readFileSync, writeFileSync } from 'node:fs';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Broker } from '@evident/adapters';
import { createRabbitMqBroker, type RabbitMqBroker } from '@evident/adapters/rabbitmq';
import { relay } from '@evident/adapters/relay';
import { createSqsBroker } from '@evident/adapters/sqs';
import { createEnvelope } from '@evident/envelope';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import amqp from 'amqplib';
import { type FauxqsServer, startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl, rabbitmqUrl } from '#test-env';
import { onboardingSaga, PlanNotContracted } from '../examples/onboarding.js';
import { onboardingInput, postgresFactory, type StoreFixture, sagaId } from '../test/fixtures.js';
import { createWorld } from '../test/world.js';
import { type AnySagaDefinition, createSagaRuntime, type SagaRuntime } from './index.js';

/**
 * One workflow, one trace: a request appends `PatientReferred`, the outbox relay publishes it, a
 * consumer on the other side of RabbitMQ (or SQS) starts the onboarding saga, and a worker runs its
 * seven steps — every span in the request's trace, each with its parent. This file owns its
 * process's global OpenTelemetry registration (vitest isolates files).
 */
const spans = new InMemorySpanExporter();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({
  exporter: metricExporter,
  exportIntervalMillis: 60_000,
});
let emulator: FauxqsServer | undefined;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
  );
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  emulator = await startFauxqs({ port: 0, host: 'localhost', logger: false });
});
afterAll(async () => {
  await emulator?.stop();
  trace.disable();
  propagation.disable();
  context.disable();
  metrics.disable();
});

const suffix = () => Math.random().toString(36).slice(2, 8);

/** Delete what a RabbitMQ broker declared (queues outlive the broker that declared them). */
async function deleteTopology(url: string, broker: RabbitMqBroker): Promise<void> {
  const { queues, exchanges } = broker.topology();
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const q of queues) await channel.deleteQueue(q);
    for (const e of exchanges) await channel.deleteExchange(e);
  } finally {
    await connection.close();
  }
}

const brokers: Array<[string, () => Broker, boolean]> = [
  [
    'RabbitMQ',
    () => createRabbitMqBroker({ url: rabbitmqUrl!, namespace: `sg${suffix()}` }),
    !rabbitmqUrl,
  ],
  [
    'SQS',
    () => {
      const config = {
        endpoint: emulator!.address,
        region: 'us-east-1',
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      };
      return createSqsBroker({
        sqs: new SQSClient(config),
        sns: new SNSClient(config),
        namespace: `sg${suffix()}`,
        waitTimeSeconds: 1,
      });
    },
    false,
  ],
];

/** The spans of one trace as an indented tree, children in start order (names only). */
function renderTrace(all: readonly ReadableSpan[], root: ReadableSpan): string {
  const traceId = root.spanContext().traceId;
  const inTrace = all.filter((s) => s.spanContext().traceId === traceId);
  const start = (s: ReadableSpan) => s.startTime[0] * 1e9 + s.startTime[1];
  const lines: string[] = [];
  const walk = (span: ReadableSpan, depth: number) => {
    const attempt = span.attributes['evident.saga.attempt'];
    lines.push(
      `${'  '.repeat(depth)}${span.name}${typeof attempt === 'number' && attempt > 1 ? ` (attempt ${attempt})` : ''}`,
    );
    const children = inTrace
      .filter((s) => s.parentSpanContext?.spanId === span.spanContext().spanId)
      .sort((a, b) => start(a) - start(b));
    for (const child of children) walk(child, depth + 1);
  };
  walk(root, 0);
  return lines.join('\n');
}

describe.skipIf(!postgresUrl)('a saga traced from the request that caused it', () => {
  for (const [name, createBroker, skip] of brokers) {
    describe.skipIf(skip)(name, () => {
      let store: StoreFixture;
      let broker: Broker;
      beforeAll(async () => {
        store = await postgresFactory(postgresUrl!)();
        broker = createBroker();
      });
      afterAll(async () => {
        await broker?.close();
        // Or every run leaves its quorum queues behind on the shared server.
        if (broker && name === 'RabbitMQ') {
          await deleteTopology(rabbitmqUrl!, broker as RabbitMqBroker);
        }
        await store?.cleanup();
      });

      /** Request → append → relay → broker → consumer starts the saga; returns the root span. */
      const referPatient = async (
        runtime: SagaRuntime,
        sagas: readonly AnySagaDefinition[],
        id: string,
        input: object,
      ) => {
        // The consumer only starts the saga; a worker elsewhere (here: another runtime) runs it.
        const starter = createSagaRuntime({
          store: store.store,
          sagas,
          workers: false,
        });
        const consumer = await broker.subscribe({
          queue: 'onboarding',
          topics: ['PatientReferred'],
          handler: async (envelope) => {
            // Each test's relay starts from the log's start: earlier tests' referrals come again.
            const { referral, ...data } = envelope.data as { referral: string };
            if (referral !== id) return;
            await starter.start('patient-onboarding', data, {
              id,
              correlationId: envelope.correlationId,
              causationId: envelope.id,
            });
          },
        });
        const outbox = relay({
          store: store.store,
          broker,
          subscriptionName: `outbox-${suffix()}`,
          filter: { types: ['PatientReferred'] },
        });
        try {
          const root = await trace
            .getTracer('test')
            .startActiveSpan('POST /referrals', async (span) => {
              await store.store.append(
                { type: 'referral', id },
                [
                  createEnvelope({
                    type: 'PatientReferred',
                    data: { ...input, referral: id },
                    source: 'intake-service',
                    actor: { id: 'u-17', role: 'front-desk' },
                  }),
                ],
                { expectedVersion: 'no_stream' },
              );
              span.end();
              return span as unknown as ReadableSpan;
            });
          const instance = await runtime.waitUntil(id, { timeout: '30s' }).catch(async () => {
            throw new Error(`saga ${id} did not finish: ${JSON.stringify(await runtime.get(id))}`);
          });
          return { root, instance };
        } finally {
          await outbox.stop();
          await consumer.close();
          await starter.stop();
        }
      };

      it('continues the request’s trace through the broker into every step of the saga, retries and all', async () => {
        spans.reset();
        const world = createWorld();
        world.fail('payers.checkEligibility', { times: 1 });
        const sagas = [onboardingSaga(world.services)];
        const lines: string[] = [];
        const record = (fields: object, message?: string) =>
          void lines.push(JSON.stringify({ ...fields, message }));
        const logger = { debug: record, info: record, warn: record, error: record };
        const runtime = createSagaRuntime({
          store: store.store,
          sagas,
          workers: { concurrency: 4 },
          logger,
        });
        const id = sagaId();
        const input = onboardingInput();
        try {
          const { root, instance } = await referPatient(runtime, sagas, id, input);
          expect(instance.status).toBe('completed');
          const finished = spans.getFinishedSpans();
          const traceId = root.spanContext().traceId;
          const inTrace = finished.filter((s) => s.spanContext().traceId === traceId);
          const parentOf = (span: ReadableSpan) =>
            inTrace.find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId);

          const consume = inTrace.find((s) => s.name.startsWith('evident.consume'))!;
          expect(parentOf(consume)).toBe(root);
          const steps = inTrace.filter((s) => s.name.startsWith('evident.saga.step'));
          expect(steps.map((s) => s.attributes['evident.saga.step'])).toEqual([
            'createPatientRecord',
            'verifyInsuranceEligibility',
            'verifyInsuranceEligibility',
            'checkPriorAuthorization',
            'createFinancialAccount',
            'assignCareCoordinator',
            'sendWelcomeCommunications',
            'scheduleInitialConsultation',
          ]);
          for (const step of steps) {
            // The saga was started inside the consumer's span: its steps continue from there,
            // on whichever worker runs them.
            expect(parentOf(step)).toBe(consume);
            expect(step.attributes).toMatchObject({
              'evident.saga': 'patient-onboarding',
              'evident.saga.version': 1,
              'evident.correlation_id': instance.correlationId,
            });
          }
          const [failed, retried] = steps.filter(
            (s) => s.attributes['evident.saga.step'] === 'verifyInsuranceEligibility',
          );
          expect(failed!.status).toMatchObject({ code: 2, message: 'Error' });
          expect(retried!.attributes['evident.saga.attempt']).toBe(2);
          // The runtime's appends belong to the same trace.
          const sagaAppends = inTrace.filter(
            (s) => s.name === 'evident.append' && parentOf(s) === consume,
          );
          expect(sagaAppends.length).toBeGreaterThanOrEqual(7);

          // Names, types, counts and correlation ids; never the saga's input or the saga id.
          for (const secret of [input.patientId, input.memberId, id]) {
            expect(
              inTrace.flatMap((s) =>
                Object.entries(s.attributes)
                  .filter(([, v]) => String(v).includes(secret))
                  .map(([k]) => `${s.name} ${k}`),
              ),
            ).toEqual([]);
            expect(lines.filter((line) => line.includes(secret))).toEqual([]);
          }

          // docs/observability.md shows this trace; its steps and nesting must be what we collect
          // (how many appends and reads the runtime and the relay make is their own business).
          const rendered = renderTrace(finished, root);
          const documented = /<!-- saga-trace:start -->\s*```\n([\s\S]*?)```/.exec(
            readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8'),
          )?.[1];
          const withoutAppends = (text: string) =>
            text
              .trim()
              .split('\n')
              .filter((line) => !/^evident\.(append|read_)/.test(line.trim()))
              .join('\n');
          expect(withoutAppends(rendered)).toBe(withoutAppends(documented ?? ''));
          if (process.env.EVIDENT_WRITE_TRACE) {
            writeFileSync(process.env.EVIDENT_WRITE_TRACE, `${rendered}\n`);
          }
        } finally {
          await runtime.stop();
        }
      });

      it('traces compensations as spans beside the step that failed, and counts them', async () => {
        spans.reset();
        const world = createWorld();
        world.fail('scheduling.bookInitialConsultation', {
          error: () => new PlanNotContracted('out of network'),
        });
        const sagas = [onboardingSaga(world.services)];
        const runtime = createSagaRuntime({
          store: store.store,
          sagas,
          workers: { concurrency: 4 },
        });
        const id = sagaId();
        try {
          const { root, instance } = await referPatient(runtime, sagas, id, onboardingInput());
          expect(instance.status).toBe('compensated');
          const traceId = root.spanContext().traceId;
          const inTrace = spans
            .getFinishedSpans()
            .filter((s) => s.spanContext().traceId === traceId);
          const compensations = inTrace.filter((s) =>
            s.name.startsWith('evident.saga.compensation'),
          );
          expect(compensations.map((s) => s.attributes['evident.saga.step'])).toEqual([
            'assignCareCoordinator',
            'createFinancialAccount',
            'createPatientRecord',
          ]);
          const failed = inTrace.find(
            (s) => s.attributes['evident.saga.step'] === 'scheduleInitialConsultation',
          )!;
          expect(failed.status.message).toBe('PLAN_NOT_CONTRACTED');
          expect(
            compensations.every(
              (c) => c.parentSpanContext?.spanId === failed.parentSpanContext?.spanId,
            ),
          ).toBe(true);

          await reader.forceFlush();
          const points = metricExporter
            .getMetrics()
            .flatMap((m) => m.scopeMetrics)
            .flatMap((s) => s.metrics);
          const durations = points.find((m) => m.descriptor.name === 'evident.saga.step.duration')!;
          const compensationPoints = durations.dataPoints.filter(
            (p) =>
              p.attributes['evident.saga.phase'] === 'compensation' &&
              p.attributes['evident.saga.outcome'] === 'ok',
          );
          expect(compensationPoints.map((p) => p.attributes['evident.saga.step']).sort()).toEqual([
            'assignCareCoordinator',
            'createFinancialAccount',
            'createPatientRecord',
          ]);
          // The runtime's gauges: instances by saga and status, and timers due (none now).
          const gauge = (metric: string) =>
            points.find((m) => m.descriptor.name === metric)?.dataPoints ?? [];
          const compensated = gauge('evident.saga.instances').find(
            (p) =>
              p.attributes['evident.saga'] === 'patient-onboarding' &&
              p.attributes['evident.saga.status'] === 'compensated',
          );
          expect(compensated?.value).toBe(1);
          expect(gauge('evident.saga.timers_due').map((p) => p.value)).toEqual([0]);
        } finally {
          await runtime.stop();
        }
      });
    });
  }
});
