import { InvalidArgumentError } from '@evident/envelope';

/**
 * A position in the global log, opaque to callers but comparable as a string
 * (`a < b` means `a` comes first). Store it, compare it, pass it back to `readAll({ after })`.
 *
 * Inside: the writing transaction's id and the event's global position, each 16 hex digits.
 */
export type Checkpoint = string & { readonly __checkpoint?: never };

/** The checkpoint before the first event. */
export const startOfLog: Checkpoint = '0000000000000000:0000000000000000';

const pattern = /^[0-9a-f]{16}:[0-9a-f]{16}$/;

export function encodeCheckpoint(
  transactionId: bigint | string,
  position: bigint | number,
): Checkpoint {
  const tx = BigInt(transactionId).toString(16).padStart(16, '0');
  const pos = BigInt(position).toString(16).padStart(16, '0');
  return `${tx}:${pos}`;
}

export function decodeCheckpoint(checkpoint: unknown): { transactionId: string; position: string } {
  if (typeof checkpoint !== 'string' || !pattern.test(checkpoint)) {
    throw new InvalidArgumentError('checkpoint must be a value returned by the store');
  }
  return {
    transactionId: BigInt(`0x${checkpoint.slice(0, 16)}`).toString(),
    position: BigInt(`0x${checkpoint.slice(17)}`).toString(),
  };
}

/** Negative when `a` comes before `b` in the log, positive after, 0 when equal. */
export function compareCheckpoints(a: Checkpoint, b: Checkpoint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
