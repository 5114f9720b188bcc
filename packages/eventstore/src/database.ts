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
      if (owned) await pool.end();
    },
  };
}

export function fromConnectionString(connectionString: string, max = 16): Database {
  return fromPool(new pg.Pool({ connectionString, max }), true);
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
