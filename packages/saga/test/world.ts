/**
 * In-process simulators of the practice's systems for the onboarding saga, with faults on demand.
 * Every call is logged; an effect keyed by an idempotency key happens once however often it is
 * called (as the real systems promise), so tests can tell calls from effects.
 */
import type { CallOptions, OnboardingServices } from '../examples/onboarding.js';
import { PlanNotContracted } from '../examples/onboarding.js';

export interface Fault {
  /** Fail this many calls, then succeed. @defaultValue always */
  times?: number;
  error?: () => Error;
  /** Wait this long before answering (honouring the abort signal). */
  delayMs?: number;
}

export interface World {
  readonly services: OnboardingServices;
  /** Every call, in order: `system.operation`. */
  readonly calls: string[];
  /** Effects by idempotency key: `system.operation`. */
  readonly effects: Map<string, string>;
  /** Make `operation` (e.g. `payers.checkEligibility`) fail. */
  fail(operation: string, fault?: Fault): void;
  /** States of the participants, by entity. */
  readonly states: Map<string, string>;
}

export function createWorld(): World {
  const calls: string[] = [];
  const effects = new Map<string, string>();
  const faults = new Map<string, Fault & { seen: number }>();
  const states = new Map<string, string>();

  const call = async <T>(operation: string, o: CallOptions, effect: () => T): Promise<T> => {
    calls.push(operation);
    const fault = faults.get(operation);
    if (fault?.delayMs) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, fault.delayMs);
        o.signal?.addEventListener('abort', () => {
          clearTimeout(t);
          reject(o.signal!.reason);
        });
      });
    }
    if (fault && (fault.times === undefined || fault.seen < fault.times)) {
      fault.seen++;
      if (fault.error || !fault.delayMs)
        throw (fault.error ?? (() => new Error(`${operation} unavailable`)))();
    }
    if (!effects.has(o.idempotencyKey)) effects.set(o.idempotencyKey, operation);
    return effect();
  };

  const services: OnboardingServices = {
    records: {
      create: (patientId, o) =>
        call('records.create', o, () => {
          states.set(`record:${patientId}`, 'Active');
          return { recordId: `rec-${patientId}` };
        }),
      moveToHolding: (recordId, o) =>
        call('records.moveToHolding', o, () => {
          states.set(`record:${recordId.replace(/^rec-/, '')}`, 'Holding');
        }),
    },
    payers: {
      checkEligibility: (_payer, memberId, o) =>
        call('payers.checkEligibility', o, () => ({
          eb01: '1',
          planCode: `PPO-${memberId.slice(-2)}`,
        })),
      priorAuthorizationRequired: (_payer, o) =>
        call('payers.priorAuthorizationRequired', o, () => ({ required: false })),
    },
    billing: {
      openAccount: (patientId, _payer, o) =>
        call('billing.openAccount', o, () => {
          states.set(`account:${patientId}`, 'Open');
          return { accountId: `acct-${patientId}` };
        }),
      holdAccount: (accountId, o) =>
        call('billing.holdAccount', o, () => {
          states.set(`account:${accountId.replace(/^acct-/, '')}`, 'OnHold');
        }),
    },
    coordination: {
      assign: (patientId, _practice, o) =>
        call('coordination.assign', o, () => {
          states.set(`assignment:${patientId}`, 'Assigned');
          return { assignmentId: `asg-${patientId}` };
        }),
      markPendingInsuranceResolution: (assignmentId, o) =>
        call('coordination.markPendingInsuranceResolution', o, () => {
          states.set(
            `assignment:${assignmentId.replace(/^asg-/, '')}`,
            'PendingInsuranceResolution',
          );
        }),
    },
    messaging: {
      sendWelcome: (patientId, o) =>
        call('messaging.sendWelcome', o, () => ({ messageId: `msg-${patientId}` })),
    },
    scheduling: {
      bookInitialConsultation: (patientId, _practice, _plan, o) =>
        call('scheduling.bookInitialConsultation', o, () => ({
          appointmentId: `apt-${patientId}`,
        })),
    },
  };

  return {
    services,
    calls,
    effects,
    states,
    fail(operation, fault = {}) {
      faults.set(operation, { ...fault, seen: 0 });
    },
  };
}

export const notContracted = () => new PlanNotContracted('the practice is not in the plan network');
