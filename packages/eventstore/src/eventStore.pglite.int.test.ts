import { eventStoreContract } from '../test/eventStoreContract.js';
import { pgliteFactory } from '../test/fixtures.js';

eventStoreContract('PGlite', pgliteFactory());
