import { readFileSync } from 'node:fs';
import { createMemoryBroker } from '@evident/adapters/memory';
import { createEnvelope } from '@evident/envelope';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory, type StoreFixture, sagaId } from '../test/fixtures.js';
import { createSagaRuntime, defineSaga } from './index.js';

/**
 * The Prometheus snippet of docs/observability.md, run: a service registers the exporter, uses the
 * store, a broker and a saga runtime, and Prometheus scrapes Evident's metrics under the names the
 * docs give. This file owns its process's global meter provider (vitest isolates files).
 */
const doc = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8');
const port = 20_000 + Math.floor(Math.random() * 20_000);
let exporter: PrometheusExporter;

beforeAll(async () => {
  // The docs' lines, on a free port instead of 9464.
  exporter = new PrometheusExporter({ port });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
});
afterAll(async () => {
  await exporter?.shutdown();
  metrics.disable();
});

describe.skipIf(!postgresUrl)('metrics scraped by Prometheus', () => {
  let fixture: StoreFixture;
  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });

  it('are the documented snippet’s, under the documented names', async () => {
    expect(doc).toContain(
      [
        "import { metrics } from '@opentelemetry/api';",
        "import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';",
        "import { MeterProvider } from '@opentelemetry/sdk-metrics';",
        '',
        '// Serves http://0.0.0.0:9464/metrics for Prometheus to scrape.',
        'const exporter = new PrometheusExporter({ port: 9464 });',
        'metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));',
      ].join('\n'),
    );

    const { store } = fixture;
    const broker = createMemoryBroker();
    const flaky = { failures: 1 };
    const saga = defineSaga<{ claimId: string }>('claim-follow-up', { version: 1 })
      .step('checkStatus', {
        run: () => {
          if (flaky.failures-- > 0) throw new Error('payer portal unavailable');
          return { status: 'pending' };
        },
        retry: { attempts: 2, initialInterval: '10ms' },
      })
      .step('notifyBilling', { run: () => null });
    const runtime = createSagaRuntime({ store, sagas: [saga], workers: 2 });
    try {
      await broker.subscribe({ queue: 'billing', topics: ['ClaimSubmitted'], handler: () => {} });
      const submitted = createEnvelope({
        type: 'ClaimSubmitted',
        data: { claimId: 'c-1' },
        source: 'billing',
        actor: { id: 'u-1', role: 'billing-clerk' },
      });
      await store.append({ type: 'claim', id: 'c-1' }, [submitted], {
        expectedVersion: 'no_stream',
      });
      await broker.publish(submitted);
      const id = sagaId('claim');
      await runtime.start('claim-follow-up', { claimId: 'c-1' }, { id });
      expect((await runtime.waitUntil(id, { timeout: '20s' })).status).toBe('completed');

      const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      /** The value of the series with this name and these labels (among others). */
      const value = (name: string, labels: Record<string, string> = {}) => {
        const line = scraped
          .split('\n')
          .find(
            (l) =>
              (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) &&
              Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
          );
        return line === undefined ? undefined : Number(line.split(' ').at(-1));
      };
      expect(
        value('evident_eventstore_appended_events_total', { evident_stream_type: 'claim' }),
      ).toBe(1);
      expect(
        value('evident_eventstore_append_duration_count', { evident_outcome: 'ok' }),
      ).toBeGreaterThanOrEqual(1);
      expect(value('evident_broker_published_messages_total', { messaging_system: 'memory' })).toBe(
        1,
      );
      expect(
        value('evident_saga_instances', {
          evident_saga: 'claim-follow-up',
          evident_saga_status: 'completed',
        }),
      ).toBe(1);
      expect(value('evident_saga_timers_due')).toBe(0);
      expect(value('evident_saga_step_retries_total', { evident_saga_step: 'checkStatus' })).toBe(
        1,
      );
      expect(
        value('evident_saga_step_duration_count', {
          evident_saga_step: 'checkStatus',
          evident_saga_outcome: 'error',
        }),
      ).toBe(1);
      // Every saga and append metric the docs list is scraped under its name (counters appear
      // once something counted: nothing was dead-lettered here, and this store has no group
      // commit, whose statement sizes the event store's telemetry test reads).
      const documented = [
        ...doc.matchAll(/^\| `(evident\.[a-z_.]+)` \| (?:counter|histogram|gauge) /gm),
      ]
        .map((m) => m[1]!)
        .filter(
          (n) =>
            /^evident\.(saga|eventstore\.append)/.test(n) &&
            n !== 'evident.saga.dead_letters' &&
            n !== 'evident.eventstore.append.group_size',
        );
      expect(documented.length).toBe(6);
      for (const name of documented) expect(scraped, name).toContain(name.replaceAll('.', '_'));
    } finally {
      await runtime.stop();
      await broker.close();
    }
  });
});
