import { durableMachineContract } from '../test/durableMachineContract.js';
import { pgliteFactory } from '../test/fixtures.js';

durableMachineContract('PGlite', pgliteFactory());
