import type { PGlite, Transaction as PGliteTransaction } from '@electric-sql/pglite';
import pg from 'pg';

/**
 * The little the store needs from a PostgreSQL connection, implemented for node-postgres and for
 * PGlite so both run the same SQL.
 */
export interface Queryable {
  /**
   * Run one statement. `name` asks node-postgres to prepare it once per connection (hot paths);
   * PGlite ignores it.
   */
  query<Row = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    name?: string,
  ): Promise<Row[]>;
  /** Run a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /** Run `fn` in one transaction on one connection; commit if it resolves, roll back if not. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Close what the store opened itself; a pool or PGlite passed in is left to its owner. */
  close(): Promise<void>;
  /** The node-postgres pool, when there is one (subscriptions need a dedicated connection). */
  readonly pool?: pg.Pool;
  /** The PGlite instance, when there is one. */
  readonly pglite?: PGlite;
}

function pgQueryable(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<Row>(text: string, params?: readonly unknown[], name?: string) {
      const result = await client.query({
        text,
        values: params as unknown[] | undefined,
        ...(name ? { name } : {}),
      });
      return result.rows as Row[];
    },
    async exec(sql: string) {
      await client.query(sql);
    },
  };
}

export function fromPool(pool: pg.Pool, owned: boolean): Database {
  const base = pgQueryable(pool);
  return {
    kind: 'pg',
    pool,
    query: base.query,
    exec: base.exec,
    async transaction(fn) {
      const client = await pool.connect();
      let broken = false;
      try {
        await client.query('begin');
        const result = await fn(pgQueryable(client));
        await client.query('commit');
        return result;
      } catch (error) {
        try {
          await client.query('rollback');
        } catch {
          // The connection is gone (killed server, cut socket): destroy it rather than reuse it.
          broken = true;
        }
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async close() {
      // A second close is a no-op (pg's Pool.end throws when called twice).
      if (owned && !pool.ending) await pool.end();
    },
  };
}

export function fromConnectionString(connectionString: string, max = 16): Database {
  // The store prepares each statement once per connection. With PostgreSQL's default plan cache
  // mode some executions are re-planned as "custom" plans; for the append statement that cost up
  // to 40% of its time, for no better plan. Connections this store opens use the generic plan.
  return fromPool(
    new pg.Pool({ connectionString, max, options: '-c plan_cache_mode=force_generic_plan' }),
    true,
  );
}

function pgliteQueryable(db: PGlite | PGliteTransaction): Queryable {
  return {
    async query<Row>(text: string, params?: readonly unknown[]) {
      const result = await db.query<Row>(text, params as unknown[] | undefined);
      return result.rows;
    },
    async exec(sql: string) {
      await db.exec(sql);
    },
  };
}

export function fromPGlite(db: PGlite): Database {
  const base = pgliteQueryable(db);
  return {
    kind: 'pglite',
    pglite: db,
    query: base.query,
    exec: base.exec,
    transaction(fn) {
      return db.transaction((tx) => fn(pgliteQueryable(tx)));
    },
    async close() {
      // PGlite instances belong to the caller.
    },
  };
}

/**
 * The same database, with every query and transaction run as `tenant`: the tenant is set with
 * `set_config('evident.tenant_id', tenant, true)` at the start of each transaction, so row-level
 * security applies and a pooled connection never carries it into someone else's request. A
 * single query becomes a short transaction (the append has its own one-statement path).
 */
export function scopeToTenant(db: Database, tenant: string): Database {
  const setTenant = (tx: Queryable) =>
    tx.query("select set_config('evident.tenant_id', $1, true)", [tenant], 'evident_set_tenant');
  return {
    kind: db.kind,
    ...(db.pool ? { pool: db.pool } : {}),
    ...(db.pglite ? { pglite: db.pglite } : {}),
    query: (text, params, name) =>
      db.transaction(async (tx) => {
        await setTenant(tx);
        return tx.query(text, params, name);
      }),
    exec: (sql) =>
      db.transaction(async (tx) => {
        await setTenant(tx);
        await tx.exec(sql);
      }),
    transaction: (fn) =>
      db.transaction(async (tx) => {
        await setTenant(tx);
        return fn(tx);
      }),
    // The unscoped database belongs to the store that opened it.
    close: async () => {},
  };
}

/** The same database, but `close()` leaves it open (for stores derived from another one). */
export function nonClosing(db: Database): Database {
  return { ...db, close: async () => {} };
}
