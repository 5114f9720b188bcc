export {
  type Relay,
  type RelayOptions,
  type RelayStatus,
  type RelayStore,
  relay,
} from './relay.js';
