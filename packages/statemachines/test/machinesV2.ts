/**
 * Version 2 of the document-review machine, for the migration tests: `changesRequested` is now
 * `revising`, and the context gains `reviewers`.
 */
import { createMachine } from 'xstate';
import { documentReview } from '../examples/documentReview.js';

// biome-ignore lint/suspicious/noExplicitAny: the v1 config is reshaped by hand below.
const config = documentReview.config as any;
const { changesRequested, ...states } = config.states;

export const documentReviewV2 = createMachine(
  {
    ...config,
    context: ({ input }: { input?: { maxRevisions?: number } }) => ({
      revision: 0,
      maxRevisions: input?.maxRevisions ?? 2,
      reviewers: [] as string[],
    }),
    states: {
      ...states,
      inReview: {
        ...states.inReview,
        states: {
          ...states.inReview.states,
          editorial: {
            ...states.inReview.states.editorial,
            states: {
              ...states.inReview.states.editorial.states,
              pending: {
                on: {
                  APPROVE_EDITORIAL: 'approved',
                  REQUEST_CHANGES: '#documentReview.revising',
                },
              },
            },
          },
        },
      },
      revising: changesRequested,
    },
  },
  documentReview.implementations as never,
) as unknown as typeof documentReview;
