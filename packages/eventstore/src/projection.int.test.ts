import { describe } from 'vitest';
import { postgresUrl } from '#test-env';
import { pgliteFactory, postgresFactory } from '../test/fixtures.js';
import { projectionContract } from '../test/projectionContract.js';

projectionContract('PGlite', pgliteFactory());
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  projectionContract('PostgreSQL', postgresFactory(postgresUrl!));
});
