/**
 * The claim lifecycle saga: from the charges of a visit to the payment posted, one step per
 * system, each compensated by a transition to a holding state, never by a delete.
 *
 *   verifyEligibility     270/271 at the clearinghouse; retried while the payer is unavailable
 *   captureCharges        the encounter's charges, an event on the encounter's stream
 *                         ↩ flagForBillingReview: the encounter is flagged, the charges stay
 *   submitClaim           the claim machine: draft → submitted, and the 837D sent
 *                         ↩ holdClaim: the claim machine moves to onHold (checked against it)
 *   awaitAcknowledgement  277CA: A2 → accepted; A3 → rejected, and the saga compensates
 *   awaitRemittance       835: CLP02 1 → paid; 4 → denied with its CARC, and the saga compensates
 *   postPayment           the ledger, then the claim machine: paid → posted
 *
 * Every event of a run (the saga's, the encounter's, the claim's) carries the run's correlation
 * id: `store.readByCorrelation` returns the claim's whole journey (see reports.ts).
 */
import { type Actor, createEnvelope } from '@evident/envelope';
import type { EventStore } from '@evident/eventstore';
import { defineSaga, uuidFromKey } from '@evident/saga';
import type { DurableMachine } from '@evident/statemachines';
import type { claimMachine } from './claim.js';
import type { Clearinghouse, Ledger, ServiceLine } from './clearinghouse.js';

/** A visit's billable work. Ids and codes only: no names, no clinical notes, no PHI. */
export interface VisitCharges {
  readonly visitId: string;
  readonly patientId: string;
  readonly payerId: string;
  readonly memberId: string;
  readonly lines: readonly ServiceLine[];
  /** The billing clerk who submits the claim. */
  readonly submittedBy: Actor;
  /** The staff member who posts the payment: segregation of duties wants another person. */
  readonly postedBy: Actor;
}

/** The payer reported no active coverage (271 EB01 other than 1): retrying will not change it. */
export class CoverageInactive extends Error {
  override readonly name = 'CoverageInactive';
  readonly code = 'COVERAGE_INACTIVE';
}

/** The clearinghouse rejected the claim (277CA A3): it needs correcting by billing staff. */
export class ClaimRejected extends Error {
  override readonly name = 'ClaimRejected';
  readonly code = 'CLAIM_REJECTED';
}

/** The payer denied the claim (835 CLP02 4); the CARC is in the message and on the claim. */
export class ClaimDenied extends Error {
  override readonly name = 'ClaimDenied';
  readonly code = 'CLAIM_DENIED';
}

export interface ClaimLifecycleServices {
  readonly store: EventStore;
  readonly claims: DurableMachine<typeof claimMachine>;
  readonly clearinghouse: Clearinghouse;
  readonly ledger: Ledger;
}

/** The clearinghouse, as the actor of the claim transitions it causes. */
export const clearinghouseActor: Actor = { id: 'clearinghouse', role: 'system' };

export const claimIdOf = (visitId: string) => `claim-${visitId}`;

// #region saga
export const claimLifecycle = ({ store, claims, clearinghouse, ledger }: ClaimLifecycleServices) =>
  defineSaga<VisitCharges>('claim-lifecycle', { version: 1 })
    .step('verifyEligibility', {
      run: async ({ input, idempotencyKey, signal }) => {
        const reply = await clearinghouse.eligibility(input.payerId, input.memberId, {
          idempotencyKey,
          signal,
        });
        if (reply.eb01 !== '1') throw new CoverageInactive(`271 EB01 ${reply.eb01}`);
        return reply;
      },
      // Payers answer within seconds, some within two minutes; three attempts.
      retry: { attempts: 3, initialInterval: '100ms', nonRetryable: [CoverageInactive] },
      timeout: { attempt: '30s', step: '2m' },
    })
    .step('captureCharges', {
      run: async ({ input, correlationId, idempotencyKey }) => {
        const captured = createEnvelope({
          // Idempotent: the same id again in the same stream stores nothing new.
          id: uuidFromKey(idempotencyKey),
          type: 'ChargesCaptured',
          data: { visitId: input.visitId, lines: input.lines },
          source: 'billing-service',
          actor: input.submittedBy,
          correlationId,
        });
        await store.append({ type: 'encounter', id: input.visitId }, [captured], {
          expectedVersion: 'any',
        });
        return { encounterId: input.visitId };
      },
      compensate: {
        transition: 'flagForBillingReview',
        to: 'PendingBillingReview',
        participant: 'encounter',
        run: async ({ input, result, correlationId, idempotencyKey }) => {
          const flagged = createEnvelope({
            id: uuidFromKey(idempotencyKey),
            type: 'EncounterFlaggedForBillingReview',
            data: { visitId: input.visitId },
            source: 'billing-service',
            actor: { id: 'claims-workflow', role: 'system' },
            correlationId,
          });
          await store.append({ type: 'encounter', id: result.encounterId }, [flagged], {
            expectedVersion: 'any',
          });
        },
      },
    })
    .step('submitClaim', {
      run: async ({ input, correlationId, idempotencyKey, signal }) => {
        const claimId = claimIdOf(input.visitId);
        const billedCents = input.lines.reduce((sum, line) => sum + line.feeCents, 0);
        await claims.send(
          claimId,
          { type: 'SUBMIT', billedCents },
          { actor: input.submittedBy, correlationId, id: uuidFromKey(`${idempotencyKey}/submit`) },
        );
        const { controlNumber } = await clearinghouse.submit(
          { claimId, payerId: input.payerId, memberId: input.memberId, lines: input.lines },
          { idempotencyKey, signal },
        );
        return { claimId, controlNumber };
      },
      compensate: {
        transition: 'holdClaim',
        machine: claims,
        to: 'onHold',
        entityId: ({ result }) => result.claimId,
      },
    })
    .step('awaitAcknowledgement', {
      run: async ({ results, correlationId, idempotencyKey, signal }) => {
        const { claimId, controlNumber } = results.submitClaim;
        const ack = await clearinghouse.acknowledgement(controlNumber, { idempotencyKey, signal });
        const id = uuidFromKey(`${idempotencyKey}/ack`);
        if (ack.code !== 'A2') {
          await claims.send(
            claimId,
            { type: 'REJECT', ackCode: ack.code },
            { actor: clearinghouseActor, correlationId, id },
          );
          throw new ClaimRejected(`277CA ${ack.code}`);
        }
        await claims.send(
          claimId,
          { type: 'ACCEPT' },
          { actor: clearinghouseActor, correlationId, id },
        );
        return { ack: ack.code };
      },
      retry: { nonRetryable: [ClaimRejected] },
    })
    .step('awaitRemittance', {
      run: async ({ results, correlationId, idempotencyKey, signal }) => {
        const { claimId, controlNumber } = results.submitClaim;
        const era = await clearinghouse.remittance(controlNumber, { idempotencyKey, signal });
        const id = uuidFromKey(`${idempotencyKey}/remittance`);
        if (era.clp02 === '4') {
          await claims.send(
            claimId,
            { type: 'DENY', carc: era.carc ?? 'unknown' },
            { actor: clearinghouseActor, correlationId, id },
          );
          throw new ClaimDenied(`835 CLP02 4, CARC ${era.carc}`);
        }
        await claims.send(
          claimId,
          { type: 'PAY', paidCents: era.paidCents },
          { actor: clearinghouseActor, correlationId, id },
        );
        return { paidCents: era.paidCents };
      },
      retry: { nonRetryable: [ClaimDenied] },
    })
    .step('postPayment', {
      run: async ({ input, results, correlationId, idempotencyKey, signal }) => {
        const { claimId } = results.submitClaim;
        const { postingId } = await ledger.post(claimId, results.awaitRemittance.paidCents, {
          idempotencyKey,
          signal,
        });
        await claims.send(
          claimId,
          { type: 'POST' },
          { actor: input.postedBy, correlationId, id: uuidFromKey(`${idempotencyKey}/post`) },
        );
        return { postingId };
      },
    });
// #endregion saga
