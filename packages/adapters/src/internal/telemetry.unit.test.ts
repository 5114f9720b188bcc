import { createEnvelope } from '@evident/envelope';
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryBroker } from '../memory/index.js';

const reported = () =>
  createEnvelope({
    type: 'AdverseReactionReported',
    data: { severity: 'moderate' },
    source: 'clinical-service',
    actor: { id: 'u-3', role: 'hygienist' },
  });

describe('publish spans', () => {
  afterEach(() => trace.disable());

  it('skips the span while no tracing SDK is registered, and records it from the moment one is', async () => {
    const broker = createMemoryBroker();
    const exporter = new InMemorySpanExporter();
    try {
      await broker.publish(reported()); // no SDK: nothing to record, and nothing fails
      trace.setGlobalTracerProvider(
        new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
      );
      await broker.publish(reported(), { topic: 'clinical.urgent' });
      expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual([
        'evident.publish clinical.urgent',
      ]);
      trace.disable();
      await broker.publish(reported());
      expect(exporter.getFinishedSpans()).toHaveLength(1);
    } finally {
      await broker.close();
    }
  });

  it('still rejects a publish the broker refuses when no SDK is registered', async () => {
    const broker = createMemoryBroker();
    try {
      await expect(broker.publish(reported(), { topic: 'not a topic!' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    } finally {
      await broker.close();
    }
  });
});
