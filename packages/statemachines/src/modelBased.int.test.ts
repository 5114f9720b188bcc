/**
 * Model-based test: every simple path of the document-review machine (XState's own traversal,
 * `xstate/graph`), replayed through createDurableMachine on a real database, ends in the state
 * and context pure XState computes, delayed transitions included (fired through durable timers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { documentReview, documentReviewEvents } from '../examples/documentReview.js';
import {
  pgliteFactory,
  postgresFactory,
  type StoreFactory,
  type StoreFixture,
} from '../test/fixtures.js';
import { stateNames } from './diagrams.js';
import { createDurableMachine } from './index.js';
import { checkPaths, machinePaths } from './testing.js';

const deadline = 'xstate.after.reviewDeadline.documentReview.inReview';
const events = [...documentReviewEvents, { type: deadline }];
const actor = { id: 'model-test', role: 'system' };

describe('the paths of the pure machine', () => {
  it('reach every state, including through the delayed transition', () => {
    const paths = machinePaths(documentReview, { events });
    const reached = new Set(
      paths.flatMap((p) => JSON.stringify(p.value).match(/[A-Za-z]+/g) ?? []),
    );
    for (const name of stateNames(documentReview)) expect(reached).toContain(name);
    expect(paths.some((p) => p.events.some((e) => e.type === deadline))).toBe(true);
    expect(paths.some((p) => p.events.filter((e) => e.type === 'REVISE').length === 2)).toBe(true);
  });
});

function modelBased(name: string, factory: StoreFactory) {
  describe(`model-based: ${name}`, () => {
    let fixture: StoreFixture;
    beforeAll(async () => {
      fixture = await factory();
    });
    afterAll(async () => {
      await fixture?.cleanup();
    });

    for (const kind of ['simple', 'shortest'] as const) {
      it(`ends every ${kind} path where pure XState does`, async () => {
        const durable = createDurableMachine(documentReview, {
          store: fixture.store,
          streamType: 'document',
          // Simple paths read every step's state from the store; shortest ones use the cache.
          ...(kind === 'simple' ? { cacheSize: 0 } : {}),
        });
        const paths = machinePaths(documentReview, { kind, events });
        const { checked, mismatches } = await checkPaths(durable as never, paths, {
          actor,
          entityIdPrefix: `${kind}-${name.toLowerCase()}`,
        });
        expect(mismatches).toEqual([]);
        expect(checked).toBe(paths.length);
        expect(checked).toBeGreaterThan(kind === 'simple' ? 100 : 20);
      });
    }
  });
}

modelBased('PGlite', pgliteFactory());
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  modelBased('PostgreSQL', postgresFactory(postgresUrl!));
});
