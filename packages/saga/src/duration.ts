import { InvalidArgumentError } from '@evident/envelope';

/**
 * A length of time: milliseconds, or a number with a unit — `'500ms'`, `'30s'`, `'2m'`, `'6h'`,
 * `'45d'`, `'2w'`.
 *
 * @example
 * ```ts
 * const eligibilityTimeout: Duration = '30s';
 * const adjudicationWindow: Duration = '45d';
 * ```
 */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd' | 'w'}`;

const units: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Longest duration accepted: 10 years, far beyond any payer's adjudication window. */
const maxMs = 10 * 365 * 86_400_000;

/**
 * Milliseconds of a {@link Duration}.
 *
 * @example
 * ```ts
 * toMilliseconds('45d'); // 3_888_000_000
 * ```
 * @throws InvalidArgumentError when it is not a non-negative duration of at most 10 years.
 */
export function toMilliseconds(duration: Duration, name = 'duration'): number {
  let ms: number;
  if (typeof duration === 'number') {
    ms = duration;
  } else {
    const match =
      typeof duration === 'string'
        ? /^(\d{1,12}(?:\.\d{1,6})?)(ms|s|m|h|d|w)$/.exec(duration)
        : null;
    if (!match) {
      throw new InvalidArgumentError(
        `${name} must be milliseconds or a number with a unit (ms, s, m, h, d, w), e.g. '30s'`,
      );
    }
    ms = Number(match[1]) * units[match[2]!]!;
  }
  if (!Number.isFinite(ms) || ms < 0 || ms > maxMs) {
    throw new InvalidArgumentError(`${name} must be between 0 and 10 years`);
  }
  return Math.round(ms);
}
