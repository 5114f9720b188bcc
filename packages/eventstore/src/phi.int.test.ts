import { randomBytes } from 'node:crypto';
import { createSchemaRegistry, type Envelope, isEvidentError } from '@evident/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import {
  event,
  pgliteFactory,
  postgresFactory,
  type StoreFactory,
  type StoreFixture,
  stream,
} from '../test/fixtures.js';
import {
  createEventStore,
  type EventStore,
  type KeyProvider,
  localKeyProvider,
  shredSubject,
  verifyStream,
} from './index.js';

/** Scenario 30 of RELIABILITY.md: PHI fields encrypted per patient key; the chain verifies on ciphertext. */
const registry = createSchemaRegistry().register('ClaimSubmitted', {
  version: 1,
  schema: {
    type: 'object',
    required: ['patientId', 'patient', 'payer'],
    properties: {
      patientId: { type: 'string', maxLength: 64 },
      patient: {
        type: 'object',
        properties: {
          name: { type: 'string', maxLength: 200, phi: true },
          dateOfBirth: { type: 'string', maxLength: 10, phi: true },
        },
      },
      dependents: {
        type: 'array',
        items: {
          type: 'object',
          properties: { name: { type: 'string', maxLength: 200, phi: true } },
        },
      },
      payer: { type: 'string', maxLength: 64 },
    },
  },
});

const secret = 'Jane Q. Patient';
const claim = (patientId: string, extra: Record<string, unknown> = {}) =>
  event('ClaimSubmitted', {
    data: {
      patientId,
      patient: { name: secret, dateOfBirth: '1980-02-29' },
      dependents: [{ name: 'Jim Patient' }],
      payer: 'delta-dental',
      ...extra,
    },
  });

function phiTests(name: string, factory: StoreFactory) {
  describe(`PHI encryption on ${name}`, () => {
    let fixture: StoreFixture;
    let plain: EventStore;
    let phi: EventStore;
    let keys: KeyProvider;
    let providerDown = false;
    const connection = () =>
      plain.database.kind === 'pg'
        ? { pool: plain.database.pool! }
        : { pglite: plain.database.pglite! };
    const subject = (e: Envelope) => (e.data as { patientId: string }).patientId;
    const withKeys = (provider: KeyProvider) =>
      createEventStore({
        ...connection(),
        schema: plain.schema,
        phi: { registry, keys: provider, subject },
      });

    beforeAll(async () => {
      fixture = await factory();
      plain = fixture.store;
      const local = localKeyProvider({ key: randomBytes(32) });
      // The same key-encryption key, behind a switch that takes the provider down.
      keys = {
        id: local.id,
        wrap: (k, c) =>
          providerDown ? Promise.reject(new Error('KMS unreachable')) : local.wrap(k, c),
        unwrap: (k, c) =>
          providerDown ? Promise.reject(new Error('KMS unreachable')) : local.unwrap(k, c),
      };
      phi = withKeys(keys);
    });
    afterAll(() => fixture?.cleanup());

    it('stores PHI fields as ciphertext and reads them back for holders of the key provider', async () => {
      const s = stream();
      const e = claim('p-1001');
      await phi.append(s, [e], { expectedVersion: 'no_stream' });
      const [read] = await phi.readStream(s);
      expect(read!.data).toEqual(e.data);
      const [raw] = await plain.database.query<{ data: string }>(
        `select data::text as data from "${plain.schema}".events where event_id = $1`,
        [e.id],
      );
      expect(raw!.data).not.toContain(secret);
      expect(raw!.data).not.toContain('1980-02-29');
      expect(raw!.data).not.toContain('Jim Patient');
      expect(raw!.data).toContain('delta-dental'); // not PHI: stays searchable
      // Without the key provider, a reader sees only sealed values.
      const [sealed] = await plain.readStream(s);
      expect((sealed!.data as { patient: { name: { $phi: number } } }).patient.name.$phi).toBe(1);
      // The hash chain covers the ciphertext: verification needs no keys.
      expect((await verifyStream(plain, s)).ok).toBe(true);
    });

    it('decrypts through every read path: log, journeys, aggregates', async () => {
      const s = stream();
      const e = claim('p-1002');
      const written = await phi.append(s, [e], { expectedVersion: 'no_stream' });
      const all = await phi.readAll({ limit: 100_000 });
      const found = all.events.find((x) => x.id === e.id);
      if (found) expect(found.data).toEqual(e.data);
      expect((await phi.readByCorrelation(e.correlationId))[0]!.data).toEqual(e.data);
      const state = await phi.aggregate(s, {
        initialState: () => '',
        evolve: (_: string, x) => (x.data as { patient: { name: string } }).patient.name,
      });
      expect(state.state).toBe(secret);
      expect(written.nextExpectedVersion).toBe(1);
    });

    it('refuses ciphertext moved to another event', async () => {
      const a = stream();
      const b = stream();
      await phi.append(a, [claim('p-1003')], { expectedVersion: 'no_stream' });
      const victim = claim('p-1004');
      await phi.append(b, [victim], { expectedVersion: 'no_stream' });
      await plain.database.transaction(async (tx) => {
        await tx.exec(
          `alter table "${plain.schema}".events disable trigger events_refuse_update_delete`,
        );
        await tx.query(
          `update "${plain.schema}".events set data = jsonb_set(data, '{patient,name}',
             (select data #> '{patient,name}' from "${plain.schema}".events where stream_id = $1))
           where stream_id = $2`,
          [a.id, b.id],
        );
        await tx.exec(
          `alter table "${plain.schema}".events enable trigger events_refuse_update_delete`,
        );
      });
      const error = await withKeys(keys)
        .readStream(b)
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(isEvidentError(error, 'PHI_DECRYPTION_FAILED')).toBe(true);
      expect(String((error as Error).message)).not.toContain(secret);
    });

    it('needs an exact expected version for PHI, so ciphertext is bound to its version', async () => {
      await expect(
        phi.append(stream(), [claim('p-1005')], { expectedVersion: 'any' }),
      ).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      // Events without PHI fields are not concerned.
      await phi.append(stream(), [event('ClaimAcknowledged')], { expectedVersion: 'any' });
    });

    it('fails closed when the key provider is down: nothing written, nothing shown', async () => {
      const s = stream();
      await phi.append(s, [claim('p-1006')], { expectedVersion: 'no_stream' });
      providerDown = true;
      try {
        const fresh = withKeys(keys);
        const write = stream();
        const error = await fresh
          .append(write, [claim('p-1007')], { expectedVersion: 'no_stream' })
          .catch((e: unknown) => e);
        expect(isEvidentError(error, 'PHI_KEY_UNAVAILABLE')).toBe(true);
        expect(await plain.streamVersion(write)).toBe(0);
        await expect(fresh.readStream(s)).rejects.toMatchObject({ code: 'PHI_KEY_UNAVAILABLE' });
      } finally {
        providerDown = false;
      }
    });

    it('shreds a patient key only past the retention period', async () => {
      const s = stream();
      await phi.append(s, [claim('p-1008')], { expectedVersion: 'no_stream' });
      await expect(shredSubject(plain, 'p-1008')).rejects.toMatchObject({
        code: 'PHI_SHREDDING_REFUSED',
      });
      await expect(shredSubject(plain, 'p-1008', { retentionYears: 1 })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await plain.database.query(
        `update "${plain.schema}".data_keys set last_used_at = now() - interval '8 years'`,
      );
      expect(await shredSubject(plain, 'p-1008')).toEqual({ shredded: true });
      const [read] = await withKeys(keys).readStream(s);
      expect((read!.data as { patient: { name: unknown } }).patient.name).toEqual({
        $phi: 'shredded',
      });
      expect((read!.data as { payer: string }).payer).toBe('delta-dental');
      await expect(
        withKeys(keys).append(s, [claim('p-1008')], { expectedVersion: 1 }),
      ).rejects.toMatchObject({ code: 'PHI_KEY_UNAVAILABLE' });
    });
  });
}

phiTests('PGlite', pgliteFactory());
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  phiTests('PostgreSQL', postgresFactory(postgresUrl!));
});
