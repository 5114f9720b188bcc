import { describe } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory } from '../test/fixtures.js';
import { runtimeContract } from '../test/runtimeContract.js';

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  runtimeContract('PostgreSQL', postgresFactory(postgresUrl!));
});
