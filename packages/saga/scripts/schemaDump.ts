import { dumpSchema } from '@evident/devkit/schema-dump';

/** What this package adds to the store's schema: the work table, and the trigger that keeps it. */
export const dumpOwnSchema = (url: string, schema: string) =>
  dumpSchema({
    url,
    schema,
    packageName: '@evident/saga',
    owns: {
      tables: ['saga_instances'],
      functions: ['saga_progress', 'due_instances'],
      triggers: ['saga_progress'],
    },
  });
