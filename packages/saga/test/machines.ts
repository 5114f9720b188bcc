/**
 * The participants of the onboarding saga as Evident state machines: a care-coordinator
 * assignment and a patient record. Their compensations are transitions these machines allow.
 */
import { setup } from 'xstate';

/** A patient's care-coordinator assignment. */
export const careCoordinationMachine = setup({
  types: {
    events: {} as
      | { type: 'ASSIGN'; coordinatorId: string }
      | { type: 'MARK_PENDING_INSURANCE_RESOLUTION' }
      | { type: 'INSURANCE_RESOLVED' }
      | { type: 'CLOSE' },
  },
}).createMachine({
  id: 'careCoordination',
  initial: 'unassigned',
  states: {
    unassigned: { on: { ASSIGN: 'assigned' } },
    assigned: {
      on: { MARK_PENDING_INSURANCE_RESOLUTION: 'pendingInsuranceResolution', CLOSE: 'closed' },
    },
    pendingInsuranceResolution: { on: { INSURANCE_RESOLVED: 'assigned', CLOSE: 'closed' } },
    closed: { type: 'final' },
  },
});

/** A patient record: never deleted, moved to holding when onboarding cannot finish. */
export const patientRecordMachine = setup({
  types: {
    events: {} as
      | { type: 'OPEN' }
      | { type: 'HOLD' }
      | { type: 'REACTIVATE' }
      | { type: 'ARCHIVE' },
  },
}).createMachine({
  id: 'patientRecord',
  initial: 'draft',
  states: {
    draft: { on: { OPEN: 'active' } },
    active: { on: { HOLD: 'holding', ARCHIVE: 'archived' } },
    holding: { on: { REACTIVATE: 'active' } },
    // Reached by nothing: a state no compensation can ever target.
    legacyImported: {},
    archived: { type: 'final' },
  },
});
