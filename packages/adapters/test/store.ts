/**
 * Event stores for the relay and inbox tests, each in a fresh schema with the inbox table, and
 * how to remove every trace of them: the event store's `createTestStore`, as an application's
 * tests would use it.
 */
import { randomBytes } from 'node:crypto';
import { createEnvelope, type Envelope } from '@evident/envelope';
import type { Checkpoint, EventStore } from '@evident/eventstore';
import { createTestStore, type TestStore } from '@evident/eventstore/testing';
import { migrateInbox } from '../src/inbox/index.js';

export interface StoreFixture {
  readonly store: EventStore;
  readonly kind: 'pg' | 'pglite';
  /** Close the store and drop its schema and roles. */
  readonly cleanup: () => Promise<void>;
}

export type StoreFactory = () => Promise<StoreFixture>;

export function postgresFactory(url: string, poolSize = 8): StoreFactory {
  return () => migrated(createTestStore({ connectionString: url, poolSize }), 'pg');
}

export function pgliteFactory(): StoreFactory {
  return () => migrated(createTestStore(), 'pglite');
}

/** A store from the event store's own test helper, with the inbox table. */
async function migrated(
  made: Promise<TestStore>,
  kind: StoreFixture['kind'],
): Promise<StoreFixture> {
  const { store, cleanup } = await made;
  await migrateInbox(store);
  return { store, kind, cleanup };
}

let counter = 0;

/** A claim event; `data` carries a counter so events differ. */
export function claimEvent(type = 'ClaimSubmitted', data: Record<string, unknown> = {}): Envelope {
  counter += 1;
  return createEnvelope({
    type,
    data: { n: counter, ...data },
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
  });
}

/** A fresh claim stream. */
export const claimStream = (type = 'claim') => ({
  type,
  id: `c-${randomBytes(6).toString('hex')}`,
});

/**
 * Append `perStream` events to each of `streams` new streams, interleaved (round-robin) so the log
 * mixes streams; each event's data says its stream and its number in it. Returns the events in
 * append order and the last checkpoint.
 */
export async function appendClaims(
  store: EventStore,
  options: { streams: number; perStream: number; type?: string; concurrency?: number },
): Promise<{ events: Envelope[]; checkpoint: Checkpoint; streams: string[] }> {
  const streams = Array.from({ length: options.streams }, () => claimStream());
  const events: Envelope[] = [];
  let checkpoint: Checkpoint = '0000000000000000:0000000000000000';
  for (let seq = 1; seq <= options.perStream; seq++) {
    const round = streams.map((stream) => {
      const e = claimEvent(options.type ?? 'ClaimSubmitted', { stream: stream.id, seq });
      events.push(e);
      return { stream, e };
    });
    const width = options.concurrency ?? 8;
    for (let i = 0; i < round.length; i += width) {
      const results = await Promise.all(
        round
          .slice(i, i + width)
          .map(({ stream, e }) =>
            store.append(stream, [e], { expectedVersion: seq === 1 ? 'no_stream' : seq - 1 }),
          ),
      );
      for (const r of results)
        if (r.checkpoint && r.checkpoint > checkpoint) checkpoint = r.checkpoint;
    }
  }
  return { events, checkpoint, streams: streams.map((s) => s.id) };
}

/**
 * Per stream, the `seq` numbers in the order they were first received: in order when the
 * relay kept each stream's order, whatever duplicates came later.
 */
export function firstSeen(received: readonly Envelope[]): Map<string, number[]> {
  const seen = new Set<string>();
  const byStream = new Map<string, number[]>();
  for (const e of received) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    const { stream, seq } = e.data as { stream: string; seq: number };
    const list = byStream.get(stream) ?? [];
    list.push(seq);
    byStream.set(stream, list);
  }
  return byStream;
}
