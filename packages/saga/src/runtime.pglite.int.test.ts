import { pgliteFactory } from '../test/fixtures.js';
import { runtimeContract } from '../test/runtimeContract.js';

runtimeContract('PGlite', pgliteFactory());
