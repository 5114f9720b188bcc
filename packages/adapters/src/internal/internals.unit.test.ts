import { createEnvelope, EvidentError } from '@evident/envelope';
import { describe, expect, it } from 'vitest';
import { describeFailure } from '../deadLetter.js';
import { filterPolicy } from '../sqs/topology.js';
import { KeyedLanes } from './keyedLanes.js';
import { prepareOutgoing } from './outgoing.js';
import { deadLetterHeaders, readDeadLetter } from './wire.js';

const envelope = createEnvelope({
  type: 'ClaimSubmitted',
  data: { claimId: 'c-1' },
  source: 'billing-service',
  actor: { id: 'u-17', role: 'billing-clerk' },
});

describe('delivery internals', () => {
  it('runs tasks of one key in order and tasks of different keys side by side', async () => {
    const lanes = new KeyedLanes();
    const log: string[] = [];
    const task = (name: string, ms: number) => () =>
      new Promise<void>((r) =>
        setTimeout(() => {
          log.push(name);
          r();
        }, ms),
      );
    await Promise.all([
      lanes.run('a', task('a1', 30)),
      lanes.run('a', task('a2', 1)),
      lanes.run('b', task('b1', 10)),
    ]);
    expect(log).toEqual(['b1', 'a1', 'a2']);
  });

  it('keeps a failed task from blocking the next one of its key', async () => {
    const lanes = new KeyedLanes();
    const first = lanes.run('a', async () => {
      throw new Error('boom');
    });
    await expect(first).rejects.toThrow('boom');
    await expect(lanes.run('a', async () => 'next')).resolves.toBe('next');
  });

  it('describes a failure by name, code and message only', () => {
    const error = Object.assign(new TypeError('bad claim'), {
      code: 'E_CLAIM',
      patient: 'Jane Doe',
    });
    expect(describeFailure(error)).toEqual({
      name: 'TypeError',
      code: 'E_CLAIM',
      message: 'bad claim',
    });
    expect(describeFailure(new EvidentError('X_FAILED', 'x'))).toEqual({
      name: 'EvidentError',
      code: 'X_FAILED',
      message: 'x',
    });
    expect(describeFailure('Jane Doe, DOB 1970-01-01')).toEqual({
      name: 'NonErrorThrown',
      message: 'a string was thrown',
    });
    expect(describeFailure(new Error('y'.repeat(5000))).message).toHaveLength(1000);
  });

  it('defaults the topic to the event type and the deduplication id to the event id', () => {
    const out = prepareOutgoing(envelope, undefined);
    expect(out).toMatchObject({
      topic: 'ClaimSubmitted',
      deduplicationId: envelope.id,
      priority: 0,
      delayMs: 0,
    });
    expect(JSON.parse(out.body)).toEqual(envelope);
  });

  it('reads back the dead-letter headers it wrote, and treats a message without them as moved by the broker', () => {
    const headers = deadLetterHeaders(
      'handler_failed',
      { name: 'PayerError', code: 'PAYER_DOWN', message: 'down' },
      3,
    );
    const read = readDeadLetter({
      queue: 'claims',
      messageId: 'm-1',
      body: JSON.stringify(envelope),
      headers: (k) => headers[k],
      brokerMoved: { attempts: 5, error: { name: 'X', message: 'x' } },
    });
    expect(read).toMatchObject({
      reason: 'handler_failed',
      attempts: 3,
      error: { name: 'PayerError', code: 'PAYER_DOWN', message: 'down' },
      topic: 'ClaimSubmitted',
      envelope,
    });
    const moved = readDeadLetter({
      queue: 'claims',
      messageId: 'm-2',
      body: 'garbage',
      headers: () => undefined,
      brokerMoved: { attempts: 5, error: { name: 'DeliveryLimitExceeded', message: 'x' } },
    });
    expect(moved).toMatchObject({ reason: 'delivery_limit', attempts: 5, body: 'garbage' });
    expect(moved.envelope).toBeUndefined();
  });

  it('turns subscription topics into an SNS filter policy, refusing what SNS cannot filter', () => {
    expect(filterPolicy(['ClaimSubmitted', 'ClaimDenied'])).toBe(
      JSON.stringify({ 'evident-topic': ['ClaimSubmitted', 'ClaimDenied'] }),
    );
    expect(filterPolicy(['billing.#'])).toBe(
      JSON.stringify({ 'evident-topic': ['billing', { prefix: 'billing.' }] }),
    );
    expect(filterPolicy(['ClaimSubmitted', '#'])).toBeUndefined();
    expect(() => filterPolicy(['*.ClaimSubmitted'])).toThrow(/exact topics/);
  });
});
