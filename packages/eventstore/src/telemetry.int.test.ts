import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { event, events, postgresFactory, type StoreFixture, stream } from '../test/fixtures.js';
import { createEventStore, type EventStore } from './index.js';

class TestReader extends MetricReader {
  protected async onShutdown() {}
  protected async onForceFlush() {}
}

/**
 * Traces, metrics and logs of the store, with the OpenTelemetry SDK registered the way a service
 * registers it. This file owns its process's global providers (vitest isolates files).
 */
describe.skipIf(!postgresUrl)('telemetry of the event store', () => {
  const spans = new InMemorySpanExporter();
  const reader = new TestReader();
  const lines: string[] = [];
  const logger = Object.fromEntries(
    (['debug', 'info', 'warn', 'error'] as const).map((level) => [
      level,
      (fields: object, message?: string) =>
        lines.push(JSON.stringify({ level, ...fields, message })),
    ]),
  ) as never;
  let fixture: StoreFixture;
  let store: EventStore;

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    );
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    fixture = await postgresFactory(postgresUrl!)();
    store = createEventStore({
      pool: fixture.store.database.pool!,
      schema: fixture.store.schema,
      logger,
    });
  });
  afterAll(async () => {
    await fixture?.cleanup();
    trace.disable();
    metrics.disable();
    propagation.disable();
    context.disable();
  });

  it('continues the producer’s trace from the append to the subscriber’s handler', async () => {
    const tracer = trace.getTracer('test');
    const producer = await tracer.startActiveSpan('POST /claims', async (span) => {
      const e = event('ClaimSubmitted');
      expect(e.metadata.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      const result = await store.append(stream('claim'), [e], { expectedVersion: 'no_stream' });
      span.end();
      return { span, result };
    });
    const handled: string[] = [];
    const sub = store.subscribe({ name: 'traced', handler: (e) => void handled.push(e.id) });
    await sub.waitFor(producer.result.checkpoint!);
    await sub.stop();
    const finished = spans.getFinishedSpans();
    const traceId = producer.span.spanContext().traceId;
    const append = finished.find((s) => s.name === 'evident.append')!;
    const handle = finished.find((s) => s.name === 'evident.subscription.handle')!;
    expect(append.spanContext().traceId).toBe(traceId);
    expect(append.parentSpanContext?.spanId).toBe(producer.span.spanContext().spanId);
    expect(handle.spanContext().traceId).toBe(traceId);
    expect(handle.parentSpanContext?.spanId).toBe(producer.span.spanContext().spanId);
    expect(append.attributes).toMatchObject({
      'evident.stream.type': 'claim',
      'evident.events': 1,
      'evident.stream.version': 1,
    });
    expect(handle.attributes['evident.correlation_id']).toBeTypeOf('string');
  });

  it('traces reads inside a trace, and starts no trace for a read outside one', async () => {
    const claim = stream('claim');
    const appended = events(3);
    await store.append(claim, appended, { expectedVersion: 'no_stream' });
    spans.reset();
    await store.readStream(claim);
    await store.readAll({ limit: 10 });
    expect(spans.getFinishedSpans().map((s) => s.name)).toEqual([]);

    const request = await trace.getTracer('test').startActiveSpan('GET /claims', async (span) => {
      await store.readStream(claim, { limit: 2 });
      for await (const _ of store.readStream(claim, { pageSize: 2 })) {
        // two pages: two spans
      }
      await store.readAll({ limit: 1 });
      await store.readByCorrelation(appended[0]!.correlationId);
      span.end();
      return span;
    });
    const reads = spans
      .getFinishedSpans()
      .filter((s) => s.parentSpanContext?.spanId === request.spanContext().spanId)
      .map((s) => [s.name, s.attributes['evident.events']]);
    expect(reads).toEqual([
      ['evident.read_stream', 2],
      ['evident.read_stream', 2],
      ['evident.read_stream', 1],
      ['evident.read_all', 1],
      ['evident.read_by_correlation', 1],
    ]);
    const [first] = spans.getFinishedSpans().filter((s) => s.name === 'evident.read_stream');
    expect(first!.attributes).toMatchObject({
      'evident.stream.type': 'claim',
      'evident.direction': 'forwards',
    });
  });

  it('counts appends and reports subscription lag through the metrics API', async () => {
    await store.append(stream('claim'), events(3), { expectedVersion: 'no_stream' });
    // A subscription that does not keep up: its handler waits until released.
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = store.subscribe({ name: 'lagging', batchSize: 1, handler: () => gate });
    await new Promise((r) => setTimeout(r, 200));
    const { resourceMetrics } = await reader.collect();
    release();
    await slow.stop();
    const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const byName = (name: string) => all.find((m) => m.descriptor.name === name);
    const appended = byName('evident.eventstore.appended_events')!;
    expect(appended.dataPoints.reduce((n, p) => n + Number(p.value), 0)).toBeGreaterThanOrEqual(4);
    expect(byName('evident.eventstore.append.duration')).toBeDefined();
    const lag = byName('evident.eventstore.subscription.lag')!;
    const point = lag.dataPoints.find((p) => p.attributes['evident.subscription'] === 'lagging');
    expect(Number(point!.value)).toBeGreaterThan(0);
  });

  it('reports the size of every group commit statement', async () => {
    const grouping = createEventStore({
      pool: fixture.store.database.pool!,
      schema: fixture.store.schema,
      groupCommit: { statements: 1 },
    });
    const blocker = grouping.append(stream('claim'), events(1), { expectedVersion: 'no_stream' });
    await Promise.all(
      [1, 2, 3].map(() =>
        grouping.append(stream('claim'), events(1), { expectedVersion: 'no_stream' }),
      ),
    );
    await blocker;
    const { resourceMetrics } = await reader.collect();
    const sizes = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === 'evident.eventstore.append.group_size')!;
    const ok = sizes.dataPoints.find((p) => p.attributes['evident.outcome'] === 'ok')!;
    const value = ok.value as { count: number; sum: number };
    // The first append alone, then the other three in one statement.
    expect(value.count).toBe(2);
    expect(value.sum).toBe(4);
  });

  it('never puts a PHI payload field in a span attribute or a log line', async () => {
    const marker = 'Jane-Q-Patient-1980-02-29';
    spans.reset();
    lines.length = 0;
    const s = stream('claim');
    const written = await store.append(
      s,
      [event('ClaimSubmitted', { data: { patientName: marker } })],
      {
        expectedVersion: 'no_stream',
      },
    );
    const sub = store.subscribe({
      name: 'failing',
      onError: { retries: 1, backoff: { initialMs: 1 } },
      handler: (e) => {
        // A careless handler quoting the payload in its error.
        throw new Error(`cannot bill ${(e.data as { patientName: string }).patientName}`);
      },
    });
    await sub.waitFor(written.checkpoint!);
    await sub.stop();
    expect(lines.some((l) => l.includes('event parked'))).toBe(true);
    const text = JSON.stringify([
      lines,
      spans.getFinishedSpans().map((sp) => [sp.name, sp.attributes, sp.status, sp.events]),
    ]);
    expect(text).not.toContain(marker);
  });

  it('answers readiness: database reachable and migrated', async () => {
    expect(await store.ready()).toEqual({
      ready: true,
      checks: { database: { ok: true }, migrations: { ok: true, pending: [] } },
    });
    const fresh = createEventStore({
      connectionString: postgresUrl!,
      schema: 'never_migrated_here',
    });
    const readiness = await fresh.ready();
    expect(readiness.ready).toBe(false);
    expect(readiness.checks.migrations.pending.length).toBeGreaterThan(0);
    await fresh.close();
    const unreachable = createEventStore({
      connectionString: 'postgres://nobody@127.0.0.1:1/none',
    });
    const down = await unreachable.ready();
    expect(down.checks.database.ok).toBe(false);
    await unreachable.close();
  });
});
