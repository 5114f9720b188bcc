import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { InvalidArgumentError } from '@evident/envelope';
import { EventStoreError } from './errors.js';
import type { EventStore } from './eventStore.js';
import { assertStreamId, quoteIdentifier, type StreamId } from './streamId.js';

/**
 * Tamper evidence. Every event's `hash` is chain_link(previous hash, version, content_hash(event)),
 * computed by the append statement itself (sql/0004_tenancy_integrity.sql, src/appendSql.ts).
 * The verifier recomputes it in SQL with the same function, so the two cannot disagree, and it
 * needs no keys: the hash covers payloads as stored, ciphertext included.
 *
 * A chain cannot show that its newest links were cut off (with `streams` rewritten to match).
 * Signed checkpoints can: the heads of every chain, signed with an Ed25519 key the database never
 * sees, stored outside the events table.
 */
export type BrokenLinkReason =
  /** The stored hash does not match the event as it is now: a field was changed. */
  | 'hash_mismatch'
  /** A version is missing before this one: an event was removed (or versions renumbered). */
  | 'missing_version'
  /** The event has no hash: written with integrity off, or its hash was erased. */
  | 'unchained'
  /** The stream's head in `streams` does not match its last event. */
  | 'head_mismatch';

export interface BrokenLink {
  readonly stream: StreamId;
  /** The first version at which the chain no longer holds. */
  readonly version: number;
  readonly reason: BrokenLinkReason;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** Streams checked. */
  readonly streams: number;
  /** Events checked. */
  readonly events: number;
  /** The first broken link of each broken stream, in stream order. */
  readonly broken: readonly BrokenLink[];
}

type Store = Pick<EventStore, 'schema' | 'database'>;

function verificationSql(schema: string, oneStream: boolean): string {
  const s = quoteIdentifier(schema);
  const where = oneStream ? 'where stream_type = $1 and stream_id = $2' : '';
  return `
    with links as (
      select stream_type, stream_id, stream_version,
             hash is null as unchained,
             hash is not distinct from ${s}.chain_link(lag(hash) over w, stream_version,
               ${s}.content_hash(stream_type, stream_id, event_id, event_type, schema_version, data,
                 metadata, correlation_id, causation_id, source, actor_id, actor_role, tenant_id,
                 occurred_at, recorded_at)) as valid,
             coalesce(lag(stream_version) over w, 0) as previous_version
      from ${s}.events ${where}
      window w as (partition by stream_type, stream_id order by stream_version)
    ),
    totals as (select count(*) as events, count(distinct (stream_type, stream_id)) as streams from links),
    broken as (
      select distinct on (stream_type, stream_id) stream_type, stream_id, stream_version,
             case when unchained then 'unchained'
                  when previous_version <> stream_version - 1 then 'missing_version'
                  else 'hash_mismatch' end as reason
      from links
      where unchained or not valid or previous_version <> stream_version - 1
      order by stream_type, stream_id, stream_version
    ),
    heads as (
      select st.stream_type, st.stream_id, coalesce(last.stream_version, 0) + 1 as stream_version,
             'head_mismatch' as reason
      from ${s}.streams as st
      left join lateral (
        select e.stream_version, e.hash from ${s}.events as e
        where e.stream_type = st.stream_type and e.stream_id = st.stream_id
        order by e.stream_version desc limit 1
      ) as last on true
      where ${oneStream ? 'st.stream_type = $1 and st.stream_id = $2 and' : ''}
            (last.stream_version is distinct from st.version
             or last.hash is distinct from st.last_hash)
        -- A stream purged as a whole after archiving (see archive/purge.ts) has no events left,
        -- by design: its version and last hash are kept in purged_streams.
        and not exists (select 1 from ${s}.purged_streams as p
                        where p.stream_type = st.stream_type and p.stream_id = st.stream_id
                          and p.version = st.version and p.last_hash is not distinct from st.last_hash)
    )
    select t.events, t.streams, b.stream_type, b.stream_id, b.stream_version, b.reason
    from totals as t
    left join (
      select * from broken
      union all
      select * from heads as h
      where not exists (select 1 from broken as b
                        where b.stream_type = h.stream_type and b.stream_id = h.stream_id)
    ) as b on true
    order by b.stream_type, b.stream_id`;
}

interface VerificationRow {
  events: string | number;
  streams: string | number;
  stream_type: string | null;
  stream_id: string | null;
  stream_version: string | number | null;
  reason: BrokenLinkReason | null;
}

function toResult(rows: VerificationRow[]): VerifyResult {
  const broken = rows
    .filter((r) => r.stream_type !== null)
    .map((r) => ({
      stream: { type: r.stream_type!, id: r.stream_id! },
      version: Number(r.stream_version),
      reason: r.reason!,
    }));
  return {
    ok: broken.length === 0,
    streams: Number(rows[0]?.streams ?? 0),
    events: Number(rows[0]?.events ?? 0),
    broken,
  };
}

/**
 * Recompute one stream's hash chain and name its first broken link.
 *
 * @example
 * ```ts
 * const result = await verifyStream(store, { type: 'claim', id: 'c-123' });
 * if (!result.ok) alert(result.broken[0]); // { stream, version: 7, reason: 'hash_mismatch' }
 * ```
 */
export async function verifyStream(store: Store, stream: StreamId): Promise<VerifyResult> {
  assertStreamId(stream);
  const rows = await store.database.query<VerificationRow>(verificationSql(store.schema, true), [
    stream.type,
    stream.id,
  ]);
  return toResult(rows);
}

/**
 * Recompute every stream's chain (the streams this store can see: run it as the auditor role to
 * cover every tenant) and name the first broken link of each broken stream.
 */
export async function verifyAll(store: Store): Promise<VerifyResult> {
  return toResult(
    await store.database.query<VerificationRow>(verificationSql(store.schema, false)),
  );
}

function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

function headsDigest(heads: readonly Head[]): Buffer {
  const hash = createHash('sha256');
  for (const h of heads) {
    hash.update(
      `${h.stream_type}\u001f${h.stream_id}\u001f${h.version}\u001f${Buffer.from(h.hash).toString('hex')}\n`,
    );
  }
  return hash.digest();
}

interface Head {
  stream_type: string;
  stream_id: string;
  version: string | number;
  hash: Uint8Array;
}

function asKey(key: KeyObject, kind: 'private' | 'public'): KeyObject {
  if (key?.type !== kind || key.asymmetricKeyType !== 'ed25519') {
    throw new EventStoreError('INTEGRITY_KEY_INVALID', `expected an Ed25519 ${kind} KeyObject`);
  }
  return key;
}

export interface IntegrityCheckpoint {
  readonly id: number;
  readonly keyId: string;
  readonly streams: number;
  /** sha256 over the heads, hex; what the signature covers. */
  readonly digest: string;
}

/**
 * Sign the current head (version and hash) of every chained stream and store it outside the
 * events table. Run it periodically (see {@link startIntegrityCheckpoints}) as a role that sees
 * every tenant; keep the private key out of the database.
 *
 * @example
 * ```ts
 * const { privateKey, publicKey } = generateKeyPairSync('ed25519');
 * await createIntegrityCheckpoint(auditorStore, { privateKey });
 * const check = await verifyIntegrityCheckpoints(auditorStore, { publicKey });
 * ```
 * @throws EventStoreError `INTEGRITY_KEY_INVALID` when the key is not an Ed25519 private key.
 */
export async function createIntegrityCheckpoint(
  store: Store,
  options: { readonly privateKey: KeyObject },
): Promise<IntegrityCheckpoint> {
  const privateKey = asKey(options.privateKey, 'private');
  const id = keyId(createPublicKey(privateKey));
  const s = quoteIdentifier(store.schema);
  return store.database.transaction(async (tx) => {
    // One statement: one consistent snapshot of every head.
    const heads = await tx.query<Head>(
      `select stream_type, stream_id, version, last_hash as hash from ${s}.streams
       where last_hash is not null order by stream_type, stream_id`,
    );
    const digest = headsDigest(heads);
    const signature = sign(null, digest, privateKey);
    const [row] = await tx.query<{ id: string | number }>(
      `insert into ${s}.integrity_checkpoints (key_id, stream_count, digest, signature)
       values ($1, $2, $3, $4) returning id`,
      [id, heads.length, digest, signature],
    );
    const checkpointId = Number(row!.id);
    for (let i = 0; i < heads.length; i += 1000) {
      const chunk = heads.slice(i, i + 1000);
      await tx.query(
        `insert into ${s}.integrity_checkpoint_heads (checkpoint_id, stream_type, stream_id, version, hash)
         select $1, * from unnest($2::text[], $3::text[], $4::bigint[], $5::bytea[])`,
        [
          checkpointId,
          chunk.map((h) => h.stream_type),
          chunk.map((h) => h.stream_id),
          chunk.map((h) => String(h.version)),
          chunk.map((h) => h.hash),
        ],
      );
    }
    return { id: checkpointId, keyId: id, streams: heads.length, digest: digest.toString('hex') };
  });
}

export type CheckpointProblem =
  | { readonly checkpoint: number; readonly reason: 'bad_signature' | 'unknown_key' }
  | {
      readonly checkpoint: number;
      readonly reason: 'head_missing';
      /** The signed head that the events table no longer holds: its newest events are gone. */
      readonly stream: StreamId;
      readonly version: number;
    };

/**
 * Check stored checkpoints: each signature against `publicKey`, then every signed head against
 * the events table. A head whose event is gone, or whose hash differs, means the stream lost
 * events after the checkpoint was signed.
 */
export async function verifyIntegrityCheckpoints(
  store: Store,
  options: { readonly publicKey: KeyObject; readonly checkpointId?: number },
): Promise<{
  readonly ok: boolean;
  readonly checked: number;
  readonly problems: readonly CheckpointProblem[];
}> {
  const publicKey = asKey(options.publicKey, 'public');
  if (options.checkpointId !== undefined && !Number.isSafeInteger(options.checkpointId)) {
    throw new InvalidArgumentError('checkpointId must be an integer');
  }
  const expectedKey = keyId(publicKey);
  const s = quoteIdentifier(store.schema);
  const checkpoints = await store.database.query<{
    id: string | number;
    key_id: string;
    digest: Uint8Array;
    signature: Uint8Array;
  }>(
    `select id, key_id, digest, signature from ${s}.integrity_checkpoints
     where $1::bigint is null or id = $1 order by id`,
    [options.checkpointId ?? null],
  );
  const problems: CheckpointProblem[] = [];
  for (const c of checkpoints) {
    const id = Number(c.id);
    if (c.key_id !== expectedKey) {
      problems.push({ checkpoint: id, reason: 'unknown_key' });
      continue;
    }
    const heads = await store.database.query<Head>(
      `select stream_type, stream_id, version, hash from ${s}.integrity_checkpoint_heads
       where checkpoint_id = $1 order by stream_type, stream_id`,
      [id],
    );
    const digest = headsDigest(heads);
    if (
      !digest.equals(Buffer.from(c.digest)) ||
      !verify(null, digest, publicKey, Buffer.from(c.signature))
    ) {
      problems.push({ checkpoint: id, reason: 'bad_signature' });
      continue;
    }
    const missing = await store.database.query<{
      stream_type: string;
      stream_id: string;
      version: string;
    }>(
      `select h.stream_type, h.stream_id, h.version from ${s}.integrity_checkpoint_heads as h
       where h.checkpoint_id = $1 and not exists (
         select 1 from ${s}.events as e
         where e.stream_type = h.stream_type and e.stream_id = h.stream_id
           and e.stream_version = h.version and e.hash = h.hash)
       order by h.stream_type, h.stream_id`,
      [id],
    );
    for (const m of missing) {
      problems.push({
        checkpoint: id,
        reason: 'head_missing',
        stream: { type: m.stream_type, id: m.stream_id },
        version: Number(m.version),
      });
    }
  }
  return { ok: problems.length === 0, checked: checkpoints.length, problems };
}

/**
 * Sign a checkpoint now and then every `intervalMs` until stopped. Failures are passed to
 * `onError` (the next run tries again).
 */
export function startIntegrityCheckpoints(
  store: Store,
  options: {
    readonly privateKey: KeyObject;
    /** @defaultValue one hour */
    readonly intervalMs?: number;
    readonly onError?: (error: unknown) => void;
  },
): { stop(): void } {
  asKey(options.privateKey, 'private');
  const run = () =>
    createIntegrityCheckpoint(store, options).catch((error) => options.onError?.(error));
  void run();
  const timer = setInterval(run, options.intervalMs ?? 3_600_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
