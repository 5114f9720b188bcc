import {
  type Envelope,
  markSpanFailed,
  meterInstruments,
  traceContextOf,
  tracingOff,
} from '@evident/envelope';
import { type Meter, context as otelContext, SpanKind, trace } from '@opentelemetry/api';
import type { Broker, MessageHandler } from '../broker.js';

/**
 * Spans and metrics of every broker, through the OpenTelemetry API only (no-ops without an SDK).
 * A publish is a producer span in the caller's trace; a delivery is a consumer span whose parent
 * is the trace context the envelope carries, so the consumer continues the producer's trace across
 * RabbitMQ or SQS. Attributes name topics, queues, event types and correlation ids — never
 * payloads.
 */
const tracer = trace.getTracer('@evident/adapters', '0.1.0');

function create(meter: Meter) {
  return {
    published: meter.createCounter('evident.broker.published_messages', {
      description: 'Messages the broker accepted',
      unit: '{message}',
    }),
    retries: meter.createCounter('evident.broker.retries', {
      description: 'Deliveries scheduled again after a handler failure',
      unit: '{delivery}',
    }),
    deadLetters: meter.createCounter('evident.broker.dead_letters', {
      description: 'Messages moved to a dead-letter queue',
      unit: '{message}',
    }),
  };
}
/** Instruments on the meter provider registered now. */
export const brokerMetrics = meterInstruments('@evident/adapters', '0.1.0', create);

/** The same broker, with a span around every publish and every handler call. */
export function instrumentBroker<B extends Broker>(broker: B, system: string): B {
  const publish = broker.publish.bind(broker);
  const subscribe = broker.subscribe.bind(broker);
  const wrapHandler =
    <E extends Envelope>(handler: MessageHandler<E>, queue: string): MessageHandler<E> =>
    async (envelope, context) => {
      if (tracingOff()) return handler(envelope, context);
      return tracer.startActiveSpan(
        `evident.consume ${queue}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': system,
            'messaging.destination.name': context.topic,
            'messaging.consumer.group.name': queue,
            'messaging.message.id': context.messageId,
            'evident.event.type': envelope.type,
            'evident.correlation_id': envelope.correlationId,
            'evident.attempt': context.attempt,
          },
        },
        traceContextOf(envelope),
        async (span) => {
          try {
            return await handler(envelope, context);
          } catch (error) {
            markSpanFailed(span, error);
            throw error;
          } finally {
            span.end();
          }
        },
      );
    };
  Object.assign(broker, {
    publish: async (
      envelope: Parameters<Broker['publish']>[0],
      options?: Parameters<Broker['publish']>[1],
    ) => {
      // Tracing off: the span would be a no-op (it was a tenth of the relay's time).
      if (tracingOff()) {
        await publish(envelope, options);
        brokerMetrics().published.add(1, { 'messaging.system': system });
        return;
      }
      return tracer.startActiveSpan(
        `evident.publish ${options?.topic ?? envelope?.type}`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            'messaging.system': system,
            'messaging.destination.name': options?.topic ?? envelope?.type,
            'evident.event.type': envelope?.type,
            'evident.correlation_id': envelope?.correlationId,
          },
        },
        // Inside an active span (a request, the relay's handler) the publish joins it; on its own
        // it continues the trace the event was created in.
        trace.getActiveSpan() ? otelContext.active() : traceContextOf(envelope),
        async (span) => {
          try {
            await publish(envelope, options);
            brokerMetrics().published.add(1, { 'messaging.system': system });
          } catch (error) {
            markSpanFailed(span, error);
            throw error;
          } finally {
            span.end();
          }
        },
      );
    },
    subscribe: (options: Parameters<Broker['subscribe']>[0]) =>
      subscribe({ ...options, handler: wrapHandler(options.handler, options.queue) }),
  });
  return broker;
}
