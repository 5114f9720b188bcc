/**
 * What integration tests import to reach real services: `#test-env`.
 *
 * `describe.skipIf(!postgresUrl)` is the only allowed way to skip; the global setup has already
 * printed why, and under CI=true it refuses to start without the services.
 */
import { inject } from 'vitest';
import type { Services } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    services: Services;
  }
}

const services = inject('services');

/** Connection string of the test database, or null when PostgreSQL is unavailable. */
export const postgresUrl: string | null = services.postgres.url;
/** AMQP URL of the test broker, or null when RabbitMQ is unavailable. */
export const rabbitmqUrl: string | null = services.rabbitmq.url;
