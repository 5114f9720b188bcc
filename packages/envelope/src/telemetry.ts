import {
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  type Meter,
  type MeterProvider,
  metrics,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/**
 * The logging interface every Evident factory accepts: pino's shape (`logger.info(fields, msg)`),
 * so a pino, bunyan-style or console adapter fits. Evident logs structured fields only — ids,
 * stream types, counts, error codes — and never payloads, which may hold PHI.
 */
export interface Logger {
  debug(fields: Readonly<Record<string, unknown>>, message?: string): void;
  info(fields: Readonly<Record<string, unknown>>, message?: string): void;
  warn(fields: Readonly<Record<string, unknown>>, message?: string): void;
  error(fields: Readonly<Record<string, unknown>>, message?: string): void;
}

const noop = () => {};

/** The default logger: says nothing. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** W3C trace-context keys carried in an envelope's metadata. */
export const traceMetadataKeys = ['traceparent', 'tracestate'] as const;

const getter = {
  keys: (carrier: Readonly<Record<string, unknown>>) => Object.keys(carrier),
  get: (carrier: Readonly<Record<string, unknown>>, key: string) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
};

/**
 * The active trace context as envelope metadata (`traceparent`, `tracestate`), so a consumer's
 * span continues the producer's trace across the store and the brokers. Empty when no
 * OpenTelemetry SDK (propagator) is registered, or no span is active.
 */
export function traceMetadata(active: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(active, carrier);
  return carrier;
}

/**
 * The producer's trace context carried by an envelope, to parent a consumer's span on.
 *
 * @example
 * ```ts
 * const span = tracer.startSpan('handle ClaimSubmitted', {}, traceContextOf(envelope));
 * ```
 */
export function traceContextOf(envelope: {
  readonly metadata: Readonly<Record<string, unknown>>;
}): Context {
  if (typeof envelope?.metadata?.traceparent !== 'string') return context.active();
  return propagation.extract(ROOT_CONTEXT, envelope.metadata, getter);
}

/** What the API's tracer provider delegates to while no SDK is registered. */
const noTracerProvider = new ProxyTracerProvider().getDelegate();
const probe = ROOT_CONTEXT.setValue(Symbol('evident.tracing-probe'), true);

/**
 * Whether OpenTelemetry tracing is off in this process: no tracer provider and no context manager
 * registered, so a span would record nothing and carry no trace context to the code inside it.
 * Evident skips its own spans then (a no-op span still cost a few microseconds per append, publish
 * and delivery). Checked on every call: an SDK registered later is used from its first span.
 *
 * @example
 * ```ts
 * const span = tracingOff() ? undefined : tracer.startSpan('check eligibility');
 * ```
 */
export function tracingOff(): boolean {
  const provider = trace.getTracerProvider();
  return (
    provider instanceof ProxyTracerProvider &&
    provider.getDelegate() === noTracerProvider &&
    !context.with(probe, () => context.active() === probe)
  );
}

/** A span that records nothing, for code written against a span while tracing is off. */
export const offSpan: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * Mark a span failed, with the error's `code` (or else its `name`) as the status message — never
 * the error's message, which may quote a payload and so PHI. Every Evident span fails this way.
 *
 * @example
 * ```ts
 * try {
 *   await checkEligibility(claim);
 * } catch (error) {
 *   markSpanFailed(span, error);
 *   throw error;
 * }
 * ```
 */
export function markSpanFailed(span: Span, error: unknown): void {
  const e = error as { code?: unknown; name?: unknown } | null | undefined;
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'error',
  });
}

/**
 * Metric instruments on the meter provider registered when they are asked for, made again when
 * another provider has been registered since. The metrics API has no proxy provider: instruments
 * made before the application registers its SDK would stay no-ops for good.
 *
 * @example
 * ```ts
 * const instruments = meterInstruments('billing-service', '1.0.0', (meter) => ({
 *   claims: meter.createCounter('billing.claims_submitted'),
 * }));
 * instruments().claims.add(1);
 * ```
 */
export function meterInstruments<T>(
  meterName: string,
  version: string,
  create: (meter: Meter) => T,
): () => T {
  let current: { provider: MeterProvider; instruments: T } | undefined;
  return () => {
    const provider = metrics.getMeterProvider();
    if (current?.provider !== provider) {
      current = { provider, instruments: create(provider.getMeter(meterName, version)) };
    }
    return current.instruments;
  };
}
