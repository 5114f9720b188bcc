import { markSpanFailed, meterInstruments, offSpan, tracingOff } from '@evident/envelope';
import { type Attributes, type Meter, type Span, SpanKind, trace } from '@opentelemetry/api';

/**
 * Traces and metrics through the OpenTelemetry API only: with no SDK registered they are no-ops
 * that cost nothing measurable (see the append benchmark, tracing on and off side by side).
 * Attributes carry stream types, event types, counts and correlation ids, never stream ids (they
 * may identify a patient) and never payloads.
 */
export const tracer = trace.getTracer('@evident/eventstore', '0.1.0');
function createInstruments(meter: Meter) {
  return {
    meter,
    appendedEvents: meter.createCounter('evident.eventstore.appended_events', {
      description: 'Events appended',
      unit: '{event}',
    }),
    appendDuration: meter.createHistogram('evident.eventstore.append.duration', {
      description: 'Time to append one batch, including conflicts',
      unit: 'ms',
    }),
    appendGroupSize: meter.createHistogram('evident.eventstore.append.group_size', {
      description:
        'Appends per group commit statement; outcome "split" when it failed and its appends were made one by one',
      unit: '{append}',
      advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64] },
    }),
    handledEvents: meter.createCounter('evident.eventstore.subscription.handled_events', {
      description: 'Events handled by subscriptions',
      unit: '{event}',
    }),
    retries: meter.createCounter('evident.eventstore.subscription.retries', {
      description: 'Handler attempts after a failure',
      unit: '{attempt}',
    }),
    parked: meter.createCounter('evident.eventstore.subscription.parked_events', {
      description: 'Events parked after their last retry',
      unit: '{event}',
    }),
    lagEvents: meter.createObservableGauge('evident.eventstore.subscription.lag', {
      description: 'Committed events after the subscription checkpoint',
      unit: '{event}',
    }),
    lagSeconds: meter.createObservableGauge('evident.eventstore.subscription.lag_age', {
      description: 'Age of the oldest event after the subscription checkpoint',
      unit: 's',
    }),
    parkedNow: meter.createObservableGauge('evident.eventstore.subscription.parked', {
      description: 'Parked events waiting for an operator',
      unit: '{event}',
    }),
  };
}

/** The store's instruments, on the meter provider registered right now. */
export const metricsNow = meterInstruments('@evident/eventstore', '0.1.0', createInstruments);

export { SpanKind };

/**
 * Run `fn` in an active span. A failure sets the span's status to the error's code or name —
 * never its message, which may quote a payload. With tracing off (no SDK, no context manager) the
 * span would be a no-op: `fn` runs at once with one that records nothing.
 */
export function traced<T>(
  name: string,
  kind: SpanKind,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  parent?: import('@opentelemetry/api').Context,
): Promise<T> {
  if (tracingOff()) {
    try {
      return fn(offSpan);
    } catch (error) {
      return Promise.reject(error);
    }
  }
  const run = async (span: Span) => {
    try {
      return await fn(span);
    } catch (error) {
      markSpanFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
  };
  return parent
    ? tracer.startActiveSpan(name, { kind, attributes }, parent, run)
    : tracer.startActiveSpan(name, { kind, attributes }, run);
}

/**
 * Report a subscription's lag and parked count on every metrics collection (one status query
 * per collection, none without a metrics SDK). Returns the function that stops reporting.
 */
export function observeSubscription(
  name: string,
  status: () => Promise<{ lagEvents: number; lagSeconds: number; parked: number }>,
): () => void {
  const attributes = { 'evident.subscription': name };
  const callback = async (result: import('@opentelemetry/api').BatchObservableResult) => {
    try {
      const s = await status();
      const instruments = metricsNow();
      result.observe(instruments.lagEvents, s.lagEvents, attributes);
      result.observe(instruments.lagSeconds, s.lagSeconds, attributes);
      result.observe(instruments.parkedNow, s.parked, attributes);
    } catch {
      // The database is unreachable: no observation this time, rather than a wrong one.
    }
  };
  const instruments = metricsNow();
  const observables = [instruments.lagEvents, instruments.lagSeconds, instruments.parkedNow];
  instruments.meter.addBatchObservableCallback(callback, observables);
  return () => instruments.meter.removeBatchObservableCallback(callback, observables);
}

/**
 * Run a read in a span, only inside a trace: a read joins the request or handler that makes it,
 * but never starts a trace of its own (a subscription polling the log would fill a tracing
 * backend with one-span traces).
 */
export function tracedRead<T extends { length: number } | { events: { length: number } }>(
  name: 'evident.read_stream' | 'evident.read_all' | 'evident.read_by_correlation',
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  if (!trace.getActiveSpan()) return fn();
  return traced(name, SpanKind.CLIENT, attributes, async (span) => {
    const result = await fn();
    span.setAttribute('evident.events', 'events' in result ? result.events.length : result.length);
    return result;
  });
}
