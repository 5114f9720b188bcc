import { pgliteFactory } from '../test/fixtures.js';
import { subscriptionContract } from '../test/subscriptionContract.js';

subscriptionContract('PGlite', pgliteFactory());
