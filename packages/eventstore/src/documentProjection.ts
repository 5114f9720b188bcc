import { assertJson, InvalidArgumentError } from '@evident/envelope';
import type { EventStore } from './eventStore.js';
import { defineProjection, type Projection, projectionView } from './projection.js';
import type { RecordedEvent } from './recordedEvent.js';

/**
 * A read model of JSON documents, one per entity, searchable with PostgreSQL itself: a `jsonb`
 * column indexed for containment filters and a `tsvector` column with a GIN index for full-text
 * search. No search server to run, and it is rebuilt and versioned like any projection.
 */
export interface DocumentProjectionDefinition<Doc extends Record<string, unknown>> {
  /** As for {@link defineProjection}: `[a-z][a-z0-9_]*`, at most 30 characters. */
  readonly name: string;
  readonly version: number;
  /** Which document an event belongs to, e.g. the claim id. */
  readonly documentId: (event: RecordedEvent) => string;
  /** How each event type changes its document (`undefined` for a document not seen yet). */
  readonly apply: Readonly<Record<string, (doc: Doc | undefined, event: RecordedEvent) => Doc>>;
  /**
   * The words full-text search finds the document by. Keep PHI out unless the table is protected
   * like the events are: payer names, procedure codes and statuses are usually enough.
   */
  readonly searchText: (doc: Doc) => string;
  /** PostgreSQL text search configuration. @defaultValue 'simple' */
  readonly language?: 'simple' | 'english';
  readonly streamTypes?: readonly string[];
}

export type DocumentProjection<Doc extends Record<string, unknown>> = Projection & {
  readonly __documents: DocumentProjectionDefinition<Doc>;
};

/**
 * Define a searchable document projection. Run it with `runProjection`, read it with
 * {@link queryDocuments}.
 *
 * @example
 * ```ts
 * const claims = defineDocumentProjection<ClaimRow>({
 *   name: 'claims_dashboard',
 *   version: 1,
 *   documentId: (e) => e.stream.id,
 *   apply: {
 *     ClaimSubmitted: (_, e) => ({ status: 'submitted', ...(e.data as SubmittedClaim) }),
 *     ClaimAdjudicated: (doc, e) => ({ ...doc!, status: (e.data as { outcome: string }).outcome }),
 *   },
 *   searchText: (doc) => `${doc.payer} ${doc.codes.join(' ')}`,
 * });
 * ```
 */
export function defineDocumentProjection<Doc extends Record<string, unknown>>(
  definition: DocumentProjectionDefinition<Doc>,
): DocumentProjection<Doc> {
  const { documentId, apply, searchText } = definition ?? ({} as DocumentProjectionDefinition<Doc>);
  if (typeof documentId !== 'function' || typeof searchText !== 'function') {
    throw new InvalidArgumentError('a document projection needs documentId() and searchText()');
  }
  const language = definition.language ?? 'simple';
  if (language !== 'simple' && language !== 'english') {
    throw new InvalidArgumentError('language must be "simple" or "english"');
  }
  const handlers = Object.fromEntries(
    Object.entries(apply ?? {}).map(([type, evolve]) => [
      type,
      async (
        event: RecordedEvent,
        { tx, table }: Parameters<Projection['handlers'][string]>[1],
      ) => {
        const id = documentId(event);
        if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
          throw new InvalidArgumentError('documentId must return a string of 1-256 characters');
        }
        const [current] = await tx.query<{ doc: Doc }>(
          `select doc from ${table('documents')} where id = $1 for update`,
          [id],
        );
        const next = evolve(current?.doc, event);
        assertJson(next);
        await tx.query(
          `insert into ${table('documents')} (id, doc, search, updated_at)
           values ($1, $2::jsonb, to_tsvector($3::regconfig, $4), $5)
           on conflict (id) do update
             set doc = excluded.doc, search = excluded.search, updated_at = excluded.updated_at`,
          [id, JSON.stringify(next), language, searchText(next), event.recordedAt],
        );
      },
    ]),
  );
  const projection = defineProjection({
    name: definition.name,
    version: definition.version,
    ...(definition.streamTypes ? { streamTypes: definition.streamTypes } : {}),
    tables: {
      documents: `create table {{table}} (
                    id text primary key,
                    doc jsonb not null,
                    search tsvector not null,
                    updated_at timestamptz not null
                  );
                  create index on {{table}} using gin (doc jsonb_path_ops);
                  create index on {{table}} using gin (search);`,
    },
    handlers,
  });
  return Object.freeze({ ...projection, __documents: definition }) as DocumentProjection<Doc>;
}

export interface DocumentQuery {
  /** Full-text search, in the words a clerk types (`websearch_to_tsquery`: quotes, or, -not). */
  readonly text?: string;
  /** Documents containing these top-level values (jsonb containment, served by the GIN index). */
  readonly where?: Readonly<Record<string, string | number | boolean | null>>;
  /** @defaultValue 50 (at most 1000) */
  readonly limit?: number;
  readonly offset?: number;
}

export interface DocumentGroupQuery extends Omit<DocumentQuery, 'limit' | 'offset'> {
  /** A top-level field to group by. */
  readonly groupBy: string;
  /** A top-level numeric field to total per group. */
  readonly sum?: string;
}

const fieldName = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function filters(query: DocumentQuery, language: string) {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (query.text !== undefined) {
    if (typeof query.text !== 'string' || query.text.length > 500) {
      throw new InvalidArgumentError('text must be a string of at most 500 characters');
    }
    params.push(language, query.text);
    clauses.push(
      `search @@ websearch_to_tsquery($${params.length - 1}::regconfig, $${params.length})`,
    );
  }
  if (query.where !== undefined) {
    const keys = Object.keys(query.where);
    if (keys.some((k) => !fieldName.test(k))) {
      throw new InvalidArgumentError('where keys must be top-level field names');
    }
    params.push(JSON.stringify(query.where));
    clauses.push(`doc @> $${params.length}::jsonb`);
  }
  return { where: clauses.length ? `where ${clauses.join(' and ')}` : '', params };
}

/**
 * Read documents: full-text search and filters, newest first, with the total count.
 *
 * @example
 * ```ts
 * const { documents, total } = await queryDocuments(store, claims, {
 *   text: 'delta D1110',
 *   where: { status: 'denied' },
 * });
 * ```
 */
export async function queryDocuments<Doc extends Record<string, unknown>>(
  store: Pick<EventStore, 'schema' | 'database'>,
  projection: DocumentProjection<Doc>,
  query: DocumentQuery = {},
): Promise<{ documents: Array<{ id: string; doc: Doc }>; total: number }> {
  const limit = query.limit ?? 50;
  const offset = query.offset ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
    throw new InvalidArgumentError('limit must be an integer from 1 to 1000');
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new InvalidArgumentError('offset must be a non-negative integer');
  }
  const view = projectionView(store, projection, 'documents');
  const { where, params } = filters(query, projection.__documents.language ?? 'simple');
  const rows = await store.database.query<{ id: string; doc: Doc; total: string | number }>(
    `select id, doc, count(*) over () as total from ${view} ${where}
     order by updated_at desc, id limit ${limit} offset ${offset}`,
    params,
  );
  return {
    documents: rows.map((r) => ({ id: r.id, doc: r.doc })),
    total: rows[0] ? Number(rows[0].total) : 0,
  };
}

/**
 * Count (and optionally total a numeric field of) documents per value of a field, after the same
 * filters as {@link queryDocuments}.
 *
 * @example
 * ```ts
 * const byPayer = await groupDocuments(store, claims, { groupBy: 'payer', sum: 'billed' });
 * // [{ key: 'delta-dental', count: 41, sum: 9120.5 }, ...]
 * ```
 */
export async function groupDocuments<Doc extends Record<string, unknown>>(
  store: Pick<EventStore, 'schema' | 'database'>,
  projection: DocumentProjection<Doc>,
  query: DocumentGroupQuery,
): Promise<Array<{ key: string | null; count: number; sum?: number }>> {
  if (
    !fieldName.test(query?.groupBy ?? '') ||
    (query.sum !== undefined && !fieldName.test(query.sum))
  ) {
    throw new InvalidArgumentError('groupBy and sum must be top-level field names');
  }
  const view = projectionView(store, projection, 'documents');
  const { where, params } = filters(query, projection.__documents.language ?? 'simple');
  params.push(query.groupBy);
  const group = `$${params.length}`;
  let sum = '';
  if (query.sum) {
    params.push(query.sum);
    sum = `, sum((doc->>$${params.length})::numeric)::float8 as sum`;
  }
  const rows = await store.database.query<{
    key: string | null;
    count: string | number;
    sum?: number;
  }>(
    `select doc->>${group} as key, count(*) as count${sum} from ${view} ${where}
     group by 1 order by 2 desc, 1`,
    params,
  );
  return rows.map((r) => ({
    key: r.key,
    count: Number(r.count),
    ...(query.sum ? { sum: Number(r.sum ?? 0) } : {}),
  }));
}
