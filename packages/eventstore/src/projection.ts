import { InvalidArgumentError } from '@evident/envelope';
import type { Checkpoint } from './checkpoint.js';
import type { Database, Queryable } from './database.js';
import { EventStoreError } from './errors.js';
import type { EventStore } from './eventStore.js';
import { applicationRole } from './migrations.js';
import type { RecordedEvent } from './recordedEvent.js';
import { quoteIdentifier } from './streamId.js';
import type { FailurePolicy, Subscription, SubscriptionStatus } from './subscription.js';

/** What a projection handler is given: the checkpoint's transaction and its tables. */
export interface ProjectionContext {
  /** The transaction the projection's checkpoint commits in: writes here happen exactly once. */
  readonly tx: Queryable;
  /** The quoted, schema-qualified table for `key` in the version being written. */
  table(key: string): string;
}

export type ProjectionHandler = (
  event: RecordedEvent,
  context: ProjectionContext,
) => Promise<void> | void;

export interface ProjectionDefinition {
  /** `[a-z][a-z0-9_]*`, at most 30 characters: names the views, tables and subscription. */
  readonly name: string;
  /** Bump it when the handlers or tables change: the new version is rebuilt from the start. */
  readonly version: number;
  /**
   * The read model's tables: key → the DDL creating it, with `{{table}}` for the table's name
   * (and `{{schema}}` if needed). Run once, when that version's table does not exist yet.
   */
  readonly tables: Readonly<Record<string, string>>;
  /** One handler per event type the projection reads. */
  readonly handlers: Readonly<Record<string, ProjectionHandler>>;
  /** Only events of these stream types. @defaultValue all */
  readonly streamTypes?: readonly string[];
}

export type Projection = ProjectionDefinition & { readonly __projection: true };

const projectionName = /^[a-z][a-z0-9_]{0,29}$/;
const tableKey = /^[a-z][a-z0-9_]{0,19}$/;

/**
 * Define a read model maintained from the log: versioned tables, one handler per event type.
 * Readers query the stable view `<schema>.<name>_<table>`, which always points at the live version.
 *
 * @example
 * ```ts
 * const claimTotals = defineProjection({
 *   name: 'claim_totals',
 *   version: 1,
 *   tables: { by_payer: 'create table {{table}} (payer text primary key, billed numeric not null)' },
 *   handlers: {
 *     ClaimSubmitted: async (event, { tx, table }) => {
 *       const { payerId, billed } = event.data as { payerId: string; billed: number };
 *       await tx.query(
 *         `insert into ${table('by_payer')} values ($1, $2)
 *          on conflict (payer) do update set billed = excluded.billed + ${table('by_payer')}.billed`,
 *         [payerId, billed],
 *       );
 *     },
 *   },
 * });
 * ```
 * @throws InvalidArgumentError when a name, version, table or handler is malformed.
 */
export function defineProjection(definition: ProjectionDefinition): Projection {
  const { name, version, tables, handlers } = definition ?? ({} as ProjectionDefinition);
  if (typeof name !== 'string' || !projectionName.test(name)) {
    throw new InvalidArgumentError(
      'projection name must be 1-30 characters of a-z, 0-9 and _ starting with a letter',
    );
  }
  if (!Number.isSafeInteger(version) || version < 1 || version > 1_000_000) {
    throw new InvalidArgumentError('projection version must be a positive integer');
  }
  const keys = Object.keys(tables ?? {});
  if (keys.length === 0 || keys.some((k) => !tableKey.test(k))) {
    throw new InvalidArgumentError(
      'a projection needs tables, keyed by 1-20 characters of a-z, 0-9 and _',
    );
  }
  for (const key of keys) {
    if (typeof tables[key] !== 'string' || !tables[key].includes('{{table}}')) {
      throw new InvalidArgumentError(`table ${key}: its DDL must create {{table}}`);
    }
  }
  const types = Object.keys(handlers ?? {});
  if (types.length === 0 || types.some((t) => typeof handlers[t] !== 'function')) {
    throw new InvalidArgumentError('a projection needs at least one handler, keyed by event type');
  }
  return Object.freeze({ ...definition, __projection: true as const });
}

/** Physical table of one version, and the stable view readers use. */
export function projectionTables(schema: string, projection: ProjectionDefinition) {
  const s = quoteIdentifier(schema);
  const physical = (key: string, version = projection.version) =>
    `${s}.${quoteIdentifier(`${projection.name}_${key}_v${version}`)}`;
  const view = (key: string) => `${s}.${quoteIdentifier(`${projection.name}_${key}`)}`;
  return { physical, view };
}

/**
 * The quoted, schema-qualified view to read a projection's table from; it always shows the live
 * version.
 */
export function projectionView(
  store: Pick<EventStore, 'schema'>,
  projection: ProjectionDefinition,
  key: string,
): string {
  if (!(key in projection.tables)) {
    throw new InvalidArgumentError(`projection ${projection.name} has no table ${key}`);
  }
  return projectionTables(store.schema, projection).view(key);
}

export interface ProjectionRunOptions {
  /** Events per transaction. @defaultValue 100 */
  readonly batchSize?: number;
  readonly onError?: FailurePolicy;
  readonly pollIntervalMs?: number;
  readonly takeoverIntervalMs?: number;
  readonly signal?: AbortSignal;
}

export interface ProjectionStatus extends SubscriptionStatus {
  readonly projection: string;
  readonly version: number;
  /** The version readers see through the views. */
  readonly liveVersion: number | null;
  /** True while this version is being rebuilt and an older one still serves reads. */
  readonly rebuilding: boolean;
}

export interface ProjectionRunner {
  readonly subscription: Subscription;
  status(): Promise<ProjectionStatus>;
  /** Resolves once this version has applied everything up to `checkpoint`. */
  waitFor(checkpoint: Checkpoint, options?: { readonly timeoutMs?: number }): Promise<void>;
  /** Resolves once this version serves reads (immediately unless it is being rebuilt). */
  live(options?: { readonly timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

/** Create the tables of the projection's version that do not exist yet (and grant them). */
export async function ensureProjectionTables(
  db: Database,
  schema: string,
  projection: ProjectionDefinition,
) {
  const { physical } = projectionTables(schema, projection);
  const role = quoteIdentifier(applicationRole(schema));
  await db.transaction(async (tx) => {
    // Serialize creators of the same projection version.
    await tx.query('select pg_advisory_xact_lock(hashtext($1))', [
      `evident:projection:${schema}:${projection.name}`,
    ]);
    for (const [key, ddl] of Object.entries(projection.tables)) {
      const table = physical(key);
      const [exists] = await tx.query<{ found: string | null }>(
        'select to_regclass($1)::text as found',
        [table],
      );
      if (exists?.found) continue;
      await tx.exec(
        ddl.replaceAll('{{table}}', table).replaceAll('{{schema}}', quoteIdentifier(schema)),
      );
      await tx.exec(`grant select, insert, update, delete on ${table} to ${role}`);
    }
  });
}

/** Point the views at `version`'s tables and record it as live, in one transaction. */
export async function promoteProjection(
  tx: Queryable,
  schema: string,
  projection: ProjectionDefinition,
) {
  const { physical, view } = projectionTables(schema, projection);
  const role = quoteIdentifier(applicationRole(schema));
  for (const key of Object.keys(projection.tables)) {
    await tx.exec(`drop view if exists ${view(key)}`);
    await tx.exec(`create view ${view(key)} as select * from ${physical(key)}`);
    await tx.exec(`grant select on ${view(key)} to ${role}`);
  }
  await tx.query(
    `insert into ${quoteIdentifier(schema)}.projections (name, live_version) values ($1, $2)
     on conflict (name) do update set live_version = excluded.live_version, updated_at = now()`,
    [projection.name, projection.version],
  );
}

export async function liveProjectionVersion(
  db: Queryable,
  schema: string,
  name: string,
): Promise<number | null> {
  const [row] = await db.query<{ live_version: number }>(
    `select live_version from ${quoteIdentifier(schema)}.projections where name = $1`,
    [name],
  );
  return row ? Number(row.live_version) : null;
}

/**
 * Run a projection: create its tables if needed, then apply the log to them through a
 * subscription named `projection:<name>:v<version>`, each batch in the checkpoint's transaction.
 *
 * A first version goes live at once. A newer version is rebuilt from the start of the log into
 * its own tables while the views keep showing the older one, and is swapped in (views and
 * registry, one transaction) when it has caught up. An older version than the live one (an old
 * process during a rolling deploy) keeps its own tables up to date and never swaps.
 */
export function runProjection(
  store: EventStore,
  projection: Projection,
  options: ProjectionRunOptions = {},
): ProjectionRunner {
  if (projection?.__projection !== true) {
    throw new InvalidArgumentError('runProjection takes a projection made by defineProjection');
  }
  const db = store.database;
  const schema = store.schema;
  const { physical } = projectionTables(schema, projection);
  const context = (tx: Queryable): ProjectionContext => ({
    tx,
    table(key) {
      if (!(key in projection.tables)) {
        throw new InvalidArgumentError(`projection ${projection.name} has no table ${key}`);
      }
      return physical(key);
    },
  });
  let rebuilding = true;
  let prepared: Promise<void> | undefined;
  const liveWaiters = new Set<() => void>();

  const prepare = () => {
    prepared ??= (async () => {
      await ensureProjectionTables(db, schema, projection);
      await db.transaction(async (tx) => {
        await tx.query('select pg_advisory_xact_lock(hashtext($1))', [
          `evident:projection:${schema}:${projection.name}`,
        ]);
        const live = await liveProjectionVersion(tx, schema, projection.name);
        if (live === null) await promoteProjection(tx, schema, projection);
      });
    })();
    return prepared;
  };

  const subscription = store.subscribe({
    name: `projection:${projection.name}:v${projection.version}`,
    filter: {
      types: Object.keys(projection.handlers),
      ...(projection.streamTypes ? { streamTypes: projection.streamTypes } : {}),
    },
    handler: async (event, { tx }) => {
      await prepared;
      const handler = projection.handlers[event.type];
      if (handler) await handler(event, context(tx));
    },
    async onCaughtUp() {
      await prepare();
      await db.transaction(async (tx) => {
        await tx.query('select pg_advisory_xact_lock(hashtext($1))', [
          `evident:projection:${schema}:${projection.name}`,
        ]);
        const live = await liveProjectionVersion(tx, schema, projection.name);
        if (live === null || live < projection.version)
          await promoteProjection(tx, schema, projection);
      });
      const live = await liveProjectionVersion(db, schema, projection.name);
      rebuilding = live !== projection.version;
      if (!rebuilding) {
        for (const resolve of liveWaiters) resolve();
        liveWaiters.clear();
      }
    },
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
    ...(options.pollIntervalMs ? { pollIntervalMs: options.pollIntervalMs } : {}),
    ...(options.takeoverIntervalMs ? { takeoverIntervalMs: options.takeoverIntervalMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // Tables must exist before the first handler runs; the handler awaits this.
  void prepare().catch(() => {
    // Reported through the first handler call, which awaits the same promise.
  });

  return {
    subscription,
    async status() {
      const base = await subscription.status();
      const live = await liveProjectionVersion(db, schema, projection.name);
      return {
        ...base,
        projection: projection.name,
        version: projection.version,
        liveVersion: live,
        rebuilding: live !== projection.version,
      };
    },
    waitFor: (checkpoint, waitOptions) => subscription.waitFor(checkpoint, waitOptions),
    live(waitOptions = {}) {
      if (!rebuilding) return Promise.resolve();
      const timeoutMs = waitOptions.timeoutMs ?? 60_000;
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          liveWaiters.delete(done);
          reject(
            new EventStoreError(
              'SUBSCRIPTION_TIMEOUT',
              `projection ${projection.name} v${projection.version} did not go live in ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        liveWaiters.add(done);
      });
    },
    stop: () => subscription.stop(),
  };
}
