/**
 * The seed platform's patient onboarding saga, seven steps, as the running example of the docs.
 * The services are the practice's systems (EHR, payer clearinghouse, billing, care coordination,
 * messaging, scheduling) behind small interfaces; the tests give it simulators with faults.
 */
import { defineSaga } from '@evident/saga';

/** Who is onboarded, with which plan, at which practice. Ids only: no names, no PHI. */
export interface OnboardingInput {
  readonly patientId: string;
  readonly practiceId: string;
  readonly payerId: string;
  readonly memberId: string;
}

/** What each call gets: the step's idempotency key, and a signal that aborts on timeout. */
export interface CallOptions {
  readonly idempotencyKey: string;
  readonly signal?: AbortSignal;
}

/** The systems the saga talks to. */
export interface OnboardingServices {
  readonly records: {
    create(patientId: string, o: CallOptions): Promise<{ recordId: string }>;
    /** Compensation: the record moves to Holding; nothing is deleted. */
    moveToHolding(recordId: string, o: CallOptions): Promise<void>;
  };
  readonly payers: {
    /** 270/271 eligibility: EB01 1 = active coverage. */
    checkEligibility(
      payerId: string,
      memberId: string,
      o: CallOptions,
    ): Promise<{ eb01: string; planCode: string }>;
    priorAuthorizationRequired(payerId: string, o: CallOptions): Promise<{ required: boolean }>;
  };
  readonly billing: {
    openAccount(patientId: string, payerId: string, o: CallOptions): Promise<{ accountId: string }>;
    /** Compensation: the account is put on hold until insurance is resolved. */
    holdAccount(accountId: string, o: CallOptions): Promise<void>;
  };
  readonly coordination: {
    assign(
      patientId: string,
      practiceId: string,
      o: CallOptions,
    ): Promise<{ assignmentId: string }>;
    /** Compensation: the assignment becomes "pending insurance resolution". */
    markPendingInsuranceResolution(assignmentId: string, o: CallOptions): Promise<void>;
  };
  readonly messaging: {
    sendWelcome(patientId: string, o: CallOptions): Promise<{ messageId: string }>;
  };
  readonly scheduling: {
    /** Throws `PlanNotContracted` when the practice is out of the plan's network. */
    bookInitialConsultation(
      patientId: string,
      practiceId: string,
      planCode: string,
      o: CallOptions,
    ): Promise<{ appointmentId: string }>;
  };
}

/** The practice is not in the plan's network: retrying will not help. */
export class PlanNotContracted extends Error {
  override readonly name = 'PlanNotContracted';
  readonly code = 'PLAN_NOT_CONTRACTED';
}

/** The payer reported no active coverage (271 EB01 other than 1). */
export class CoverageInactive extends Error {
  override readonly name = 'CoverageInactive';
}

// #region onboarding
export const onboardingSaga = (services: OnboardingServices) =>
  defineSaga<OnboardingInput>('patient-onboarding', { version: 1 })
    .step('createPatientRecord', {
      run: ({ input, idempotencyKey }) =>
        services.records.create(input.patientId, { idempotencyKey }),
      compensate: {
        transition: 'moveToHolding',
        to: 'Holding',
        participant: 'patient-record',
        run: ({ result, idempotencyKey }) =>
          services.records.moveToHolding(result.recordId, { idempotencyKey }),
      },
    })
    .step('verifyInsuranceEligibility', {
      run: async ({ input, idempotencyKey, signal }) => {
        const reply = await services.payers.checkEligibility(input.payerId, input.memberId, {
          idempotencyKey,
          signal,
        });
        if (reply.eb01 !== '1') throw new CoverageInactive(`271 EB01 ${reply.eb01}`);
        return reply;
      },
      // 30 s per attempt, 3 attempts, and never more than 2 minutes in all (a slow payer).
      retry: { attempts: 3, initialInterval: '1s', nonRetryable: [CoverageInactive] },
      timeout: { attempt: '30s', step: '2m' },
    })
    .step('checkPriorAuthorization', {
      run: ({ input, idempotencyKey, signal }) =>
        services.payers.priorAuthorizationRequired(input.payerId, { idempotencyKey, signal }),
    })
    .step('createFinancialAccount', {
      run: ({ input, idempotencyKey }) =>
        services.billing.openAccount(input.patientId, input.payerId, { idempotencyKey }),
      compensate: {
        transition: 'holdAccount',
        to: 'OnHold',
        run: ({ result, idempotencyKey }) =>
          services.billing.holdAccount(result.accountId, { idempotencyKey }),
      },
    })
    .step('assignCareCoordinator', {
      run: ({ input, idempotencyKey }) =>
        services.coordination.assign(input.patientId, input.practiceId, { idempotencyKey }),
      compensate: {
        transition: 'markPendingInsuranceResolution',
        to: 'PendingInsuranceResolution',
        run: ({ result, idempotencyKey }) =>
          services.coordination.markPendingInsuranceResolution(result.assignmentId, {
            idempotencyKey,
          }),
      },
    })
    .step('sendWelcomeCommunications', {
      run: ({ input, idempotencyKey }) =>
        services.messaging.sendWelcome(input.patientId, { idempotencyKey }),
    })
    .step('scheduleInitialConsultation', {
      run: ({ input, results, idempotencyKey, signal }) =>
        services.scheduling.bookInitialConsultation(
          input.patientId,
          input.practiceId,
          results.verifyInsuranceEligibility.planCode,
          { idempotencyKey, signal },
        ),
      retry: { attempts: 3, nonRetryable: [PlanNotContracted] },
    });
// #endregion onboarding
