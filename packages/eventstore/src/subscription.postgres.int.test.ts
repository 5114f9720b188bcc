import { describe } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory, withDefaults } from '../test/fixtures.js';
import { subscriptionContract } from '../test/subscriptionContract.js';

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  subscriptionContract('PostgreSQL', postgresFactory(postgresUrl!));
});

// The whole contract again with group commit on: grouping appends must change nothing a caller
// of the store can observe but the transactions they share.
describe.skipIf(!postgresUrl)('PostgreSQL, group commit', () => {
  subscriptionContract(
    'PostgreSQL, group commit',
    withDefaults(postgresFactory(postgresUrl!), { groupCommit: { statements: 1 } }),
  );
});
