/**
 * The treatment plan's guards, durable: every refusal is recorded with the guards that refused
 * it, and the consent report reads the plan's history.
 */
import { PGlite } from '@electric-sql/pglite';
import { createEventStore, type EventStore } from '@evident/eventstore';
import {
  createDurableMachine,
  type DurableMachine,
  isTransitionRejectedError,
  migrateStateMachines,
} from '@evident/statemachines';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentBeforeTreatment } from './reports.js';
import { treatmentPlanMachine } from './treatmentPlan.js';

const orthodontist = { id: 'u-5', role: 'orthodontist' };
const hygienist = { id: 'u-9', role: 'hygienist' };
const frontDesk = { id: 'u-3', role: 'front-desk' };

describe('an orthodontic treatment plan', () => {
  let pglite: PGlite;
  let store: EventStore;
  let plans: DurableMachine<typeof treatmentPlanMachine>;
  let next = 0;

  beforeAll(async () => {
    pglite = new PGlite();
    store = createEventStore({ pglite });
    await store.migrate();
    await migrateStateMachines(store);
    plans = createDurableMachine(treatmentPlanMachine, { store, streamType: 'treatment-plan' });
  });
  afterAll(async () => {
    await store.close();
    await pglite.close();
  });

  /** A plan for comprehensive orthodontics, submitted for review, insurance verified to June. */
  async function submitted(): Promise<string> {
    const id = `plan-${++next}`;
    await plans.create(id, { actor: frontDesk, input: { treatment: 'D8080' } });
    await plans.send(id, { type: 'SUBMIT_FOR_REVIEW' }, { actor: frontDesk });
    await plans.send(
      id,
      { type: 'VERIFY_INSURANCE', validUntil: '2027-06-30T00:00:00Z' },
      { actor: frontDesk },
    );
    return id;
  }

  /** The refusal `send` throws, or fails the test. */
  async function refusal(promise: Promise<unknown>) {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!isTransitionRejectedError(error)) throw new Error('the transition was not refused');
    return error;
  }

  it('is approved only by a clinician credentialed for the treatment, and records who was refused', async () => {
    const id = await submitted();
    const refused = await refusal(
      plans.send(
        id,
        { type: 'APPROVE', credentials: ['D1110'], at: '2027-01-10T09:00:00Z' },
        { actor: hygienist },
      ),
    );
    expect(refused.guards).toContainEqual({ guard: 'credentialedForTreatment', result: false });
    await plans.send(
      id,
      { type: 'APPROVE', credentials: ['D8080', 'D8090'], at: '2027-01-10T09:05:00Z' },
      { actor: orthodontist },
    );
    expect((await plans.load(id))?.value).toBe('approved');
    const history = await plans.history(id);
    const rejected = history.find((entry) => entry.kind === 'rejected');
    expect(rejected).toMatchObject({ actor: hygienist, event: { type: 'APPROVE' } });
  });

  it('is not approved once the insurance verification has expired', async () => {
    const id = await submitted();
    const refused = await refusal(
      plans.send(
        id,
        { type: 'APPROVE', credentials: ['D8080'], at: '2027-07-01T09:00:00Z' },
        { actor: orthodontist },
      ),
    );
    expect(refused.guards).toContainEqual({ guard: 'insuranceCurrent', result: false });
    expect((await plans.load(id))?.value).toBe('pendingReview');
  });

  it('becomes active only with the authorization confirmed and the consent recorded', async () => {
    const id = await submitted();
    const approve = {
      type: 'APPROVE',
      credentials: ['D8080'],
      at: '2027-01-10T09:00:00Z',
    } as const;
    await plans.send(id, approve, { actor: orthodontist });
    await plans.send(id, { type: 'CONFIRM_AUTHORIZATION' }, { actor: frontDesk });
    await refusal(plans.send(id, { type: 'ACTIVATE' }, { actor: orthodontist }));
    await plans.send(id, { type: 'RECORD_CONSENT' }, { actor: frontDesk });
    await plans.send(id, { type: 'ACTIVATE' }, { actor: orthodontist });
    await plans.send(id, { type: 'START_TREATMENT' }, { actor: orthodontist });
    expect((await plans.load(id))?.value).toBe('inProgress');
    expect(await consentBeforeTreatment(plans, id)).toMatchObject({ plan: id, consentFirst: true });
  });

  it('pauses at the patient’s request without cancelling, and resumes', async () => {
    const id = await submitted();
    await plans.send(
      id,
      { type: 'APPROVE', credentials: ['D8080'], at: '2027-01-10T09:00:00Z' },
      { actor: orthodontist },
    );
    for (const type of ['CONFIRM_AUTHORIZATION', 'RECORD_CONSENT'] as const) {
      await plans.send(id, { type }, { actor: frontDesk });
    }
    await plans.send(id, { type: 'ACTIVATE' }, { actor: orthodontist });
    await plans.send(id, { type: 'PATIENT_REQUESTS_HOLD' }, { actor: frontDesk });
    expect((await plans.load(id))?.value).toBe('onHold');
    await plans.send(id, { type: 'RESUME' }, { actor: frontDesk });
    expect((await plans.load(id))?.value).toBe('active');
  });

  it('reports a plan whose treatment started before any consent was recorded', async () => {
    // Consent is required to activate; a plan written before that rule existed is what the report
    // is for. Its history is written here as an older version of the machine would have.
    const report = await consentBeforeTreatment(
      {
        history: async () =>
          [
            {
              kind: 'transitioned',
              version: 5,
              recordedAt: '2020-03-01T10:00:00.000Z',
              event: { type: 'START_TREATMENT' },
            },
            {
              kind: 'transitioned',
              version: 6,
              recordedAt: '2020-03-02T10:00:00.000Z',
              event: { type: 'RECORD_CONSENT' },
            },
          ] as never,
      },
      'plan-legacy',
    );
    expect(report).toMatchObject({
      consentFirst: false,
      treatmentStartedAt: '2020-03-01T10:00:00.000Z',
    });
  });
});
