import { afterEach, describe, expect, it, vi } from 'vitest';
import { brokerContract } from '../../test/brokerContract.js';
import { event } from '../../test/fixtures.js';
import { isBrokerError } from '../index.js';
import { createMemoryBroker } from './index.js';

brokerContract('memory', async () => {
  const broker = createMemoryBroker();
  return {
    broker,
    publishRaw: (topic, body) => broker.publishRaw(topic, body),
    cleanup: () => broker.close(),
    backoffUnitMs: 1,
  };
});

describe('memory broker', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs retries on fake timers: nothing before the backoff elapses, the retry right after', async () => {
    vi.useFakeTimers();
    const broker = createMemoryBroker();
    const attempts: number[] = [];
    await broker.subscribe({
      queue: 'claims',
      topics: ['ClaimSubmitted'],
      retry: { attempts: 3, backoff: { initialMs: 60_000, factor: 10, maxMs: 3_600_000 } },
      handler: (_, { attempt }) => {
        attempts.push(attempt);
        throw new Error('payer down');
      },
    });
    await broker.publish(event());
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts).toEqual([1]);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(attempts).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(attempts).toEqual([1, 2, 3]);
    expect((await broker.deadLetters('claims')).map((d) => d.attempts)).toEqual([3]);
    await broker.close();
  });

  it('forgets a deduplication id once its window has passed', async () => {
    vi.useFakeTimers();
    const broker = createMemoryBroker({ deduplicationWindowMs: 1000 });
    const seen: string[] = [];
    await broker.subscribe({
      queue: 'q',
      topics: ['ClaimSubmitted'],
      handler: (e) => void seen.push(e.id),
    });
    const e = event();
    await broker.publish(e);
    await broker.publish(e);
    await vi.advanceTimersByTimeAsync(1001);
    await broker.publish(e);
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([e.id, e.id]);
    await broker.close();
  });

  it('delivers duplicates when de-duplication is off, for testing idempotent handlers', async () => {
    const broker = createMemoryBroker({ deduplicationWindowMs: 0 });
    const seen: string[] = [];
    await broker.subscribe({
      queue: 'q',
      topics: ['ClaimSubmitted'],
      handler: (e) => void seen.push(e.id),
    });
    const e = event();
    await broker.publish(e);
    await broker.publish(e);
    await vi.waitFor(() => expect(seen).toEqual([e.id, e.id]));
    await broker.close();
  });

  it('aborts handlers that outlive the close timeout and redelivers their messages as a new attempt', async () => {
    const broker = createMemoryBroker();
    let signal: AbortSignal | undefined;
    const first = await broker.subscribe({
      queue: 'q',
      topics: ['ClaimSubmitted'],
      handler: (_, context) => {
        signal = context.signal;
        return new Promise(() => {});
      },
    });
    await broker.publish(event());
    await vi.waitFor(() => expect(signal).toBeDefined());
    await first.close({ timeoutMs: 50 });
    expect(signal!.aborted).toBe(true);
    expect(isBrokerError(signal!.reason, 'BROKER_CLOSED')).toBe(true);
    const attempts: number[] = [];
    await broker.subscribe({
      queue: 'q',
      topics: ['ClaimSubmitted'],
      handler: (_, c) => void attempts.push(c.attempt),
    });
    await vi.waitFor(() => expect(attempts).toEqual([2]));
    await broker.close();
  });

  it('refuses to redeclare a queue with a different maxPriority with TOPOLOGY_CONFLICT', async () => {
    const broker = createMemoryBroker();
    await broker.subscribe({ queue: 'q', topics: ['A'], handler: () => {} });
    await expect(
      broker.subscribe({ queue: 'q', topics: ['A'], handler: () => {}, maxPriority: 5 }),
    ).rejects.toMatchObject({ code: 'TOPOLOGY_CONFLICT' });
    await broker.close();
  });

  it('matches wildcard topic patterns as AMQP does', async () => {
    const broker = createMemoryBroker();
    const seen: string[] = [];
    await broker.subscribe({
      queue: 'q',
      topics: ['billing.#'],
      handler: (_, c) => void seen.push(c.topic),
    });
    await broker.publish(event(), { topic: 'billing.ClaimSubmitted' });
    await broker.publish(event(), { topic: 'billing' });
    await broker.publish(event(), { topic: 'scheduling.AppointmentBooked' });
    await vi.waitFor(() => expect(seen.sort()).toEqual(['billing', 'billing.ClaimSubmitted']));
    await broker.close();
  });
});
