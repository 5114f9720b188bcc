import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import {
  events,
  pgliteFactory,
  postgresFactory,
  type StoreFactory,
  type StoreFixture,
  stream,
} from '../test/fixtures.js';
import {
  createEventStore,
  createIntegrityCheckpoint,
  type EventStore,
  verifyAll,
  verifyIntegrityCheckpoints,
  verifyStream,
} from './index.js';

/**
 * Scenario 27 of RELIABILITY.md: rows changed, removed or reordered behind the application's back
 * (as the owner, with the append-only triggers disabled) are found at the right link, and a cut
 * tail is found against a signed checkpoint.
 */
function integrityTests(name: string, factory: StoreFactory) {
  describe(`hash chain on ${name}`, () => {
    let fixture: StoreFixture;
    let store: EventStore;
    let table: string;
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');

    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
      table = `"${store.schema}".events`;
    });
    afterAll(() => fixture?.cleanup());

    /** Change history the way an attacker with the owner's rights would. */
    async function tamper(sql: string, params: unknown[] = []) {
      await store.database.transaction(async (tx) => {
        await tx.exec(`alter table ${table} disable trigger events_refuse_update_delete`);
        await tx.query(sql, params);
        await tx.exec(`alter table ${table} enable trigger events_refuse_update_delete`);
      });
    }

    const chained = async (count: number) => {
      const s = stream();
      await store.append(s, events(Math.min(count, 4)), { expectedVersion: 'no_stream' });
      for (let v = 4; v < count; v++) await store.append(s, events(1), { expectedVersion: v });
      return s;
    };

    it('verifies untouched streams, appended one by one and in batches', async () => {
      const s = await chained(10);
      // A batch onto a chain that exists (its links start from the stream's head), and a single
      // append after it (which starts from the head the batch left on the stream row).
      await store.append(s, events(5), { expectedVersion: 10 });
      await store.append(s, events(1), { expectedVersion: 15 });
      expect(await verifyStream(store, s)).toEqual({
        ok: true,
        streams: 1,
        events: 16,
        broken: [],
      });
      const [first, second] = await store.database.query<{ hash: Uint8Array }>(
        `select hash from ${table} where stream_id = $1 order by stream_version limit 2`,
        [s.id],
      );
      expect(Buffer.from(first!.hash)).toHaveLength(32);
      expect(Buffer.from(first!.hash).equals(Buffer.from(second!.hash))).toBe(false);
    });

    it('names the edited event', async () => {
      const s = await chained(8);
      await tamper(
        `update ${table} set data = '{"n": -1}' where stream_id = $1 and stream_version = 5`,
        [s.id],
      );
      expect((await verifyStream(store, s)).broken).toEqual([
        { stream: s, version: 5, reason: 'hash_mismatch' },
      ]);
    });

    it('names the link after a removed event', async () => {
      const s = await chained(8);
      await tamper(`delete from ${table} where stream_id = $1 and stream_version = 3`, [s.id]);
      expect((await verifyStream(store, s)).broken).toEqual([
        { stream: s, version: 4, reason: 'missing_version' },
      ]);
    });

    it('names the first of two reordered events', async () => {
      const s = await chained(8);
      // Swap the payloads of versions 6 and 7.
      await tamper(
        `update ${table} as e set data = o.data
         from ${table} as o
         where e.stream_id = $1 and o.stream_id = $1
           and ((e.stream_version = 6 and o.stream_version = 7) or (e.stream_version = 7 and o.stream_version = 6))`,
        [s.id],
      );
      expect((await verifyStream(store, s)).broken).toEqual([
        { stream: s, version: 6, reason: 'hash_mismatch' },
      ]);
    });

    it('notices a cut tail through the stream head, and through a signed checkpoint when the head was rewritten too', async () => {
      const s = await chained(6);
      const checkpoint = await createIntegrityCheckpoint(store, { privateKey });
      expect(checkpoint.streams).toBeGreaterThan(0);
      expect((await verifyIntegrityCheckpoints(store, { publicKey })).ok).toBe(true);
      await tamper(`delete from ${table} where stream_id = $1 and stream_version > 4`, [s.id]);
      expect((await verifyStream(store, s)).broken).toEqual([
        { stream: s, version: 5, reason: 'head_mismatch' },
      ]);
      // A careful attacker rewrites the head to match: the chain itself is consistent again...
      await store.database.query(
        `update "${store.schema}".streams set version = 4,
           last_hash = (select hash from ${table} where stream_id = $1 and stream_version = 4)
         where stream_id = $1`,
        [s.id],
      );
      expect((await verifyStream(store, s)).ok).toBe(true);
      // ...but not with what was signed.
      const check = await verifyIntegrityCheckpoints(store, {
        publicKey,
        checkpointId: checkpoint.id,
      });
      expect(check.ok).toBe(false);
      expect(check.problems).toEqual([
        { checkpoint: checkpoint.id, reason: 'head_missing', stream: s, version: 6 },
      ]);
    });

    it('refuses a forged checkpoint and a foreign key', async () => {
      const checkpoint = await createIntegrityCheckpoint(store, { privateKey });
      await store.database.query(
        `update "${store.schema}".integrity_checkpoint_heads set version = version + 1 where checkpoint_id = $1`,
        [checkpoint.id],
      );
      const check = await verifyIntegrityCheckpoints(store, {
        publicKey,
        checkpointId: checkpoint.id,
      });
      expect(check.problems).toEqual([{ checkpoint: checkpoint.id, reason: 'bad_signature' }]);
      const other = generateKeyPairSync('ed25519').publicKey;
      const foreign = await verifyIntegrityCheckpoints(store, {
        publicKey: other,
        checkpointId: checkpoint.id,
      });
      expect(foreign.problems).toEqual([{ checkpoint: checkpoint.id, reason: 'unknown_key' }]);
      await expect(
        createIntegrityCheckpoint(store, { privateKey: publicKey }),
      ).rejects.toMatchObject({ code: 'INTEGRITY_KEY_INVALID' });
    });

    it('reports every broken stream in one pass, and unchained events as such', async () => {
      const plain = createEventStore({
        ...(store.database.kind === 'pg'
          ? { pool: store.database.pool! }
          : { pglite: store.database.pglite! }),
        schema: store.schema,
        integrity: false,
      });
      const unchained = stream();
      await plain.append(unchained, events(2), { expectedVersion: 'no_stream' });
      const all = await verifyAll(store);
      expect(all.ok).toBe(false);
      expect(all.broken).toContainEqual({ stream: unchained, version: 1, reason: 'unchained' });
      // Edited, removed, reordered and unchained; the cut stream's rewritten head is consistent.
      expect(all.broken.map((b) => b.reason).sort()).toEqual([
        'hash_mismatch',
        'hash_mismatch',
        'missing_version',
        'unchained',
      ]);
    });
  });
}

integrityTests('PGlite', pgliteFactory());
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  integrityTests('PostgreSQL', postgresFactory(postgresUrl!));
});
