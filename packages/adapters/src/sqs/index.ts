export {
  createSqsBroker,
  type SqsBroker,
  type SqsBrokerOptions,
  type SqsTopology,
} from './sqsBroker.js';
