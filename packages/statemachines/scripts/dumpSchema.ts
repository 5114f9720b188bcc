/**
 * Regenerate sql/schema.sql: migrate a scratch schema, dump what this package added, write it.
 * Usage: POSTGRES_URL=postgres://... pnpm --filter @evident/statemachines schema:dump
 */
import { writeSchemaDump } from '@evident/devkit/schema-dump';
import { createEventStore } from '@evident/eventstore';
import { migrateStateMachines } from '../src/index.js';
import { dumpOwnSchema } from './schemaDump.js';

const written = await writeSchemaDump({
  target: new URL('../sql/schema.sql', import.meta.url),
  dump: dumpOwnSchema,
  async migrate(url, schema) {
    const store = createEventStore({ connectionString: url, schema });
    try {
      await store.migrate();
      await migrateStateMachines(store);
    } finally {
      await store.close();
    }
  },
});
console.log(`wrote ${written}`);
