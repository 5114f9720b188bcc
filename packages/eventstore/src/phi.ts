import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  type Envelope,
  EvidentError,
  InvalidArgumentError,
  type SchemaRegistry,
} from '@evident/envelope';
import type { Database } from './database.js';
import type { ExpectedVersion } from './expectedVersion.js';
import type { RecordedEvent } from './recordedEvent.js';
import { quoteIdentifier, type StreamId } from './streamId.js';

/**
 * Wraps and unwraps data keys with a key-encryption key held outside the database (a local
 * secret, AWS KMS, an HSM). `context` is bound to the wrapped key (AAD / encryption context).
 */
export interface KeyProvider {
  /** Identifies the key-encryption key, stored beside each data key it wrapped. */
  readonly id: string;
  wrap(dataKey: Uint8Array, context: Readonly<Record<string, string>>): Promise<Uint8Array>;
  unwrap(wrapped: Uint8Array, context: Readonly<Record<string, string>>): Promise<Uint8Array>;
}

/** PHI could not be encrypted or decrypted; nothing was written, nothing is shown in clear. */
export class PhiError extends EvidentError<
  'PHI_KEY_UNAVAILABLE' | 'PHI_DECRYPTION_FAILED' | 'PHI_SHREDDING_REFUSED'
> {}

/**
 * A key provider whose key-encryption key is a 32-byte secret held by the process (from a secret
 * manager, never from the database). AES-256-GCM, the context as additional data.
 *
 * @example
 * ```ts
 * const keys = localKeyProvider({ key: Buffer.from(process.env.EVIDENT_KEK!, 'base64') });
 * ```
 */
export function localKeyProvider(options: {
  readonly key: Uint8Array;
  readonly id?: string;
}): KeyProvider {
  const key = Buffer.from(options.key ?? []);
  if (key.length !== 32) throw new InvalidArgumentError('a local key-encryption key is 32 bytes');
  const id = options.id ?? `local:${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
  const aad = (context: Readonly<Record<string, string>>) =>
    Buffer.from(JSON.stringify(Object.entries(context).sort()));
  return {
    id,
    async wrap(dataKey, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(aad(context));
      const body = Buffer.concat([cipher.update(dataKey), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]);
    },
    async unwrap(wrapped, context) {
      const data = Buffer.from(wrapped);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      decipher.setAAD(aad(context));
      decipher.setAuthTag(data.subarray(12, 28));
      return Buffer.concat([decipher.update(data.subarray(28)), decipher.final()]);
    },
  };
}

export interface PhiOptions {
  /** The schemas whose `phi: true` fields are encrypted (`registry.phiPaths`). */
  readonly registry: SchemaRegistry;
  readonly keys: KeyProvider;
  /**
   * Whose data key protects an event's PHI: usually the patient's id. Each subject has one data
   * key, so one patient's data can be reasoned about (and, past retention, shredded) alone.
   */
  readonly subject: (event: Envelope, stream: StreamId) => string;
}

/** What a PHI field holds in the table: the ciphertext and which data key it needs. */
interface Sealed {
  readonly $phi: 1;
  readonly key: string;
  readonly iv: string;
  readonly data: string;
}

/** What a reader gets for a field whose data key was shredded. */
export interface ShreddedValue {
  readonly $phi: 'shredded';
}

const isSealed = (v: unknown): v is Sealed =>
  typeof v === 'object' && v !== null && (v as { $phi?: unknown }).$phi === 1;

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Every concrete location a PHI path (JSON Pointer, `*` = each item or key) names in `data`. */
function locations(
  data: unknown,
  path: string,
): Array<{ parent: Record<string, unknown> | unknown[]; key: string | number; pointer: string }> {
  const segments = path.split('/').slice(1).map(unescapePointer);
  const out: Array<{
    parent: Record<string, unknown> | unknown[];
    key: string | number;
    pointer: string;
  }> = [];
  const walk = (node: unknown, i: number, pointer: string) => {
    if (typeof node !== 'object' || node === null) return;
    const segment = segments[i]!;
    const last = i === segments.length - 1;
    const keys: Array<string | number> =
      segment === '*'
        ? Array.isArray(node)
          ? node.map((_, k) => k)
          : Object.keys(node)
        : [segment];
    for (const key of keys) {
      const container = node as Record<string | number, unknown>;
      if (
        Array.isArray(node)
          ? typeof key !== 'number' && !/^\d+$/.test(String(key))
          : !Object.hasOwn(node, key)
      )
        continue;
      const child = container[key];
      if (child === undefined) continue;
      const childPointer = `${pointer}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (last) out.push({ parent: node as Record<string, unknown>, key, pointer: childPointer });
      else walk(child, i + 1, childPointer);
    }
  };
  if (segments.length > 0) walk(data, 0, '');
  return out;
}

const aadOf = (stream: StreamId, version: number, eventId: string, pointer: string) =>
  Buffer.from(`${stream.type}\u001f${stream.id}\u001f${version}\u001f${eventId}\u001f${pointer}`);

/**
 * Field-level encryption of PHI, bound to where the value sits: its stream, version, event and
 * field are the AES-GCM additional data, so ciphertext copied to another event, stream, version
 * or field does not decrypt. The hash chain covers the ciphertext, so integrity checks need no
 * keys. Every failure to reach the key provider fails closed.
 */
export function createPhiCodec(db: Database, schema: string, options: PhiOptions) {
  const s = quoteIdentifier(schema);
  const dataKeys = new Map<string, Buffer | 'shredded'>();
  const subjectKeys = new Map<string, string>();
  const touched = new Map<string, number>();

  const subjectHash = (subject: string) => createHash('sha256').update(subject).digest();
  const context = (keyId: string) => ({ purpose: 'evident-data-key', keyId, schema });

  async function keyForSubject(subject: string): Promise<{ id: string; key: Buffer }> {
    const cachedId = subjectKeys.get(subject);
    const cached = cachedId ? dataKeys.get(cachedId) : undefined;
    if (cachedId && cached instanceof Buffer) {
      await markUsed(cachedId);
      return { id: cachedId, key: cached };
    }
    const hash = subjectHash(subject);
    let [row] = await db.query<{ key_id: string; wrapped_key: Uint8Array | null }>(
      `select key_id, wrapped_key from ${s}.data_keys
       where coalesce(tenant_id, '') = coalesce(${s}.current_tenant(), '') and subject_hash = $1`,
      [hash],
    );
    if (!row) {
      const keyId = randomUUID();
      const fresh = randomBytes(32);
      const wrapped = await callProvider(() => options.keys.wrap(fresh, context(keyId)));
      [row] = await db.query<{ key_id: string; wrapped_key: Uint8Array | null }>(
        `insert into ${s}.data_keys (key_id, subject_hash, kek_id, wrapped_key) values ($1, $2, $3, $4)
         on conflict (coalesce(tenant_id, ''), subject_hash) do nothing
         returning key_id, wrapped_key`,
        [keyId, hash, options.keys.id, Buffer.from(wrapped)],
      );
      if (row) {
        dataKeys.set(keyId, fresh);
        subjectKeys.set(subject, keyId);
        touched.set(keyId, Date.now());
        return { id: keyId, key: fresh };
      }
      // Another process created it first: use theirs.
      return keyForSubject(subject);
    }
    if (!row.wrapped_key) {
      throw new PhiError(
        'PHI_KEY_UNAVAILABLE',
        'the subject’s data key was shredded; no new PHI can be written for it',
      );
    }
    const key = await unwrap(row.key_id, row.wrapped_key);
    subjectKeys.set(subject, row.key_id);
    await markUsed(row.key_id);
    return { id: row.key_id, key };
  }

  async function markUsed(keyId: string) {
    const last = touched.get(keyId) ?? 0;
    if (Date.now() - last < 3_600_000) return;
    touched.set(keyId, Date.now());
    await db.query(`update ${s}.data_keys set last_used_at = now() where key_id = $1`, [keyId]);
  }

  async function callProvider<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      throw new PhiError(
        'PHI_KEY_UNAVAILABLE',
        'the key provider is unavailable; PHI is neither written nor shown',
        { cause },
      );
    }
  }

  async function unwrap(keyId: string, wrapped: Uint8Array): Promise<Buffer> {
    const key = Buffer.from(await callProvider(() => options.keys.unwrap(wrapped, context(keyId))));
    dataKeys.set(keyId, key);
    return key;
  }

  function phiPaths(event: Envelope): readonly string[] {
    return options.registry.has(event.type, event.schemaVersion)
      ? options.registry.phiPaths(event.type, event.schemaVersion)
      : [];
  }

  return {
    /** True when some event of the batch has PHI fields. */
    needed: (events: readonly Envelope[]) => events.some((e) => phiPaths(e).length > 0),

    /** Encrypt the PHI fields of a batch about to be appended at `firstVersion`, `firstVersion + 1`… */
    async seal(
      stream: StreamId,
      events: readonly Envelope[],
      expected: ExpectedVersion,
    ): Promise<Envelope[]> {
      if (!events.some((e) => phiPaths(e).length > 0)) return [...events];
      if (typeof expected !== 'number' && expected !== 'no_stream') {
        throw new InvalidArgumentError(
          'events with PHI fields need an exact expectedVersion (a number or "no_stream"): their ciphertext is bound to their version',
        );
      }
      const first = (typeof expected === 'number' ? expected : 0) + 1;
      const sealed: Envelope[] = [];
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!;
        const paths = phiPaths(event);
        if (paths.length === 0) {
          sealed.push(event);
          continue;
        }
        const { id, key } = await keyForSubject(options.subject(event, stream));
        const data = structuredClone(event.data);
        for (const path of paths) {
          for (const { parent, key: field, pointer } of locations(data, path)) {
            const container = parent as Record<string | number, unknown>;
            const iv = randomBytes(12);
            const cipher = createCipheriv('aes-256-gcm', key, iv);
            cipher.setAAD(aadOf(stream, first + i, event.id, pointer));
            const body = Buffer.concat([
              cipher.update(JSON.stringify(container[field])),
              cipher.final(),
            ]);
            const value: Sealed = {
              $phi: 1,
              key: id,
              iv: iv.toString('base64'),
              data: Buffer.concat([body, cipher.getAuthTag()]).toString('base64'),
            };
            container[field] = value;
          }
        }
        sealed.push({ ...event, data });
      }
      return sealed;
    },

    /** Decrypt the PHI fields of events read from the store. */
    async open<E extends RecordedEvent>(events: E[]): Promise<E[]> {
      const wanted = new Set<string>();
      const visit = (node: unknown): void => {
        if (isSealed(node)) wanted.add(node.key);
        else if (typeof node === 'object' && node !== null)
          for (const v of Object.values(node)) visit(v);
      };
      for (const e of events) visit(e.data);
      if (wanted.size === 0) return events;
      const missing = [...wanted].filter((k) => !dataKeys.has(k));
      if (missing.length > 0) {
        const rows = await db.query<{ key_id: string; wrapped_key: Uint8Array | null }>(
          `select key_id, wrapped_key from ${s}.data_keys where key_id = any($1::uuid[])`,
          [missing],
        );
        for (const row of rows) {
          if (row.wrapped_key) await unwrap(row.key_id, row.wrapped_key);
          else dataKeys.set(row.key_id, 'shredded');
        }
      }
      return events.map((event) => {
        const version = event.streamVersion;
        const open = (node: unknown, pointer: string): unknown => {
          if (isSealed(node)) {
            const key = dataKeys.get(node.key);
            if (key === 'shredded') return { $phi: 'shredded' } satisfies ShreddedValue;
            if (!key) throw new PhiError('PHI_KEY_UNAVAILABLE', 'a data key is missing');
            try {
              const raw = Buffer.from(node.data, 'base64');
              const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(node.iv, 'base64'));
              decipher.setAAD(aadOf(event.stream, version, event.id, pointer));
              decipher.setAuthTag(raw.subarray(raw.length - 16));
              const text = Buffer.concat([
                decipher.update(raw.subarray(0, raw.length - 16)),
                decipher.final(),
              ]);
              return JSON.parse(text.toString('utf8'));
            } catch (cause) {
              throw new PhiError(
                'PHI_DECRYPTION_FAILED',
                `a PHI field of a ${event.type} event does not decrypt where it is stored (moved or altered)`,
                { cause },
              );
            }
          }
          if (Array.isArray(node)) return node.map((v, i) => open(v, `${pointer}/${i}`));
          if (typeof node === 'object' && node !== null) {
            return Object.fromEntries(
              Object.entries(node).map(([k, v]) => [
                k,
                open(v, `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`),
              ]),
            );
          }
          return node;
        };
        return { ...event, data: open(event.data, '') } as E;
      });
    },
  };
}

export type PhiCodec = ReturnType<typeof createPhiCodec>;

/**
 * Crypto-shredding: destroy a subject's data key so its PHI can never be read again. Refused
 * unless the key was last used longer ago than the retention period (default 7 years): HIPAA
 * asks for six years of records, this platform keeps seven, and legal holds or open disputes
 * often keep records longer — see docs/tenancy-integrity-phi.md for why healthcare rarely does
 * this. Run as the owner (the application role cannot change keys).
 */
export async function shredSubject(
  store: { readonly schema: string; readonly database: Database },
  subject: string,
  options: { readonly retentionYears?: number } = {},
): Promise<{ readonly shredded: boolean }> {
  const years = options.retentionYears ?? 7;
  if (!Number.isFinite(years) || years < 6) {
    throw new InvalidArgumentError('retentionYears must be at least 6 (HIPAA record retention)');
  }
  const s = quoteIdentifier(store.schema);
  const hash = createHash('sha256').update(subject).digest();
  const rows = await store.database.query<{ key_id: string; eligible: boolean }>(
    `select key_id, last_used_at < now() - make_interval(years => $2) as eligible
     from ${s}.data_keys
     where coalesce(tenant_id, '') = coalesce(${s}.current_tenant(), '') and subject_hash = $1`,
    [hash, years],
  );
  const row = rows[0];
  if (!row) return { shredded: false };
  if (!row.eligible) {
    throw new PhiError(
      'PHI_SHREDDING_REFUSED',
      `the data key was used within the last ${years} years: its events are inside their retention period`,
    );
  }
  await store.database.query(
    `update ${s}.data_keys set wrapped_key = null, shredded_at = now() where key_id = $1`,
    [row.key_id],
  );
  return { shredded: true };
}
