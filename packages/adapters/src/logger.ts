import type { Logger } from '@evident/envelope';

/**
 * Where an adapter reports what an operator should see — reconnects, deliveries it could not
 * settle, failed heartbeats — with the error's name and code, never a payload or a message text.
 * The shape every Evident factory takes (pino's: `warn(fields, message)`), silent by default; the
 * adapters only warn.
 *
 * @example
 * ```ts
 * createRabbitMqBroker({ url, logger: pino() });
 * ```
 */
export type BrokerLogger = Pick<Logger, 'warn'>;

/** An error's name and code for a log line, never its message (it may quote a URL or a value). */
export function errorFields(error: unknown): { error: string; code?: unknown } {
  const e = error as { name?: unknown; code?: unknown; Code?: unknown } | undefined;
  const name = typeof e?.name === 'string' ? e.name : typeof error;
  const code = e?.code ?? e?.Code;
  return code === undefined ? { error: name } : { error: name, code };
}
