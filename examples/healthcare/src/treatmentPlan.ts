/**
 * An orthodontic treatment plan as an XState machine, with the guards clinical staff asked for
 * in review: the approving clinician holds credentials for the treatment type, the insurance
 * verification has not expired by the time of approval, and a plan becomes active only with the
 * payer's authorization confirmed and the patient's informed consent recorded. A patient may pause
 * a plan without cancelling it. Every guard's outcome is recorded with the transition (or with the
 * refusal), so "why was this plan approved?" is answered by the log.
 *
 * Times come in the events (`at`, ISO 8601): a guard must decide the same way when the history is
 * replayed, so it never reads the clock.
 */
import { and, assign, setup } from 'xstate';

export interface TreatmentPlanInput {
  /** CDT code of the treatment, e.g. D8080 comprehensive orthodontic treatment. */
  readonly treatment: string;
}

export const treatmentPlanMachine = setup({
  types: {
    context: {} as {
      treatment: string;
      insuranceVerifiedUntil: string | null;
      authorized: boolean;
      consentRecorded: boolean;
    },
    input: {} as TreatmentPlanInput,
    events: {} as
      | { type: 'SUBMIT_FOR_REVIEW' }
      | { type: 'VERIFY_INSURANCE'; validUntil: string }
      | { type: 'APPROVE'; credentials: readonly string[]; at: string }
      | { type: 'CONFIRM_AUTHORIZATION' }
      | { type: 'RECORD_CONSENT' }
      | { type: 'ACTIVATE' }
      | { type: 'START_TREATMENT' }
      | { type: 'PATIENT_REQUESTS_HOLD' }
      | { type: 'RESUME' }
      | { type: 'COMPLETE' }
      | { type: 'CANCEL' },
  },
  guards: {
    credentialedForTreatment: ({ context, event }) =>
      event.type === 'APPROVE' && event.credentials.includes(context.treatment),
    insuranceCurrent: ({ context, event }) =>
      event.type === 'APPROVE' &&
      context.insuranceVerifiedUntil !== null &&
      Date.parse(event.at) <= Date.parse(context.insuranceVerifiedUntil),
    authorizedAndConsented: ({ context }) => context.authorized && context.consentRecorded,
  },
  actions: {
    recordVerification: assign({
      insuranceVerifiedUntil: ({ event }) =>
        event.type === 'VERIFY_INSURANCE' ? event.validUntil : null,
    }),
    recordAuthorization: assign({ authorized: true }),
    recordConsent: assign({ consentRecorded: true }),
  },
}).createMachine({
  id: 'treatmentPlan',
  context: ({ input }) => ({
    treatment: input.treatment,
    insuranceVerifiedUntil: null,
    authorized: false,
    consentRecorded: false,
  }),
  initial: 'draft',
  // Facts that may arrive at any time before treatment starts.
  on: {
    VERIFY_INSURANCE: { actions: 'recordVerification' },
    CONFIRM_AUTHORIZATION: { actions: 'recordAuthorization' },
    RECORD_CONSENT: { actions: 'recordConsent' },
  },
  states: {
    draft: { on: { SUBMIT_FOR_REVIEW: 'pendingReview', CANCEL: 'cancelled' } },
    pendingReview: {
      on: {
        APPROVE: {
          guard: and(['credentialedForTreatment', 'insuranceCurrent']),
          target: 'approved',
        },
        CANCEL: 'cancelled',
      },
    },
    approved: {
      on: { ACTIVATE: { guard: 'authorizedAndConsented', target: 'active' }, CANCEL: 'cancelled' },
    },
    active: {
      on: { START_TREATMENT: 'inProgress', PATIENT_REQUESTS_HOLD: 'onHold', CANCEL: 'cancelled' },
    },
    inProgress: { on: { PATIENT_REQUESTS_HOLD: 'onHold', COMPLETE: 'completed' } },
    // Paused at the patient's request: nothing is cancelled; it resumes as an active plan.
    onHold: {
      on: { RESUME: 'active', CANCEL: 'cancelled' },
    },
    completed: { type: 'final' },
    cancelled: { type: 'final' },
  },
});
