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
