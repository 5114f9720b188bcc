import { markSpanFailed, meterInstruments, tracingOff } from '@evident/envelope';
import {
  type BatchObservableResult,
  type Context,
  type Meter,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  trace,
} from '@opentelemetry/api';

/**
 * Spans and metrics of the saga runtime, through the OpenTelemetry API only (no-ops without an
 * SDK). Every attempt of a step or a compensation is a span in the trace the saga was started in
 * (the trace context its `SagaStarted` event carries), so one trace runs from the request or the
 * message that started a workflow through every step, on whichever worker ran it. Attributes name
 * sagas, steps, attempts and correlation ids — never inputs or results, and never the saga id
 * (callers choose it, and may build it from a patient's identifier).
 */
export const tracer = trace.getTracer('@evident/saga', '0.1.0');

function createInstruments(meter: Meter) {
  return {
    meter,
    stepDuration: meter.createHistogram('evident.saga.step.duration', {
      description: 'Time one attempt of a step or a compensation took, its own work included',
      unit: 'ms',
    }),
    retries: meter.createCounter('evident.saga.step.retries', {
      description: 'Attempts of steps and compensations scheduled after a failure',
      unit: '{attempt}',
    }),
    deadLetters: meter.createCounter('evident.saga.dead_letters', {
      description: 'Instances dead-lettered after their retries and compensations ran out',
      unit: '{instance}',
    }),
    instances: meter.createObservableGauge('evident.saga.instances', {
      description: 'Instances by saga and status',
      unit: '{instance}',
    }),
    timersDue: meter.createObservableGauge('evident.saga.timers_due', {
      description:
        'Instances whose wake-up time (timer, wait timeout, retry, expired lease) has passed and that no worker holds',
      unit: '{instance}',
    }),
  };
}

/** The runtime's instruments on the meter provider registered now. */
export const sagaMetrics = meterInstruments('@evident/saga', '0.1.0', createInstruments);

/** What the runtime reports on each metrics collection. */
export interface SagaGauges {
  readonly instances: readonly {
    readonly saga: string;
    readonly status: string;
    readonly count: number;
  }[];
  readonly timersDue: number;
}

/**
 * Report instances by status and due timers on every metrics collection (one query per
 * collection, none without a metrics SDK). Returns the function that stops reporting.
 */
export function observeSagas(read: () => Promise<SagaGauges>): () => void {
  const callback = async (result: BatchObservableResult) => {
    try {
      const gauges = await read();
      const instruments = sagaMetrics();
      for (const row of gauges.instances) {
        result.observe(instruments.instances, row.count, {
          'evident.saga': row.saga,
          'evident.saga.status': row.status,
        });
      }
      result.observe(instruments.timersDue, gauges.timersDue);
    } catch {
      // The database is unreachable: no observation this time, rather than a wrong one.
    }
  };
  const instruments = sagaMetrics();
  const observables = [instruments.instances, instruments.timersDue];
  instruments.meter.addBatchObservableCallback(callback, observables);
  return () => instruments.meter.removeBatchObservableCallback(callback, observables);
}

const getter = {
  keys: (carrier: Readonly<Record<string, unknown>>) => Object.keys(carrier),
  get: (carrier: Readonly<Record<string, unknown>>, key: string) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
};

/** The trace context an instance's first event carries, or none. */
export function traceOfStart(metadata: Readonly<Record<string, unknown>> | undefined): Context {
  if (typeof metadata?.traceparent !== 'string') return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, metadata, getter);
}

/**
 * Run one attempt in a span. A failure sets the span's status to the error's code or name —
 * never its message, which may quote a payload. With tracing off (no SDK, no context manager) the
 * span would be a no-op: the attempt runs without one.
 */
export function tracedAttempt<T>(
  name: 'evident.saga.step' | 'evident.saga.compensation',
  attributes: Readonly<Record<string, string | number>>,
  fn: () => Promise<T>,
): Promise<T> {
  if (tracingOff()) {
    try {
      return fn();
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return tracer.startActiveSpan(
    `${name} ${attributes['evident.saga.step']}`,
    { kind: SpanKind.INTERNAL, attributes },
    async (span: Span) => {
      try {
        return await fn();
      } catch (error) {
        markSpanFailed(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}
