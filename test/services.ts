/**
 * Where the integration tiers find their services.
 *
 * Each service is looked up in the environment first, then at this machine's local default. When a
 * service cannot be reached and a Docker engine is available it is started with testcontainers;
 * when neither, the tests that need it are skipped with one loud summary line, except under
 * CI=true, where a missing service fails the run instead of silently shrinking it.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

export type ServiceName = 'postgres' | 'rabbitmq';

export interface ServiceInfo {
  readonly url: string | null;
  /** Why the service is unavailable, when it is. */
  readonly reason?: string;
  readonly via: 'environment' | 'local default' | 'testcontainers' | 'unavailable';
}

export type Services = Record<ServiceName, ServiceInfo>;

export const defaults: Record<ServiceName, { env: string; url: string }> = {
  postgres: { env: 'POSTGRES_URL', url: 'postgres://postgres@127.0.0.1:5432/evident_test' },
  rabbitmq: { env: 'RABBITMQ_URL', url: 'amqp://guest:guest@127.0.0.1:5672' },
};

export function reachable(url: string, timeoutMs = 1500): Promise<boolean> {
  const { hostname, port, protocol } = new URL(url);
  const fallbackPort = protocol.startsWith('amqp') ? 5672 : 5432;
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || fallbackPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function dockerAvailable(): boolean {
  if (process.env.DOCKER_HOST) return true;
  return existsSync('/var/run/docker.sock');
}
