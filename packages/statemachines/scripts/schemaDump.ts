import { dumpSchema } from '@evident/devkit/schema-dump';

/** What this package adds to the store's schema: its tables, and the trigger on the events table. */
export const dumpOwnSchema = (url: string, schema: string) =>
  dumpSchema({
    url,
    schema,
    packageName: '@evident/statemachines',
    owns: {
      tables: ['machine_jobs', 'machine_timers'],
      functions: ['machine_effects'],
      triggers: ['machine_effects'],
    },
  });
