/** Make a pg_dump of a migrated schema comparable across runs and schema names. */
export function normalizeSchemaDump(dump: string, schema: string): string {
  const body = dump
    .split('\n')
    .filter((line) => !/^--( Dumped| PostgreSQL database dump)/.test(line))
    .filter((line) => !/^\\(un)?restrict /.test(line))
    .filter((line) => !/^SET |^SELECT pg_catalog\.set_config/.test(line))
    .join('\n')
    // Role names derived from the schema first, then the schema. Names are [a-z0-9_] (checked by
    // the store), safe inside a pattern.
    .replace(new RegExp(`"?\\b${schema}_(app|auditor)\\b"?`, 'g'), 'evident_$1')
    .replace(new RegExp(`"?\\b${schema}\\b"?`, 'g'), 'evident')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return `-- The schema the migrations in this folder produce (pg_dump --schema-only, normalized).\n-- Regenerate with: pnpm --filter @evident/eventstore schema:dump\n\n${body}\n`;
}
