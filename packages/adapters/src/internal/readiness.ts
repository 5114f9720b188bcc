import type { BrokerReadiness } from '../broker.js';

/** Readiness from a probe of the server that must answer within `timeoutMs`. */
export async function probeReadiness(
  closed: boolean,
  subscriptions: number,
  timeoutMs: number | undefined,
  probe: (signal: AbortSignal) => Promise<unknown>,
): Promise<BrokerReadiness> {
  const answer = (ok: boolean, error?: string): BrokerReadiness => ({
    ready: ok,
    checks: { connection: error ? { ok, error } : { ok }, subscriptions },
  });
  if (closed) return answer(false, 'BROKER_CLOSED');
  const limit = timeoutMs ?? 2000;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(controller.signal),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), limit);
      }),
    ]);
    return answer(true);
  } catch {
    // The reason may quote the server's reply; the code is what a health endpoint needs.
    return answer(false, 'BROKER_UNAVAILABLE');
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
