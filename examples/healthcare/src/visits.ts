/** The demo's and the tests' visits: synthetic ids, real CDT codes and typical fees. */
import type { VisitCharges } from './claimLifecycle.js';

const billingClerk = { id: 'u-17', role: 'billing-clerk' };
const paymentPoster = { id: 'u-42', role: 'payment-poster' };

/** A recall visit: periodic exam and prophylaxis, covered; the claim is paid and posted. */
export const recallVisit: VisitCharges = {
  visitId: 'v-1001',
  patientId: 'p-81',
  payerId: 'delta-dental-ca',
  memberId: 'M-1001',
  lines: [
    { cdt: 'D0120', feeCents: 6_500 },
    { cdt: 'D1110', feeCents: 11_000 },
  ],
  submittedBy: billingClerk,
  postedBy: paymentPoster,
};

/** Orthodontic treatment without a prior authorization: denied (CARC 197), the claim on hold. */
export const orthodonticVisit: VisitCharges = {
  visitId: 'v-1002',
  patientId: 'p-82',
  payerId: 'delta-dental-ca',
  memberId: 'M-1002',
  lines: [{ cdt: 'D8080', feeCents: 550_000 }],
  submittedBy: billingClerk,
  postedBy: paymentPoster,
};

/** A patient whose coverage ended: eligibility fails first, nothing is captured or submitted. */
export const lapsedCoverageVisit: VisitCharges = {
  visitId: 'v-1003',
  patientId: 'p-83',
  payerId: 'delta-dental-ca',
  memberId: 'M-2001',
  lines: [{ cdt: 'D0120', feeCents: 6_500 }],
  submittedBy: billingClerk,
  postedBy: paymentPoster,
};
