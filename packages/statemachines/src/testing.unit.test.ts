import { describe, expect, it } from 'vitest';
import { documentReview, documentReviewEvents } from '../examples/documentReview.js';
import { claimMachine } from '../test/machines.js';
import { given, machinePaths } from './testing.js';

describe('given/when', () => {
  it('decides a step after a history, with the guards, actions and timers the runtime records', () => {
    expect(given(documentReview).when({ type: 'SUBMIT', pages: 2 })).toEqual({
      accepted: true,
      value: { inReview: { legal: 'pending', editorial: 'pending' } },
      context: { revision: 0, maxRevisions: 2 },
      guards: [{ guard: 'hasPages', result: true }],
      actions: ['notifyReviewers'],
      timers: ['xstate.after.reviewDeadline.documentReview.inReview'],
    });
    const step = given(claimMachine, [{ type: 'ClaimSubmitted', lines: 2 }]).when({
      type: 'ClaimAdjudicated',
      approved: false,
    });
    expect(step).toMatchObject({
      accepted: true,
      value: 'denied',
      guards: [{ guard: 'approved', result: false }],
    });
  });

  it('reports a rejection with its reason, the state unchanged', () => {
    expect(given(claimMachine).when({ type: 'ClaimAdjudicated', approved: true })).toMatchObject({
      accepted: false,
      value: 'draft',
      reason: 'no-transition',
    });
  });

  it('refuses a history that cannot happen', () => {
    expect(() =>
      given(claimMachine, [{ type: 'PaymentPosted', amount: 1 }]).when({ type: 'NoteAdded' }),
    ).toThrow(/given event 0 \(PaymentPosted\) is rejected in state draft/);
  });
});

describe('machinePaths', () => {
  it('lists paths as plain data without the initialisation step', () => {
    const shortest = machinePaths(documentReview, {
      kind: 'shortest',
      events: documentReviewEvents,
    });
    const toPublished = shortest.find((p) => p.value === 'published')!;
    expect(toPublished.description).toBe('SUBMIT → APPROVE_LEGAL → APPROVE_EDITORIAL → PUBLISH');
    expect(toPublished.events.at(-1)).toEqual({ type: 'PUBLISH', role: 'publisher' });
    expect(toPublished.status).toBe('done');
    expect(shortest[0]).toMatchObject({ events: [], value: 'draft', description: '(initial)' });
  });
});
