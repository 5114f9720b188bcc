import type { EventStore } from '../eventStore.js';
import { auditorRole } from '../migrations.js';
import { quoteIdentifier } from '../streamId.js';
import { ArchiveError } from './errors.js';

export type Store = Pick<EventStore, 'schema' | 'database' | 'tenant'>;

/**
 * Whether the store's role reads every tenant's events: a superuser or a role that bypasses row
 * security, or one granted the auditor role (0004). Anyone else sees one tenant only, and an
 * archive made by them would move its checkpoint past the other tenants' events for ever.
 */
export async function seesAllTenants(store: Store): Promise<boolean> {
  if (store.tenant !== undefined) return false;
  const rows = await store.database.query<{ all: boolean }>(
    `select r.rolsuper or r.rolbypassrls or pg_has_role(current_user, $1, 'MEMBER')
            or not c.relrowsecurity
            or (c.relowner = r.oid and not c.relforcerowsecurity) as all
       from pg_roles as r, pg_class as c
      where r.rolname = current_user and c.oid = $2::regclass`,
    [auditorRole(store.schema), `${quoteIdentifier(store.schema)}.events`],
  );
  return rows[0]?.all === true;
}

export async function assertSeesAllTenants(store: Store): Promise<void> {
  if (!(await seesAllTenants(store))) {
    throw new ArchiveError(
      'ARCHIVE_NOT_PERMITTED',
      `archiving reads every tenant: run it without a tenant, as a role granted ${auditorRole(store.schema)}`,
    );
  }
}

/**
 * Run `fn` holding the target's archive lock: a session advisory lock on its own connection, so no
 * transaction stays open (an open transaction would hold back every reader of the log).
 * PGlite is one process's own database: nothing to lock against.
 */
export async function withArchiveLock<T>(
  store: Store,
  targetId: string,
  fn: () => Promise<T>,
): Promise<T> {
  const pool = store.database.pool;
  if (!pool) return fn();
  const key = `evident:archive:${store.schema}:${targetId}`;
  const client = await pool.connect();
  let broken = false;
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      'select pg_try_advisory_lock(hashtext($1)) as locked',
      [key],
    );
    if (!rows[0]?.locked) {
      throw new ArchiveError('ARCHIVE_BUSY', 'another process is archiving to this target');
    }
    try {
      return await fn();
    } finally {
      await client.query('select pg_advisory_unlock(hashtext($1))', [key]).catch(() => {
        broken = true;
      });
    }
  } finally {
    client.release(broken);
  }
}
