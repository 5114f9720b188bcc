import { describe } from 'vitest';
import { postgresUrl } from '#test-env';
import { eventStoreContract } from '../test/eventStoreContract.js';
import { postgresFactory, withDefaults } from '../test/fixtures.js';

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  eventStoreContract('PostgreSQL', postgresFactory(postgresUrl!));
});

// The whole contract again with group commit on: grouping appends must change nothing a caller
// of the store can observe but the transactions they share.
describe.skipIf(!postgresUrl)('PostgreSQL, group commit', () => {
  eventStoreContract(
    'PostgreSQL, group commit',
    withDefaults(postgresFactory(postgresUrl!), { groupCommit: { statements: 1 } }),
  );
});
