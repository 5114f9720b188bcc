import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { pgliteFactory, type StoreFixture } from '../test/fixtures.js';
import { createDurableMachine } from './index.js';

/** A machine whose context holds PHI, to show spans carry state names and never context. */
const intake = setup({
  types: {
    context: {} as { patientName: string },
    events: {} as { type: 'REGISTER'; patientName: string } | { type: 'VERIFY' },
  },
}).createMachine({
  id: 'intake',
  context: { patientName: '' },
  initial: 'new',
  states: {
    new: {
      on: {
        REGISTER: {
          target: 'registered',
          actions: assign({ patientName: ({ event }) => event.patientName }),
        },
      },
    },
    registered: { on: { VERIFY: 'verified' } },
    verified: { type: 'final' },
  },
});

describe('telemetry of durable machines', () => {
  const spans = new InMemorySpanExporter();
  let fixture: StoreFixture;
  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    );
    fixture = await pgliteFactory()();
  });
  afterAll(async () => {
    await fixture?.cleanup();
    trace.disable();
    context.disable();
  });

  it('traces each transition with state names and no context', async () => {
    const marker = 'Jane-Q-Patient';
    const durable = createDurableMachine(intake, { store: fixture.store, streamType: 'intake' });
    const actor = { id: 'u-1', role: 'front-desk' };
    await durable.send(
      'i-1',
      { type: 'REGISTER', patientName: marker },
      { actor, correlationId: 'journey-7' },
    );
    await durable.send('i-1', { type: 'VERIFY' }, { actor });
    const sends = spans.getFinishedSpans().filter((s) => s.name === 'evident.statemachine.send');
    expect(
      sends.map((s) => [s.attributes['evident.state.from'], s.attributes['evident.state.to']]),
    ).toEqual([
      ['"new"', '"registered"'],
      ['"registered"', '"verified"'],
    ]);
    expect(sends[0]!.attributes).toMatchObject({
      'evident.machine': 'intake',
      'evident.correlation_id': 'journey-7',
    });
    const appends = spans.getFinishedSpans().filter((s) => s.name === 'evident.append');
    expect(appends.length).toBeGreaterThanOrEqual(2);
    expect(appends[0]!.parentSpanContext?.spanId).toBe(sends[0]!.spanContext().spanId);
    expect(JSON.stringify(spans.getFinishedSpans().map((s) => s.attributes))).not.toContain(marker);
  });
});
