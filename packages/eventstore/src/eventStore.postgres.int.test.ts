import { postgresUrl } from '#test-env';
import { describe } from 'vitest';
import { eventStoreContract } from '../test/eventStoreContract.js';
import { postgresFactory } from '../test/fixtures.js';

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  eventStoreContract('PostgreSQL', postgresFactory(postgresUrl!));
});
