/**
 * A generic document-review workflow, used by this package's model-based test, benchmark and
 * diagrams: a draft is submitted, reviewed in two parallel regions (legal and editorial) before a
 * deadline, revised a bounded number of times, approved and published by a publisher.
 */
import { assign, setup } from 'xstate';

/** Three days to review, by default; tests provide a shorter one. */
export const reviewDeadlineMs = 3 * 24 * 60 * 60 * 1000;

export const documentReview = setup({
  types: {
    context: {} as { revision: number; maxRevisions: number },
    events: {} as
      | { type: 'SUBMIT'; pages: number }
      | { type: 'APPROVE_LEGAL' }
      | { type: 'REJECT_LEGAL' }
      | { type: 'APPROVE_EDITORIAL' }
      | { type: 'REQUEST_CHANGES' }
      | { type: 'REVISE' }
      | { type: 'WITHDRAW' }
      | { type: 'PUBLISH'; role: string },
    input: {} as { maxRevisions?: number } | undefined,
  },
  guards: {
    hasPages: ({ event }) => event.type === 'SUBMIT' && event.pages > 0,
    canRevise: ({ context }) => context.revision < context.maxRevisions,
    hasRole: ({ event }, params: { role: string }) =>
      event.type === 'PUBLISH' && event.role === params.role,
  },
  actions: {
    notifyReviewers: () => {},
    notifyAuthor: (_, _params: { reason: string }) => {},
    publishDocument: () => {},
    bumpRevision: assign({ revision: ({ context }) => context.revision + 1 }),
  },
  delays: { reviewDeadline: reviewDeadlineMs },
}).createMachine({
  id: 'documentReview',
  context: ({ input }) => ({ revision: 0, maxRevisions: input?.maxRevisions ?? 2 }),
  initial: 'draft',
  states: {
    draft: {
      on: {
        SUBMIT: { guard: 'hasPages', target: 'inReview' },
        WITHDRAW: 'withdrawn',
      },
    },
    inReview: {
      type: 'parallel',
      entry: 'notifyReviewers',
      after: {
        reviewDeadline: {
          target: 'expired',
          actions: { type: 'notifyAuthor', params: { reason: 'deadline' } },
        },
      },
      on: { WITHDRAW: 'withdrawn' },
      onDone: 'approved',
      states: {
        legal: {
          initial: 'pending',
          states: {
            pending: {
              on: { APPROVE_LEGAL: 'approved', REJECT_LEGAL: '#documentReview.rejected' },
            },
            approved: { type: 'final' },
          },
        },
        editorial: {
          initial: 'pending',
          states: {
            pending: {
              on: {
                APPROVE_EDITORIAL: 'approved',
                REQUEST_CHANGES: '#documentReview.changesRequested',
              },
            },
            approved: { type: 'final' },
          },
        },
      },
    },
    changesRequested: {
      entry: { type: 'notifyAuthor', params: { reason: 'changes' } },
      on: {
        REVISE: { guard: 'canRevise', target: 'draft', actions: 'bumpRevision' },
        WITHDRAW: 'withdrawn',
      },
    },
    approved: {
      on: {
        PUBLISH: { guard: { type: 'hasRole', params: { role: 'publisher' } }, target: 'published' },
      },
    },
    published: { type: 'final', entry: 'publishDocument' },
    rejected: { type: 'final', entry: { type: 'notifyAuthor', params: { reason: 'rejected' } } },
    expired: { type: 'final' },
    withdrawn: { type: 'final' },
  },
});

/** Every event the machine takes, with the payloads that matter to its guards. */
export const documentReviewEvents = [
  { type: 'SUBMIT', pages: 3 },
  { type: 'SUBMIT', pages: 0 },
  { type: 'APPROVE_LEGAL' },
  { type: 'REJECT_LEGAL' },
  { type: 'APPROVE_EDITORIAL' },
  { type: 'REQUEST_CHANGES' },
  { type: 'REVISE' },
  { type: 'WITHDRAW' },
  { type: 'PUBLISH', role: 'publisher' },
  { type: 'PUBLISH', role: 'author' },
] as const;
