import { context, metrics, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
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
import { afterEach, describe, expect, it } from 'vitest';
import { EvidentError } from './errors.js';
import { markSpanFailed, meterInstruments, offSpan, tracingOff } from './index.js';

describe('tracingOff', () => {
  afterEach(() => {
    trace.disable();
    context.disable();
  });

  it('is true with neither a tracer provider nor a context manager registered', () => {
    expect(tracingOff()).toBe(true);
    expect(offSpan.isRecording()).toBe(false);
  });

  it('is false from the moment a tracer provider is registered, and true again once it is gone', () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider());
    expect(tracingOff()).toBe(false);
    trace.disable();
    expect(tracingOff()).toBe(true);
  });

  it('is false with only a context manager: spans then still carry the trace to the code inside', () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    expect(tracingOff()).toBe(false);
  });
});

describe('markSpanFailed', () => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  }).getTracer('test');
  const failedWith = (error: unknown): ReadableSpan => {
    exporter.reset();
    const span = tracer.startSpan('check eligibility');
    markSpanFailed(span, error);
    span.end();
    return exporter.getFinishedSpans()[0]!;
  };

  it("states the error's code, else its name, else 'error' — never its message", () => {
    class PayerTimeoutError extends Error {
      override readonly name = 'PayerTimeoutError';
    }
    const message = 'no answer for patient Jane Roe, DOB 1980-02-03';
    expect(failedWith(new EvidentError('PAYER_TIMEOUT', message)).status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'PAYER_TIMEOUT',
    });
    expect(failedWith(new PayerTimeoutError(message)).status.message).toBe('PayerTimeoutError');
    expect(failedWith({ code: 42, name: { not: 'a string' } }).status.message).toBe('error');
    expect(failedWith(undefined).status).toEqual({ code: SpanStatusCode.ERROR, message: 'error' });
  });
});

describe('meterInstruments', () => {
  afterEach(() => metrics.disable());

  const counters = meterInstruments('test-meter', '1.0.0', (meter) => ({
    claims: meter.createCounter('claims_submitted'),
  }));

  /** A meter provider whose collected counter values can be read back. */
  const registered = () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    return async () => {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((s) =>
        s.metrics.flatMap((m) => m.dataPoints.map((p) => p.value)),
      );
    };
  };

  it('makes the instruments once per registered provider', () => {
    registered();
    expect(counters()).toBe(counters());
  });

  it('counts on a provider registered after the instruments were first asked for', async () => {
    counters().claims.add(1); // no SDK yet: a no-op
    const collect = registered();
    counters().claims.add(2);
    expect(await collect()).toEqual([2]);
  });
});
