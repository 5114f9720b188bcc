import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { offSpan, tracingOff } from './index.js';

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
