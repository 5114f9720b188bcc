export { createMemoryBroker, type MemoryBroker, type MemoryBrokerOptions } from './memoryBroker.js';
