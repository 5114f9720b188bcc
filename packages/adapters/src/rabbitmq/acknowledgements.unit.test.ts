import type { Channel, ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { Acknowledgements } from './acknowledgements.js';

/** A channel that records what it was told, as `ack 7`, `ack ≤9` (multiple) or `nack 3`. */
function recordingChannel(options: { closed?: boolean } = {}) {
  const sent: string[] = [];
  const channel = {
    ack(message: ConsumeMessage, allUpTo?: boolean) {
      if (options.closed) throw new Error('Channel closed');
      sent.push(`ack ${allUpTo ? '≤' : ''}${message.fields.deliveryTag}`);
    },
    nack(message: ConsumeMessage) {
      sent.push(`nack ${message.fields.deliveryTag}`);
    },
  } as unknown as Channel;
  return { channel, sent };
}

const message = (deliveryTag: number) => ({ fields: { deliveryTag } }) as ConsumeMessage;
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Deliver tags 1..n and return their messages. */
function deliver(acks: Acknowledgements, n: number): ConsumeMessage[] {
  const messages = Array.from({ length: n }, (_, i) => message(i + 1));
  for (const m of messages) acks.delivered(m);
  return messages;
}

describe('Acknowledgements', () => {
  it('sends the acks of one turn as one multiple ack when nothing older is still handled', async () => {
    const { channel, sent } = recordingChannel();
    const acks = new Acknowledgements(channel);
    const [m1, m2, m3] = deliver(acks, 3);
    acks.ack(m2!);
    acks.ack(m3!);
    acks.ack(m1!);
    expect(sent).toEqual([]); // nothing before the end of the turn
    await endOfTurn();
    expect(sent).toEqual(['ack ≤3']);
  });

  it('never lets a multiple ack reach a delivery still being handled: later ones go one by one', async () => {
    const { channel, sent } = recordingChannel();
    const acks = new Acknowledgements(channel);
    const [m1, m2, m3, m4, m5] = deliver(acks, 5);
    acks.ack(m1!);
    acks.ack(m2!);
    // 3 is still being handled.
    acks.ack(m5!);
    acks.ack(m4!);
    await endOfTurn();
    expect(sent).toEqual(['ack 5', 'ack 4', 'ack ≤2']);
    // When 3 ends, it goes alone: 4 and 5 were already acknowledged.
    acks.ack(m3!);
    await endOfTurn();
    expect(sent.slice(3)).toEqual(['ack ≤3']);
  });

  it('rejects at once, and a rejected delivery no longer holds back the ones after it', async () => {
    const { channel, sent } = recordingChannel();
    const acks = new Acknowledgements(channel);
    const [m1, m2, m3] = deliver(acks, 3);
    acks.nack(m1!);
    expect(sent).toEqual(['nack 1']);
    acks.ack(m3!);
    acks.ack(m2!);
    await endOfTurn();
    expect(sent).toEqual(['nack 1', 'ack ≤3']);
  });

  it('sends what is pending when flushed, and nothing twice', async () => {
    const { channel, sent } = recordingChannel();
    const acks = new Acknowledgements(channel);
    const [m1] = deliver(acks, 1);
    acks.ack(m1!);
    acks.flush();
    expect(sent).toEqual(['ack ≤1']);
    await endOfTurn();
    acks.flush();
    expect(sent).toEqual(['ack ≤1']);
  });

  it('drops the acks of a channel that closed in between instead of throwing', async () => {
    const { channel, sent } = recordingChannel({ closed: true });
    const acks = new Acknowledgements(channel);
    const [m1] = deliver(acks, 1);
    acks.ack(m1!);
    expect(() => acks.flush()).not.toThrow();
    expect(sent).toEqual([]);
  });
});
