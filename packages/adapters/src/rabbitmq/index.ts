export {
  createRabbitMqBroker,
  type RabbitMqBroker,
  type RabbitMqBrokerOptions,
  type RabbitMqTopology,
} from './rabbitmqBroker.js';
