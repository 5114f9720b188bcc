/**
 * A dental claim's life as an XState machine, made durable by `@evident/statemachines`: every
 * transition is an event on the claim's stream, with the guards that were checked and who sent it.
 *
 * The states follow the X12 round trip: drafted from the charges, submitted (837D), acknowledged
 * by the clearinghouse (277CA: A2 accepted, A3 rejected), adjudicated by the payer (835: CLP02 1
 * paid, 4 denied), and the payment posted to the ledger. `onHold` is where billing staff look at a
 * claim the workflow could not finish: nothing about a claim is ever deleted, it moves there.
 */
import { assign, setup } from 'xstate';

export const claimMachine = setup({
  types: {
    context: {} as { billedCents: number; paidCents: number; denialReason: string | null },
    events: {} as
      | { type: 'SUBMIT'; billedCents: number }
      | { type: 'ACCEPT' }
      | { type: 'REJECT'; ackCode: string }
      | { type: 'PAY'; paidCents: number }
      | { type: 'DENY'; carc: string }
      | { type: 'POST' }
      | { type: 'HOLD' }
      | { type: 'RESUBMIT' },
  },
  guards: {
    billsSomething: ({ event }) => event.type === 'SUBMIT' && event.billedCents > 0,
    paysWithinBilled: ({ context, event }) =>
      event.type === 'PAY' && event.paidCents > 0 && event.paidCents <= context.billedCents,
  },
  actions: {
    recordBilled: assign({
      billedCents: ({ event }) => (event.type === 'SUBMIT' ? event.billedCents : 0),
    }),
    recordPaid: assign({ paidCents: ({ event }) => (event.type === 'PAY' ? event.paidCents : 0) }),
    recordDenial: assign({
      denialReason: ({ event }) => (event.type === 'DENY' ? `CARC ${event.carc}` : null),
    }),
  },
}).createMachine({
  id: 'claim',
  context: { billedCents: 0, paidCents: 0, denialReason: null },
  initial: 'draft',
  states: {
    draft: {
      on: { SUBMIT: { guard: 'billsSomething', target: 'submitted', actions: 'recordBilled' } },
    },
    submitted: { on: { ACCEPT: 'accepted', REJECT: 'rejected', HOLD: 'onHold' } },
    accepted: {
      on: {
        PAY: { guard: 'paysWithinBilled', target: 'paid', actions: 'recordPaid' },
        DENY: { target: 'denied', actions: 'recordDenial' },
        HOLD: 'onHold',
      },
    },
    rejected: { on: { HOLD: 'onHold' } },
    denied: { on: { HOLD: 'onHold' } },
    paid: { on: { POST: 'posted' } },
    posted: { type: 'final' },
    // Billing review: an appeal or a corrected claim starts from here.
    onHold: { on: { RESUBMIT: 'submitted' } },
  },
});
