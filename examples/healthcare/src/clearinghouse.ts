/**
 * The payer side, simulated in memory: a clearinghouse that answers eligibility (270/271), takes
 * dental claims (837D), acknowledges them (277CA) and sends remittance (835), and the practice's
 * ledger. Its rules are the demo's and the tests' scenarios; its calls take the saga step's
 * idempotency key, so an effect happens once however often a step runs.
 */

export interface CallOptions {
  readonly idempotencyKey: string;
  readonly signal?: AbortSignal;
}

/** A service line: a CDT procedure code and its fee. */
export interface ServiceLine {
  readonly cdt: string;
  readonly feeCents: number;
}

export interface DentalClaim {
  readonly claimId: string;
  readonly payerId: string;
  readonly memberId: string;
  readonly lines: readonly ServiceLine[];
}

export interface Clearinghouse {
  /** 270/271: `eb01` 1 is active coverage, 6 inactive. */
  eligibility(
    payerId: string,
    memberId: string,
    o: CallOptions,
  ): Promise<{ readonly eb01: string; readonly planCode: string }>;
  /** 837D: returns the claim's control number at the clearinghouse. */
  submit(claim: DentalClaim, o: CallOptions): Promise<{ readonly controlNumber: string }>;
  /** 277CA: A2 accepted, A3 rejected. */
  acknowledgement(controlNumber: string, o: CallOptions): Promise<{ readonly code: string }>;
  /** 835: CLP02 1 processed as primary (paid), 4 denied with a CARC. */
  remittance(
    controlNumber: string,
    o: CallOptions,
  ): Promise<{ readonly clp02: string; readonly paidCents: number; readonly carc?: string }>;
}

export interface Ledger {
  /** Post a payer's payment against the claim; returns the posting's id. */
  post(claimId: string, paidCents: number, o: CallOptions): Promise<{ readonly postingId: string }>;
}

/** Members of the simulated plan, by member id. */
const members: Readonly<Record<string, { eb01: string; planCode: string }>> = {
  'M-1001': { eb01: '1', planCode: 'PPO-CA-12' },
  'M-1002': { eb01: '1', planCode: 'PPO-CA-12' },
  'M-2001': { eb01: '6', planCode: 'PPO-CA-12' }, // coverage ended
};
/** Procedures the plan pays only with a prior authorization on file (none is, in the demo). */
const needsPriorAuthorization = new Set(['D8080']); // comprehensive orthodontic treatment
/** The plan pays 80% of the fee (20% co-insurance). */
const coveredShare = 0.8;

export interface SimulatedPayer {
  readonly clearinghouse: Clearinghouse;
  readonly ledger: Ledger;
  /** How many distinct requests each call received (by idempotency key), for the tests. */
  readonly calls: Map<string, number>;
  /** The idempotency key of every eligibility attempt, failed ones included. */
  readonly eligibilityAttempts: string[];
  /** Every posting made, by claim. */
  readonly postings: Map<string, number>;
}

/**
 * @param outages eligibility requests that fail with a 503 before one succeeds (the payer
 *   gateway being down for a moment), counted across the whole run
 */
export function simulatePayer(options: { readonly outages?: number } = {}): SimulatedPayer {
  let outages = options.outages ?? 0;
  const calls = new Map<string, number>();
  const postings = new Map<string, number>();
  const claims = new Map<string, DentalClaim>();
  const seen = new Set<string>();
  const eligibilityAttempts: string[] = [];
  /** Count a call once per idempotency key: a retried step is the same request. */
  const count = (call: string, key: string) => {
    if (seen.has(`${call}/${key}`)) return;
    seen.add(`${call}/${key}`);
    calls.set(call, (calls.get(call) ?? 0) + 1);
  };
  const clearinghouse: Clearinghouse = {
    async eligibility(_payerId, memberId, { idempotencyKey }) {
      eligibilityAttempts.push(idempotencyKey);
      if (outages > 0) {
        outages -= 1;
        throw new PayerUnavailable('payer gateway answered 503');
      }
      count('eligibility', idempotencyKey);
      return members[memberId] ?? { eb01: '6', planCode: 'none' };
    },
    async submit(claim, { idempotencyKey }) {
      count('submit', idempotencyKey);
      const controlNumber = `PCN-${claim.claimId}`;
      claims.set(controlNumber, claim);
      return { controlNumber };
    },
    async acknowledgement(controlNumber) {
      return { code: claims.has(controlNumber) ? 'A2' : 'A3' };
    },
    async remittance(controlNumber) {
      const claim = claims.get(controlNumber)!;
      if (claim.lines.some((line) => needsPriorAuthorization.has(line.cdt))) {
        return { clp02: '4', paidCents: 0, carc: '197' }; // prior authorization absent
      }
      const billed = claim.lines.reduce((sum, line) => sum + line.feeCents, 0);
      return { clp02: '1', paidCents: Math.round(billed * coveredShare) };
    },
  };
  const ledger: Ledger = {
    async post(claimId, paidCents, { idempotencyKey }) {
      count('post', idempotencyKey);
      postings.set(claimId, paidCents);
      return { postingId: `posting-${claimId}` };
    },
  };
  return { clearinghouse, ledger, calls, eligibilityAttempts, postings };
}

/** The payer gateway is down for the moment: worth retrying. */
export class PayerUnavailable extends Error {
  override readonly name = 'PayerUnavailable';
}
