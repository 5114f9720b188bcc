import { describe } from 'vitest';
import { postgresUrl } from '#test-env';
import { eventStoreContract } from '../test/eventStoreContract.js';
import { postgresFactory } from '../test/fixtures.js';

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  eventStoreContract('PostgreSQL', postgresFactory(postgresUrl!));
});
