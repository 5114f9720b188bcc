/**
 * Small machines for the tests. The clinical machines belong to the healthcare example; these
 * only exercise what the runtime promises.
 */
import { and, assign, not, setup } from 'xstate';

/**
 * A dental claim, enough for reliability scenario 18: `ClaimAdjudicated` may arrive before
 * `ClaimSubmitted` and must be refused, never reach an illegal state.
 */
export const claimMachine = setup({
  types: {
    context: {} as { submittedLines: number; paid: number },
    events: {} as
      | { type: 'ClaimSubmitted'; lines: number }
      | { type: 'ClaimAdjudicated'; approved: boolean }
      | { type: 'PaymentPosted'; amount: number }
      | { type: 'ClaimWithdrawn' }
      | { type: 'NoteAdded' },
  },
  guards: {
    hasLines: ({ event }) => event.type === 'ClaimSubmitted' && event.lines > 0,
    approved: ({ event }) => event.type === 'ClaimAdjudicated' && event.approved,
  },
  actions: {
    notifyPayer: () => {},
    postRemittance: () => {},
  },
}).createMachine({
  id: 'claim',
  context: { submittedLines: 0, paid: 0 },
  initial: 'draft',
  states: {
    draft: {
      on: {
        ClaimSubmitted: {
          guard: 'hasLines',
          target: 'submitted',
          actions: assign({
            submittedLines: ({ event }) => (event.type === 'ClaimSubmitted' ? event.lines : 0),
          }),
        },
        NoteAdded: {},
      },
    },
    submitted: {
      entry: 'notifyPayer',
      on: {
        ClaimAdjudicated: [{ guard: 'approved', target: 'approved' }, { target: 'denied' }],
        ClaimWithdrawn: 'draft',
      },
    },
    approved: {
      on: {
        PaymentPosted: {
          target: 'paid',
          actions: [
            assign({ paid: ({ event }) => (event.type === 'PaymentPosted' ? event.amount : 0) }),
            'postRemittance',
          ],
        },
      },
    },
    denied: { type: 'final' },
    paid: { type: 'final' },
  },
});

/** A counter that takes any number of concurrent increments: for races. */
export const counterMachine = setup({
  types: {
    context: {} as { count: number },
    events: {} as { type: 'INCREMENT' } | { type: 'CLOSE' },
  },
  guards: {
    open: ({ context }) => context.count < 1_000_000,
  },
}).createMachine({
  id: 'counter',
  context: { count: 0 },
  initial: 'open',
  states: {
    open: {
      on: {
        INCREMENT: {
          guard: 'open',
          actions: assign({ count: ({ context }) => context.count + 1 }),
        },
        CLOSE: 'closed',
      },
    },
    closed: { type: 'final' },
  },
});

/**
 * A treatment-plan-like machine with guards built from named guards (`and`, `not`) with params,
 * and a timer that a later step cancels.
 */
export const planMachine = setup({
  types: {
    context: {} as { verifiedUntil: number },
    events: {} as
      | { type: 'APPROVE'; credential: string; now: number }
      | { type: 'VERIFY'; until: number }
      | { type: 'START' },
  },
  guards: {
    hasCredential: ({ event }, params: { credential: string }) =>
      event.type === 'APPROVE' && event.credential === params.credential,
    verificationExpired: ({ context, event }) =>
      event.type === 'APPROVE' && event.now > context.verifiedUntil,
  },
  actions: {
    orderAppliance: () => {},
    notifyLab: () => {},
  },
  delays: { followUp: 60_000 },
}).createMachine({
  id: 'plan',
  context: { verifiedUntil: 0 },
  initial: 'proposed',
  states: {
    proposed: {
      after: { followUp: 'lapsed' },
      on: {
        VERIFY: {
          actions: assign({
            verifiedUntil: ({ event }) => (event.type === 'VERIFY' ? event.until : 0),
          }),
        },
        APPROVE: {
          guard: and([
            { type: 'hasCredential', params: { credential: 'orthodontist' } },
            not('verificationExpired'),
          ]),
          target: 'approved',
          actions: ['orderAppliance', 'notifyLab'],
        },
      },
    },
    approved: { on: { START: 'inTreatment' } },
    inTreatment: {},
    lapsed: {},
  },
});
