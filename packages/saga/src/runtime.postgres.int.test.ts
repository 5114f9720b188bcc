import { describe } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory } from '../test/fixtures.js';
import { runtimeContract } from '../test/runtimeContract.js';

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  runtimeContract('PostgreSQL', postgresFactory(postgresUrl!));
});

// The whole contract again on stores with group commit on, as docs/sagas.md recommends for
// worker processes: an instance's appends then share statements with other instances'.
describe.skipIf(!postgresUrl)('PostgreSQL, group commit', () => {
  runtimeContract(
    'PostgreSQL, group commit',
    postgresFactory(postgresUrl!, { groupCommit: { statements: 1 } }),
  );
});
