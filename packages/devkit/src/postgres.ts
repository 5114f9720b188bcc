/**
 * PostgreSQL housekeeping the packages' tests and benchmarks share.
 */
import pg from 'pg';

/**
 * Drop a schema and the roles its migrations created (`<schema>_app`, `<schema>_auditor`): roles
 * belong to the cluster, not the schema, and would outlive it on the shared server.
 */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
    for (const role of [`${schema}_app`, `${schema}_auditor`]) {
      const exists = await client.query('select 1 from pg_roles where rolname = $1', [role]);
      if (exists.rowCount) {
        await client.query(`drop owned by "${role}"`);
        await client.query(`drop role "${role}"`);
      }
    }
  } finally {
    await client.end();
  }
}

/** A node of an `EXPLAIN (FORMAT JSON)` plan, as far as the tests read it. */
interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Index Name'?: string;
  readonly Plans?: readonly PlanNode[];
}

/** Every node of a plan, depth first: `Node Type`, or `Node Type on index` for index scans. */
function nodesOf(plan: PlanNode): string[] {
  const self = plan['Index Name']
    ? `${plan['Node Type']} on ${plan['Index Name']}`
    : plan['Node Type'];
  return [self, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

/**
 * A pool of one connection whose plans can be watched: `plansDuring(matching, action)` runs
 * `action` with auto_explain on in that session (nested statements included, so the queries
 * inside PL/pgSQL functions too) and returns the plans PostgreSQL ran for statements whose text
 * matches, each as its nodes (`['Limit', 'Index Scan on events_log_idx', ...]`). One connection,
 * so whatever runs on the pool shares the session's cached plans and settings. Needs a superuser
 * (`load 'auto_explain'`), as the local test server's `postgres` is.
 */
export function watchedPool(url: string): {
  readonly pool: pg.Pool;
  plansDuring(matching: RegExp, action: () => Promise<unknown>): Promise<string[][]>;
} {
  const notices: string[] = [];
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on('connect', (client) => client.on('notice', (n) => notices.push(n.message ?? '')));
  return {
    pool,
    async plansDuring(matching, action) {
      await pool.query(`load 'auto_explain'`);
      await pool.query(`set auto_explain.log_min_duration = 0;
                        set auto_explain.log_nested_statements = on;
                        set auto_explain.log_format = json;
                        set auto_explain.log_level = notice;
                        set client_min_messages = notice`);
      notices.length = 0;
      try {
        await action();
      } finally {
        await pool.query('set auto_explain.log_min_duration = -1; reset client_min_messages');
      }
      return notices
        .filter((n) => matching.test(n))
        .map((n) => nodesOf((JSON.parse(n.slice(n.indexOf('{'))) as { Plan: PlanNode }).Plan));
    },
  };
}
