/**
 * Regenerate sql/schema.sql: migrate a scratch schema, pg_dump it, normalize, write.
 * Usage: POSTGRES_URL=postgres://... pnpm --filter @evident/eventstore schema:dump
 */
import { writeSchemaDump } from '@evident/devkit/schema-dump';
import { createEventStore } from '../src/index.js';
import { dumpStoreSchema } from './schemaDump.js';

const written = await writeSchemaDump({
  target: new URL('../sql/schema.sql', import.meta.url),
  dump: dumpStoreSchema,
  async migrate(url, schema) {
    const store = createEventStore({ connectionString: url, schema });
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
  },
});
console.log(`wrote ${written}`);
