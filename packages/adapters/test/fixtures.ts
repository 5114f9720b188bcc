import { randomBytes } from 'node:crypto';
import { createEnvelope, type Envelope } from '@evident/envelope';

/** A short random suffix for names that must not collide with other tests or runs. */
export const suffix = () => randomBytes(4).toString('hex');

let counter = 0;

/** A valid envelope for tests; `data` defaults to a counter so events differ. */
export function event(type = 'ClaimSubmitted', data: Record<string, unknown> = {}): Envelope {
  counter += 1;
  return createEnvelope({
    type,
    data: { n: counter, ...data },
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
