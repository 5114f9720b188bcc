import { describe } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory } from '../test/fixtures.js';
import { subscriptionContract } from '../test/subscriptionContract.js';

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  subscriptionContract('PostgreSQL', postgresFactory(postgresUrl!));
});
