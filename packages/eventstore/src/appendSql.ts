import type { Envelope } from '@evident/envelope';
import type { ExpectedVersion } from './expectedVersion.js';

/**
 * The append is ONE statement: one round trip, one implicit transaction. In order, it
 *
 * 1. sets the transaction's tenant (`set_config(..., true)`), which row-level security reads;
 * 2. claims the versions on the stream's row with INSERT … ON CONFLICT DO UPDATE, chaining the
 *    stream's hash forward in the same row update;
 * 3. inserts the events at those versions, each with its link of the hash chain.
 *
 * Why each piece is shaped this way:
 * - The stream row is the lock. Writers with the same expectation queue on it; under READ
 *   COMMITTED the loser re-reads the row after the winner commits, finds the version changed, and
 *   its conditional update claims nothing, so it inserts nothing.
 * - The tenant must be set before row-level security looks at any row. A plain UPDATE would
 *   evaluate the policy while scanning, before anything in the statement ran; an INSERT's source
 *   row (selected from the `tenant` CTE) is produced first, and only then are the conflicting row's
 *   policy and the new rows' WITH CHECK evaluated. Setting the tenant in a separate statement
 *   (BEGIN; set_config; append; COMMIT) measured 0.55 of this throughput, pipelined 0.67.
 * - The previous hash comes from the locked stream row (its `last_hash`), never from reading the
 *   events table, whose snapshot in this statement may predate the append we waited for.
 * - "The stream must exist" expectations still use INSERT … ON CONFLICT; when it turns out to be a
 *   fresh insert, the events part calls `refuse_missing_stream()` and the whole statement fails.
 *
 * Parameters, one event (`one`): $1 stream type, $2 stream id, $3 event count (1), $4–$15 the
 * envelope's fields (data and metadata as JSON text) with $14 the tenant ('' for none), $16 the
 * expected version. A batch (`many`): $1–$3 as above, $4 the envelopes as one JSON array, $5 tenant,
 * $6 expected version. Returns one row per event: stream version, global position, transaction
 * id, recorded-at (epoch ms); no row when the expectation did not hold and nothing was written.
 *
 * With `integrity: false` the hash columns are left null (for benchmarks and stores that do not
 * need tamper evidence).
 *
 * A batch with an expected version computes its chain once (`baseFromLog`): the chain's base is
 * the hash of the event at the expected version, read from the log before the claim, and the
 * claim holds only if the locked stream row's `last_hash` is that same hash. Otherwise the batch
 * would compute its chain twice — once in the claim's `SET`, for the stream row, once more for its
 * events — and `sha256()` costs about 2 µs a call (see docs/performance.md). The read can miss:
 * an append that committed while this statement waited for the row is not in the statement's
 * snapshot. Only a tenant's claim gets that far (an INSERT … ON CONFLICT waits for the row and
 * checks its newest version; a plain UPDATE skips a row whose snapshot version differs). Then the
 * claim takes nothing although the version matched, and the caller appends again with
 * `baseFromLog: false`, which takes the base from the locked row.
 */
export const appendModes = ['version', 'no_stream', 'any', 'exists'] as const;
export type AppendMode = (typeof appendModes)[number];
export type AppendShape = 'one' | 'many';

export function appendMode(expected: ExpectedVersion): AppendMode {
  if (typeof expected === 'number') return expected === 0 ? 'no_stream' : 'version';
  return expected;
}

interface Fields {
  readonly eventId: string;
  readonly eventType: string;
  readonly schemaVersion: string;
  readonly data: string;
  readonly metadata: string;
  readonly correlationId: string;
  readonly causationId: string;
  readonly source: string;
  readonly actorId: string;
  readonly actorRole: string;
  readonly occurredAt: string;
}

const oneFields: Fields = {
  eventId: '$4::uuid',
  eventType: '$5::text',
  schemaVersion: '$6::integer',
  data: '$7::jsonb',
  metadata: '$8::jsonb',
  correlationId: '$9::text',
  causationId: '$10::text',
  source: '$11::text',
  actorId: '$12::text',
  actorRole: '$13::text',
  occurredAt: '$15::timestamptz',
};

/** A batch's events, each field taken out of its JSON document once (see `docs` below). */
const docFields: Fields = {
  eventId: 'd.event_id',
  eventType: 'd.event_type',
  schemaVersion: 'd.schema_version',
  data: 'd.data',
  metadata: 'd.metadata',
  correlationId: 'd.correlation_id',
  causationId: 'd.causation_id',
  source: 'd.source',
  actorId: 'd.actor_id',
  actorRole: 'd.actor_role',
  occurredAt: 'd.occurred_at',
};
const fromDocument = `(e.doc->>'id')::uuid as event_id, e.doc->>'type' as event_type,
  (e.doc->>'schemaVersion')::integer as schema_version, e.doc->'data' as data,
  e.doc->'metadata' as metadata, e.doc->>'correlationId' as correlation_id,
  e.doc->>'causationId' as causation_id, e.doc->>'source' as source,
  e.doc#>>'{actor,id}' as actor_id, e.doc#>>'{actor,role}' as actor_role,
  (e.doc->>'occurredAt')::timestamptz as occurred_at`;

const recordedAt = "date_trunc('milliseconds', now())";

/** content_hash(...) of an event: everything but its version (see sql/0004_tenancy_integrity.sql). */
function content(schema: string, f: Fields): string {
  return `${schema}.content_hash($1, $2, ${f.eventId}, ${f.eventType}, ${f.schemaVersion}, ${f.data},
    ${f.metadata}, ${f.correlationId}, ${f.causationId}, ${f.source}, ${f.actorId}, ${f.actorRole},
    ${schema}.current_tenant(), ${f.occurredAt}, ${recordedAt})`;
}

/** Whether a statement of this kind reads its chain's base from the log (see above). */
export function readsBaseFromLog(mode: AppendMode, shape: AppendShape, integrity = true): boolean {
  return integrity && shape === 'many' && mode === 'version';
}

export function appendStatement(
  schema: string,
  mode: AppendMode,
  shape: AppendShape,
  integrity = true,
  tenanted = false,
  { baseFromLog = readsBaseFromLog(mode, shape, integrity) }: { baseFromLog?: boolean } = {},
): string {
  const one = shape === 'one';
  const tenant = one ? '$14' : '$5';
  const expected = one ? '$16' : '$6';
  // The stream's new last hash: on a fresh stream from nothing, on an existing one from its
  // last_hash. For a batch it is the head of the chain over the batch in order, computed in one
  // call (see sql/0006_batch_chain_in_a_loop.sql).
  const contents = '(select array_agg(d.content order by d.ord) from docs as d)';
  const newHash = (base: string, firstVersion: string) =>
    !integrity
      ? 'null::bytea'
      : one
        ? `${schema}.chain_link(${base}, ${firstVersion}, ${content(schema, oneFields)})`
        : `${schema}.chain_head(${base}, ${firstVersion}, ${contents})`;
  const advance = `version = st.version + $3, chain_base = st.last_hash,
                   last_hash = ${
                     baseFromLog
                       ? `(select ch.links[$3] from chained as ch)`
                       : newHash('st.last_hash', 'st.version + 1')
                   }`;
  // With the base read from the log, the claim also requires the row to be where it was read.
  const sameBase = baseFromLog
    ? 'and st.last_hash is not distinct from (select b.hash from base_hash as b)'
    : '';
  const mustExist = mode === 'version' || mode === 'exists';
  // Without a tenant, "the stream must exist" is a plain conditional UPDATE: row-level security
  // compares with an unset tenant, which needs nothing set first. (An UPDATE measured 1.25 times
  // the throughput of INSERT … ON CONFLICT.) With a tenant the claim must be an INSERT, whose
  // source row is produced — and the tenant set — before any row-level check runs.
  const plainUpdate = mustExist && !tenanted;
  const claim = plainUpdate
    ? `update ${schema}.streams as st set ${advance}
       where st.stream_type = $1 and st.stream_id = $2
         ${mode === 'version' ? `and st.version = ${expected}` : ''} ${sameBase}
       returning st.version, st.last_hash, st.chain_base, false as inserted`
    : `insert into ${schema}.streams as st (stream_type, stream_id, version, tenant_id, last_hash)
       select $1, $2, $3, ${schema}.current_tenant(),
              ${
                // A stream that must exist is never inserted (refuse_missing_stream below): its
                // candidate row needs no chain.
                mustExist ? 'null::bytea' : newHash('null::bytea', '1')
              }
       ${tenanted ? 'from tenant' : ''}
       on conflict (stream_type, stream_id) ${
         mode === 'no_stream'
           ? 'do nothing'
           : `do update set ${advance} ${mode === 'version' ? `where st.version = ${expected} ${sameBase}` : ''}`
       }
       returning st.version, st.last_hash,
                 -- On a fresh stream chain_base is null: the chain starts from nothing.
                 case when st.xmax::text = '0' then null else st.chain_base end as chain_base,
                 st.xmax::text = '0' as inserted`;
  const version = (expr: string) =>
    mustExist && !plainUpdate
      ? `case when c.inserted then ${schema}.refuse_missing_stream() else ${expr} end`
      : expr;
  // Without a tenant the parameter is '' and the column null, like current_tenant().
  const tenantColumn = tenanted ? `${schema}.current_tenant()` : `nullif(${tenant}::text, '')`;

  // Each event's fields taken out of its document once, and its content hash computed once,
  // after the tenant is set (it is part of the content). The content hash and the row both use
  // the fields; `offset 0` keeps the planner from pulling the inner query up, which would copy
  // each field's expression into both places and take it out of the document twice.
  const docs = one
    ? ''
    : `docs as materialized (
         select d.*, ${integrity ? content(schema, docFields) : 'null::bytea'} as content
         from (select e.ord, ${fromDocument}
               from ${tenanted ? 'tenant, ' : ''}jsonb_array_elements($4::jsonb)
                 with ordinality as e(doc, ord)
               offset 0) as d),`;
  const rows = one
    ? `select $1, $2, ${version('c.version')}, ${oneFields.eventId}, ${oneFields.eventType},
              ${oneFields.schemaVersion}, ${oneFields.data}, ${oneFields.metadata},
              ${oneFields.correlationId}, ${oneFields.causationId}, ${oneFields.source},
              ${oneFields.actorId}, ${oneFields.actorRole}, ${tenantColumn},
              ${oneFields.occurredAt},
              ${integrity ? 'c.last_hash' : 'null::bytea'}
       from claimed as c`
    : `select $1, $2, ${version('c.version - $3 + d.ord')}, ${docFields.eventId}, ${docFields.eventType},
              ${docFields.schemaVersion}, ${docFields.data}, ${docFields.metadata},
              ${docFields.correlationId}, ${docFields.causationId}, ${docFields.source},
              ${docFields.actorId}, ${docFields.actorRole}, ${tenantColumn},
              ${docFields.occurredAt},
              ${integrity ? 'ch.links[d.ord]' : 'null::bytea'}
       from claimed as c, docs as d${integrity ? ', chained as ch' : ''}
       order by d.ord`;

  const setTenant = tenanted
    ? `tenant as materialized (select set_config('evident.tenant_id', ${tenant}, true) as t),`
    : '';
  // Every link of a batch, in one call: from the hash of the event at the expected version (read
  // after the tenant is set), or from the hash the claim found on the stream row.
  const fromLog = baseFromLog
    ? `base_hash as materialized (
         select (select e.hash from ${schema}.events as e
                 where e.stream_type = $1 and e.stream_id = $2 and e.stream_version = ${expected})
                as hash
         ${tenanted ? 'from tenant' : ''}),
       chained as materialized (
         select ${schema}.chain_links(b.hash, ${expected} + 1, ${contents}) as links
         from base_hash as b),`
    : '';
  const chained =
    one || !integrity || baseFromLog
      ? ''
      : `, chained as materialized (
           select ${schema}.chain_links(c.chain_base, c.version - $3 + 1, ${contents}) as links
           from claimed as c)`;
  return `with ${setTenant}
  ${docs}
  ${fromLog}
  claimed as (${claim})${chained}
  insert into ${schema}.events (stream_type, stream_id, stream_version, event_id, event_type,
    schema_version, data, metadata, correlation_id, causation_id, source, actor_id, actor_role,
    tenant_id, occurred_at, hash)
  ${rows}
  returning stream_version, global_position, pg_current_xact_id()::text as transaction_id,
            (extract(epoch from recorded_at) * 1000)::int8 as recorded_at`;
}

/** Parameters of the one-event shape, in order, before the expected version ($14: the tenant). */
export function oneEventParameters(
  stream: { type: string; id: string },
  e: Envelope,
  data: string,
  metadata: string,
  tenant: string,
) {
  return [
    stream.type,
    stream.id,
    1,
    e.id,
    e.type,
    e.schemaVersion,
    data,
    metadata,
    e.correlationId,
    e.causationId,
    e.source,
    e.actor.id,
    e.actor.role,
    tenant,
    e.occurredAt,
  ];
}

/** How many parameters an append statement of this mode and shape takes. */
export function appendParameterCount(mode: AppendMode, shape: AppendShape): number {
  return (shape === 'one' ? 15 : 5) + (mode === 'version' ? 1 : 0);
}

/**
 * `size` appends of one mode and shape, to different streams, as ONE statement (group commit):
 * each member is the single append statement above with its common table expressions renamed
 * and its parameters renumbered (member i's `$n` is `$(i × count + n)`), its events INSERT made
 * a CTE of its own that also returns the member's index, and the members' rows together as the
 * result. Reusing the single statement whole keeps every rule of an append — the claim on the
 * stream row, the chain, the tenant — exactly as it is for one.
 *
 * Each member keeps its own expectation: one whose expectation does not hold claims nothing and
 * returns no row, while the others are written. Anything that raises (a missing stream, a
 * duplicate event id, row-level security) fails the whole statement, and nothing of it is
 * written; the caller then appends the members one by one to learn whose it was.
 */
export function appendGroupStatement(
  schema: string,
  mode: AppendMode,
  shape: AppendShape,
  size: number,
  integrity = true,
  tenanted = false,
): string {
  const single = appendStatement(schema, mode, shape, integrity, tenanted);
  const count = appendParameterCount(mode, shape);
  // The schema is set aside while names are rewritten: it may itself be one of those words.
  const [first, ...rest] = single.split(`${schema}.`);
  const members: string[] = [];
  for (let i = 0; i < size; i++) {
    const rename = (part: string) =>
      part
        .replace(/\$(\d+)\b/g, (_, n: string) => `$${i * count + Number(n)}`)
        .replace(/\b(tenant|docs|base_hash|claimed|chained)\b/g, `$1_${i}`);
    const text = [rename(first!), ...rest.map(rename)].join(`${schema}.`);
    const insertAt = text.lastIndexOf(`insert into ${schema}.events`);
    const ctes = text
      .slice(0, insertAt)
      .trim()
      .replace(/^with\s+/, '');
    const insert = text
      .slice(insertAt)
      .replace('returning stream_version,', `returning ${i} as member, stream_version,`);
    members.push(`${ctes},\n  inserted_${i} as (${insert})`);
  }
  return `with ${members.join(',\n')}
  ${members.map((_, i) => `select * from inserted_${i}`).join('\n  union all ')}`;
}
