import { describe } from 'vitest';
import { postgresUrl } from '#test-env';
import { durableMachineContract } from '../test/durableMachineContract.js';
import { postgresFactory } from '../test/fixtures.js';

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  durableMachineContract('PostgreSQL', postgresFactory(postgresUrl!));
});
