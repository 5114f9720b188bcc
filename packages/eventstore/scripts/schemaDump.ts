import { dumpSchema } from '@evident/devkit/schema-dump';

/** The whole schema the store's migrations produce. */
export const dumpStoreSchema = (url: string, schema: string) =>
  dumpSchema({ url, schema, packageName: '@evident/eventstore' });
