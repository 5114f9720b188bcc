import { dumpSchema } from '@evident/devkit/schema-dump';

/** What this package adds to the store's schema: the inbox table. */
export const dumpOwnSchema = (url: string, schema: string) =>
  dumpSchema({ url, schema, packageName: '@evident/adapters', owns: { tables: ['inbox'] } });
