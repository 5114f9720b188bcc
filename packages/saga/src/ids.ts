import { createHash } from 'node:crypto';

/**
 * A UUID (version 8, RFC 9562) derived from `parts`: the same parts give the same id in every
 * process, so an event or a participant's step recorded under it is idempotent across retries
 * and crashed workers.
 */
export function deterministicId(...parts: readonly string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * A UUID derived from a step's idempotency key, for the event or request ids of participants that
 * take UUIDs (an Evident durable machine's `send(…, { id })`): the same key, so the same id, on
 * every retry of the step and on whichever worker runs it.
 *
 * @example
 * ```ts
 * run: ({ input, idempotencyKey }) =>
 *   assignments.send(input.patientId, assign, { actor, id: uuidFromKey(idempotencyKey) }),
 * ```
 */
export function uuidFromKey(idempotencyKey: string): string {
  return deterministicId('saga-step', idempotencyKey);
}

/** Whether an error means the database was unreachable for a moment (worth retrying). */
export function isTransientDatabaseError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = String((error as { code?: unknown }).code ?? '');
  if (code.startsWith('08')) return true;
  if (['57P01', '57P02', '57P03', '53300', '40001', '40P01', '55P03'].includes(code)) return true;
  if (
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)
  ) {
    return true;
  }
  const message = String((error as { message?: unknown }).message ?? '');
  return /Connection terminated|connection timeout|Connection ended|connection error|Client has encountered a connection error|terminating connection|the database system is (starting up|shutting down|in recovery mode)|Client was closed and is not queryable|timeout exceeded when trying to connect/i.test(
    message,
  );
}
