import pg from 'pg';
import type { TestProject } from 'vitest/node';
import type {} from './env.js';
import {
  defaults,
  dockerAvailable,
  reachable,
  type ServiceInfo,
  type ServiceName,
} from './services.js';

type Stop = () => Promise<void>;

async function startContainer(name: ServiceName): Promise<{ url: string; stop: Stop }> {
  // Imported lazily: most runs (this machine, CI) never need a container engine.
  if (name === 'postgres') {
    const { GenericContainer, Wait } = await import('testcontainers');
    const c = await new GenericContainer('postgres:15')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'evident_test' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
      .start();
    return {
      url: `postgres://postgres@${c.getHost()}:${c.getMappedPort(5432)}/evident_test`,
      stop: async () => void (await c.stop()),
    };
  }
  const { GenericContainer, Wait } = await import('testcontainers');
  const c = await new GenericContainer('rabbitmq:3.13')
    .withExposedPorts(5672)
    .withWaitStrategy(Wait.forLogMessage(/Server startup complete/))
    .start();
  return {
    url: `amqp://guest:guest@${c.getHost()}:${c.getMappedPort(5672)}`,
    stop: async () => void (await c.stop()),
  };
}

/** The test database may not exist yet on a fresh server: create it. */
async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const database = decodeURIComponent(target.pathname.slice(1)) || 'postgres';
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`create database ${client.escapeIdentifier(database)}`).catch((e) => {
        // Another run created it between our check and our create.
        if ((e as { code?: string }).code !== '42P04') throw e;
      });
    }
  } finally {
    await client.end();
  }
}

export default async function setup(project: TestProject) {
  const stops: Stop[] = [];
  const services = {} as Record<ServiceName, ServiceInfo>;
  for (const name of Object.keys(defaults) as ServiceName[]) {
    const fromEnv = process.env[defaults[name].env];
    const url = fromEnv ?? defaults[name].url;
    if (await reachable(url)) {
      services[name] = { url, via: fromEnv ? 'environment' : 'local default' };
    } else if (dockerAvailable()) {
      const started = await startContainer(name);
      stops.push(started.stop);
      services[name] = { url: started.url, via: 'testcontainers' };
    } else {
      services[name] = {
        url: null,
        via: 'unavailable',
        reason: `${new URL(url).host} unreachable and no Docker engine`,
      };
    }
  }
  if (services.postgres.url) await ensureDatabase(services.postgres.url);

  const missing = Object.entries(services).filter(([, s]) => s.url === null);
  if (missing.length > 0) {
    const list = missing.map(([n, s]) => `${n} (${s.reason})`).join(', ');
    if (process.env.CI === 'true') {
      throw new Error(`CI=true and required services are missing: ${list}`);
    }
    console.warn(
      `\n!!! SKIPPING tests of project "${project.name}" that need: ${list}. Set ${missing
        .map(([n]) => defaults[n as ServiceName].env)
        .join(' / ')} or start the services to run them.\n`,
    );
  }
  project.provide('services', services);
  return async () => {
    for (const stop of stops) await stop();
  };
}
