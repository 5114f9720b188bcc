/**
 * What createDurableMachine promises, run against every store the event store runs on
 * (PostgreSQL, PGlite). Each `it` names one promise and fails without it.
 */
import { isEvidentError } from '@evident/envelope';
import { type EventStore, isConcurrencyError } from '@evident/eventstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentReview } from '../examples/documentReview.js';
import {
  createDurableMachine,
  isIllegalTransitionError,
  isTransitionRejectedError,
  isUnknownStateError,
  type TransitionRejectedError,
} from '../src/index.js';
import { fireTimersNow } from '../src/testing.js';
import {
  clerk,
  entity,
  eventually,
  rejection,
  type StoreFactory,
  type StoreFixture,
} from './fixtures.js';
import { claimMachine, counterMachine, planMachine } from './machines.js';
import { documentReviewV2 } from './machinesV2.js';

const author = { id: 'u-7', role: 'author' } as const;
const reviewer = { id: 'u-8', role: 'reviewer' } as const;

export function durableMachineContract(name: string, factory: StoreFactory): void {
  describe(`durable machine contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: EventStore;

    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.cleanup();
    });

    const reviews = (options: Partial<Parameters<typeof createDurableMachine>[1]> = {}) =>
      createDurableMachine(documentReview, { store, streamType: 'document', ...options });

    describe('transitions', () => {
      it('creates an entity on its first send: the initial step, then the step, in one append', async () => {
        const durable = reviews();
        const id = entity('doc');
        const result = await durable.send(id, { type: 'SUBMIT', pages: 3 }, { actor: author });
        expect(result).toMatchObject({ version: 2, created: true, from: 'draft' });
        expect(result.to).toEqual({ inReview: { legal: 'pending', editorial: 'pending' } });
        const history = await durable.history(id);
        expect(history.map((h) => [h.version, h.kind, h.event.type, h.from])).toEqual([
          [1, 'transitioned', 'xstate.init', null],
          [2, 'transitioned', 'SUBMIT', 'draft'],
        ]);
        // One workflow: the creation and the step share a correlation id.
        expect(history[1]!.correlationId).toBe(history[0]!.correlationId);
        expect(history[1]!.recordedAt).toBe(history[0]!.recordedAt);
      });

      it('stores the snapshot in the StateTransitioned event, so a reload is exactly the decided state', async () => {
        const durable = reviews();
        const id = entity('doc');
        const sent = await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        const [event] = await store.readStream(
          { type: 'document', id },
          { direction: 'backwards', limit: 1 },
        );
        expect(event!.type).toBe('StateTransitioned');
        expect(event!.data).toMatchObject({
          machine: { id: 'documentReview', version: 1 },
          from: 'draft',
          to: sent.to,
          event: { type: 'SUBMIT', pages: 1 },
          guards: [{ guard: 'hasPages', result: true }],
          snapshot: sent.state.snapshot,
        });
        const fresh = await reviews({ cacheSize: 0 }).load(id);
        expect(fresh!.snapshot).toEqual(sent.state.snapshot);
        expect(fresh!.value).toEqual(sent.to);
      });

      it('records the actor, correlation and causation ids given by the caller', async () => {
        const durable = reviews();
        const id = entity('doc');
        await durable.create(id, { actor: author, correlationId: 'journey-1' });
        await durable.send(
          id,
          { type: 'SUBMIT', pages: 2 },
          { actor: reviewer, correlationId: 'journey-1', causationId: 'cmd-42' },
        );
        const [, step] = await store.readStream({ type: 'document', id });
        expect(step).toMatchObject({
          actor: reviewer,
          correlationId: 'journey-1',
          causationId: 'cmd-42',
        });
        expect((await store.readByCorrelation('journey-1')).map((e) => e.streamVersion)).toEqual([
          1, 2,
        ]);
      });

      it('allows a guarded transition and records the guard with its result', async () => {
        const durable = reviews();
        const id = entity('doc');
        const result = await durable.send(id, { type: 'SUBMIT', pages: 3 }, { actor: author });
        expect(result.guards).toEqual([{ guard: 'hasPages', result: true }]);
      });

      it('refuses a transition whose guard fails: typed error, state unchanged, rejection recorded', async () => {
        const durable = reviews();
        const id = entity('doc');
        await durable.create(id, { actor: author });
        const error = (await rejection(
          durable.send(id, { type: 'SUBMIT', pages: 0 }, { actor: author }),
        )) as TransitionRejectedError;
        expect(isTransitionRejectedError(error)).toBe(true);
        expect(error).toMatchObject({
          state: 'draft',
          eventType: 'SUBMIT',
          version: 2,
          recorded: true,
          guards: [{ guard: 'hasPages', result: false }],
        });
        // Neither the entity id nor the payload reaches the message.
        expect(error.message).not.toContain(id);
        expect(error.message).toContain('SUBMIT');
        expect((await durable.load(id))!.value).toBe('draft');
        const [, rejected] = await durable.history(id);
        expect(rejected).toMatchObject({
          kind: 'rejected',
          from: 'draft',
          to: 'draft',
          reason: 'guards-refused',
          event: { type: 'SUBMIT', pages: 0 },
          guards: [{ guard: 'hasPages', result: false }],
          actor: author,
        });
      });

      it('records the params of a guard and every named guard inside and/not', async () => {
        const durable = createDurableMachine(planMachine, { store, streamType: 'plan' });
        const id = entity('plan');
        await durable.send(id, { type: 'VERIFY', until: 100 }, { actor: clerk });
        const refused = (await rejection(
          durable.send(
            id,
            { type: 'APPROVE', credential: 'orthodontist', now: 200 },
            { actor: clerk },
          ),
        )) as TransitionRejectedError;
        expect(refused.guards).toEqual([
          { guard: 'hasCredential', params: { credential: 'orthodontist' }, result: true },
          { guard: 'verificationExpired', result: true },
        ]);
        const allowed = await durable.send(
          id,
          { type: 'APPROVE', credential: 'orthodontist', now: 50 },
          { actor: clerk },
        );
        expect(allowed.to).toBe('approved');
        expect(allowed.guards).toEqual([
          { guard: 'hasCredential', params: { credential: 'orthodontist' }, result: true },
          { guard: 'verificationExpired', result: false },
        ]);
        // Short-circuit: a failing first guard is the only one evaluated.
        const other = entity('plan');
        const shortCircuit = (await rejection(
          durable.send(
            other,
            { type: 'APPROVE', credential: 'hygienist', now: 0 },
            { actor: clerk },
          ),
        )) as TransitionRejectedError;
        expect(shortCircuit.guards).toEqual([
          { guard: 'hasCredential', params: { credential: 'orthodontist' }, result: false },
        ]);
      });

      it('evolves parallel regions independently and leaves them together when both are done', async () => {
        const durable = reviews();
        const id = entity('doc');
        await durable.send(id, { type: 'SUBMIT', pages: 3 }, { actor: author });
        const legal = await durable.send(id, { type: 'APPROVE_LEGAL' }, { actor: reviewer });
        expect(legal.to).toEqual({ inReview: { legal: 'approved', editorial: 'pending' } });
        // An event for the finished region is refused; the other region is untouched.
        const again = await rejection(
          durable.send(id, { type: 'APPROVE_LEGAL' }, { actor: reviewer }),
        );
        expect(isTransitionRejectedError(again)).toBe(true);
        expect((await durable.load(id))!.value).toEqual({
          inReview: { legal: 'approved', editorial: 'pending' },
        });
        const editorial = await durable.send(
          id,
          { type: 'APPROVE_EDITORIAL' },
          { actor: reviewer },
        );
        expect(editorial.to).toBe('approved');
      });

      it('scenario 18: ClaimAdjudicated before ClaimSubmitted is refused and recorded, never an illegal state', async () => {
        const claims = createDurableMachine(claimMachine, { store, streamType: 'claim' });
        const id = entity('c');
        const early = await rejection(
          claims.send(id, { type: 'ClaimAdjudicated', approved: true }, { actor: clerk }),
        );
        expect(isTransitionRejectedError(early)).toBe(true);
        expect(early).toMatchObject({
          state: 'draft',
          eventType: 'ClaimAdjudicated',
          recorded: true,
        });
        expect((await claims.load(id))!.value).toBe('draft');
        await claims.send(id, { type: 'ClaimSubmitted', lines: 2 }, { actor: clerk });
        const adjudicated = await claims.send(
          id,
          { type: 'ClaimAdjudicated', approved: true },
          { actor: clerk },
        );
        expect(adjudicated.to).toBe('approved');
        const history = await claims.history(id);
        expect(history.map((h) => [h.kind, h.event.type, h.to])).toEqual([
          ['transitioned', 'xstate.init', 'draft'],
          ['rejected', 'ClaimAdjudicated', 'draft'],
          ['transitioned', 'ClaimSubmitted', 'submitted'],
          ['transitioned', 'ClaimAdjudicated', 'approved'],
        ]);
        // Every recorded state is one the machine defines, reached by a legal step.
        const legal = new Set(['draft', 'submitted', 'approved', 'denied', 'paid']);
        for (const h of history) expect(legal.has(h.state.value as string)).toBe(true);
      });

      it('does not record a rejection with recordRejections: false, and writes nothing', async () => {
        const claims = createDurableMachine(claimMachine, {
          store,
          streamType: 'claim',
          recordRejections: false,
        });
        const id = entity('c');
        await claims.create(id, { actor: clerk });
        const error = await rejection(
          claims.send(id, { type: 'PaymentPosted', amount: 10 }, { actor: clerk }),
        );
        expect(error).toMatchObject({ code: 'TRANSITION_REJECTED', recorded: false, version: 1 });
        expect(await store.streamVersion({ type: 'claim', id })).toBe(1);
      });

      it('accepts a targetless transition as a step with no state change', async () => {
        const claims = createDurableMachine(claimMachine, { store, streamType: 'claim' });
        const id = entity('c');
        const note = await claims.send(id, { type: 'NoteAdded' }, { actor: clerk });
        expect(note).toMatchObject({ from: 'draft', to: 'draft', version: 2 });
      });

      it('refuses every event once the machine is done', async () => {
        const claims = createDurableMachine(claimMachine, { store, streamType: 'claim' });
        const id = entity('c');
        await claims.send(id, { type: 'ClaimSubmitted', lines: 1 }, { actor: clerk });
        await claims.send(id, { type: 'ClaimAdjudicated', approved: false }, { actor: clerk });
        const error = await rejection(
          claims.send(id, { type: 'ClaimWithdrawn' }, { actor: clerk }),
        );
        const [, , , last] = await claims.history(id);
        expect(error).toMatchObject({ code: 'TRANSITION_REJECTED', state: 'denied' });
        expect(last).toMatchObject({ kind: 'rejected', reason: 'machine-done' });
      });

      it('refuses to create an entity twice', async () => {
        const claims = createDurableMachine(claimMachine, { store, streamType: 'claim' });
        const id = entity('c');
        await claims.create(id, { actor: clerk });
        expect(isConcurrencyError(await rejection(claims.create(id, { actor: clerk })))).toBe(true);
      });

      it('rejects xstate.* events from callers and sends without an actor, before any I/O', async () => {
        const claims = createDurableMachine(claimMachine, { store, streamType: 'claim' });
        const id = entity('c');
        await expect(
          claims.send(id, { type: 'xstate.after.1000.claim.draft' } as never, { actor: clerk }),
        ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(claims.send(id, { type: 'NoteAdded' }, {} as never)).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
        });
        await expect(
          claims.send('bad id; drop', { type: 'NoteAdded' }, { actor: clerk }),
        ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        expect(await store.streamVersion({ type: 'claim', id })).toBe(0);
      });
    });

    describe('concurrency', () => {
      it('lets two processes send to one entity at once: each send decides again on fresh state', async () => {
        // Two durable machines with their own caches stand for two processes.
        const a = createDurableMachine(counterMachine, {
          store,
          streamType: 'counter',
          retries: 50,
        });
        const b = createDurableMachine(counterMachine, {
          store,
          streamType: 'counter',
          retries: 50,
        });
        const id = entity('n');
        await a.create(id, { actor: clerk });
        await b.load(id);
        const sends = Array.from({ length: 24 }, (_, i) =>
          (i % 2 === 0 ? a : b).send(id, { type: 'INCREMENT' }, { actor: clerk }),
        );
        const results = await Promise.all(sends);
        expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual(
          Array.from({ length: 24 }, (_, i) => i + 2),
        );
        const final = await a.load(id);
        expect(final).toMatchObject({ version: 25, context: { count: 24 } });
        // Every record's count is its predecessor's plus one: no step decided on stale state.
        const counts = (await a.history(id)).map(
          (h) => (h.state.context as { count: number }).count,
        );
        expect(counts).toEqual(Array.from({ length: 25 }, (_, i) => i));
      });

      it('fails with ConcurrencyError when the expected version is stale, and writes nothing', async () => {
        const counter = createDurableMachine(counterMachine, { store, streamType: 'counter' });
        const id = entity('n');
        await counter.create(id, { actor: clerk });
        await counter.send(id, { type: 'INCREMENT' }, { actor: clerk, expectedVersion: 1 });
        const stale = await rejection(
          counter.send(id, { type: 'INCREMENT' }, { actor: clerk, expectedVersion: 1 }),
        );
        expect(isConcurrencyError(stale)).toBe(true);
        expect(stale).toMatchObject({ expected: 1, actual: 2 });
        expect(await store.streamVersion({ type: 'counter', id })).toBe(2);
      });

      it('decides again when its cached state is stale instead of writing on it', async () => {
        const a = createDurableMachine(claimMachine, { store, streamType: 'claim' });
        const b = createDurableMachine(claimMachine, { store, streamType: 'claim' });
        const id = entity('c');
        await a.send(id, { type: 'ClaimSubmitted', lines: 1 }, { actor: clerk });
        await b.load(id); // b caches "submitted"
        await a.send(id, { type: 'ClaimWithdrawn' }, { actor: clerk }); // back to draft
        // On its cache, b would accept the adjudication; the entity is in draft now.
        const error = await rejection(
          b.send(id, { type: 'ClaimAdjudicated', approved: true }, { actor: clerk }),
        );
        expect(error).toMatchObject({ code: 'TRANSITION_REJECTED', state: 'draft' });
      });

      it('returns the first outcome when a send is retried with the same id', async () => {
        const counter = createDurableMachine(counterMachine, { store, streamType: 'counter' });
        const id = entity('n');
        const recordId = '0190b2a4-6f1e-7cc1-9a55-5e3c2b7f0a11'.replace(
          /.{4}$/,
          Math.floor(Math.random() * 65536)
            .toString(16)
            .padStart(4, '0'),
        );
        const first = await counter.send(id, { type: 'INCREMENT' }, { actor: clerk, id: recordId });
        await counter.send(id, { type: 'INCREMENT' }, { actor: clerk });
        const retried = await counter.send(
          id,
          { type: 'INCREMENT' },
          { actor: clerk, id: recordId },
        );
        expect(retried).toMatchObject({ version: first.version, to: first.to, checkpoint: null });
        expect(await store.streamVersion({ type: 'counter', id })).toBe(3);
      });
      it('returns the first outcome of a retried send with the same id and expected version', async () => {
        const counter = createDurableMachine(counterMachine, { store, streamType: 'counter' });
        const id = entity('n');
        await counter.create(id, { actor: clerk });
        const recordId = '0190b2a4-6f1e-7cc1-9a55-5e3c2b7f0b22'.replace(
          /.{4}$/,
          Math.floor(Math.random() * 65536)
            .toString(16)
            .padStart(4, '0'),
        );
        const send = { actor: clerk, id: recordId, expectedVersion: 1 };
        const first = await counter.send(id, { type: 'INCREMENT' }, send);
        await counter.send(id, { type: 'INCREMENT' }, { actor: clerk });
        expect(await counter.send(id, { type: 'INCREMENT' }, send)).toMatchObject({
          version: first.version,
          checkpoint: null,
        });
        // Another record id at a stale version is a lost race, not a retry.
        const other = await rejection(
          counter.send(id, { type: 'INCREMENT' }, { actor: clerk, expectedVersion: 1 }),
        );
        expect(isConcurrencyError(other)).toBe(true);
      });
    });

    describe('actions as durable jobs', () => {
      it('runs each action once after commit, with an idempotency key of entity, version and action', async () => {
        const runs: string[] = [];
        const claims = createDurableMachine(claimMachine, {
          store,
          streamType: 'claim',
          actions: {
            notifyPayer: (job) => {
              runs.push(
                `${job.type} ${job.idempotencyKey} ${job.attempt} ${String(job.state.value)}`,
              );
            },
          },
        });
        const id = entity('c');
        const result = await claims.send(
          id,
          { type: 'ClaimSubmitted', lines: 2 },
          { actor: clerk },
        );
        expect(result.actionOutcomes).toEqual([{ type: 'notifyPayer', outcome: 'done' }]);
        expect(runs).toEqual([`notifyPayer claim/${id}/2/0 1 submitted`]);
        expect(await claims.runDue()).toEqual({ actions: 0, timers: 0 });
        expect(await claims.jobs(id)).toMatchObject([
          { version: 2, index: 0, type: 'notifyPayer', status: 'done', attempts: 1 },
        ]);
      });

      it('lets an action send its outcome back to its own entity', async () => {
        const id = entity('doc');
        const durable: ReturnType<typeof reviews> = reviews({
          actions: {
            notifyReviewers: async (job) => {
              // A reviewer bot approves at once: a step caused by the action's step.
              await durable.send(
                job.entityId,
                { type: 'APPROVE_LEGAL' },
                { actor: reviewer, causationId: job.idempotencyKey },
              );
            },
          },
        });
        const result = await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        expect(result.actionOutcomes).toEqual([{ type: 'notifyReviewers', outcome: 'done' }]);
        expect((await durable.load(id))!.value).toEqual({
          inReview: { legal: 'approved', editorial: 'pending' },
        });
      });

      it('never runs an action again when the entity is restored and stepped elsewhere', async () => {
        const runs: string[] = [];
        const handlers = {
          notifyPayer: (job: { idempotencyKey: string }) => {
            runs.push(job.idempotencyKey);
          },
          postRemittance: (job: { idempotencyKey: string }) => {
            runs.push(job.idempotencyKey);
          },
        };
        const id = entity('c');
        const first = createDurableMachine(claimMachine, {
          store,
          streamType: 'claim',
          actions: handlers,
        });
        await first.send(id, { type: 'ClaimSubmitted', lines: 2 }, { actor: clerk });
        // Another process: nothing cached, restores the entity from the store, steps it on.
        const second = createDurableMachine(claimMachine, {
          store,
          streamType: 'claim',
          actions: handlers,
          cacheSize: 0,
        });
        expect((await second.load(id))!.value).toBe('submitted');
        await second.send(id, { type: 'ClaimAdjudicated', approved: true }, { actor: clerk });
        await second.send(id, { type: 'PaymentPosted', amount: 90 }, { actor: clerk });
        await second.runDue();
        await first.runDue();
        expect(runs).toEqual([`claim/${id}/2/0`, `claim/${id}/4/0`]);
      });

      it('runs an action that failed again later, and marks it failed after its last attempt', async () => {
        let calls = 0;
        const claims = createDurableMachine(claimMachine, {
          store,
          streamType: 'claim',
          maxActionAttempts: 2,
          actions: {
            notifyPayer: () => {
              calls += 1;
              throw new Error('payer gateway unavailable');
            },
          },
        });
        const id = entity('c');
        const result = await claims.send(
          id,
          { type: 'ClaimSubmitted', lines: 2 },
          { actor: clerk },
        );
        // The step is committed whatever its actions do.
        expect(result.to).toBe('submitted');
        expect(result.actionOutcomes).toEqual([{ type: 'notifyPayer', outcome: 'retry' }]);
        const [job] = await claims.jobs(id);
        expect(job).toMatchObject({ status: 'pending', attempts: 1 });
        expect(job!.lastError).toContain('payer gateway unavailable');
        expect(await claims.runDue()).toEqual({ actions: 0, timers: 0 }); // backing off
        await store.database.query(
          `update "${store.schema}".machine_jobs set run_after = now() where entity_id = $1`,
          [id],
        );
        expect(await claims.runDue()).toEqual({ actions: 1, timers: 0 });
        expect(calls).toBe(2);
        expect(await claims.jobs(id)).toMatchObject([{ status: 'failed', attempts: 2 }]);
      });

      it('commits a transactional action with its job: a failed attempt leaves no trace of its writes', async () => {
        await store.database.exec(
          `create table if not exists "${store.schema}".orders (key text primary key, attempt int)`,
        );
        let fail = true;
        const claims = createDurableMachine(claimMachine, {
          store,
          streamType: 'claim',
          actions: {
            notifyPayer: {
              transactional: true,
              async run(job, tx) {
                await tx.query(`insert into "${store.schema}".orders values ($1, $2)`, [
                  job.idempotencyKey,
                  job.attempt,
                ]);
                if (fail) throw new Error('after the write, before the commit');
              },
            },
          },
        });
        const id = entity('c');
        const result = await claims.send(
          id,
          { type: 'ClaimSubmitted', lines: 1 },
          { actor: clerk },
        );
        expect(result.actionOutcomes).toEqual([{ type: 'notifyPayer', outcome: 'retry' }]);
        const orders = () =>
          store.database.query<{ key: string; attempt: number }>(
            `select key, attempt from "${store.schema}".orders where key like $1`,
            [`claim/${id}/%`],
          );
        expect(await orders()).toEqual([]);
        fail = false;
        await store.database.query(
          `update "${store.schema}".machine_jobs set run_after = now() where entity_id = $1`,
          [id],
        );
        expect(await claims.runDue()).toEqual({ actions: 1, timers: 0 });
        expect(await orders()).toEqual([{ key: `claim/${id}/2/0`, attempt: 2 }]);
        expect(await claims.jobs(id)).toMatchObject([{ status: 'done', attempts: 2 }]);
      });

      it('runs actions of the machine implementation when no handler is given, only by workers with runActions: worker', async () => {
        const seen: unknown[] = [];
        const machine = claimMachine.provide({
          actions: {
            notifyPayer: ({ context }: { context: unknown }) => {
              seen.push(context);
            },
          },
        });
        const claims = createDurableMachine(machine, {
          store,
          streamType: 'claim',
          runActions: 'worker',
        });
        const id = entity('c');
        const result = await claims.send(
          id,
          { type: 'ClaimSubmitted', lines: 4 },
          { actor: clerk },
        );
        expect(result.actionOutcomes).toEqual([]);
        expect(seen).toEqual([]);
        await eventually(async () => {
          await claims.runDue();
          expect(seen).toEqual([{ submittedLines: 4, paid: 0 }]);
        });
      });
    });

    describe('durable timers', () => {
      const fast = () =>
        createDurableMachine(documentReview.provide({ delays: { reviewDeadline: 400 } }), {
          store,
          streamType: 'review',
        });

      it('stores a delayed transition as a timer due at the step time plus the delay, database time', async () => {
        const durable = fast();
        const id = entity('doc');
        await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        const [step] = await store.readStream({ type: 'review', id }, { fromVersion: 2, limit: 1 });
        const [timer] = await durable.timers(id);
        expect(timer).toMatchObject({
          id: 'xstate.after.reviewDeadline.documentReview.inReview',
          scheduledVersion: 2,
          status: 'pending',
        });
        expect(Date.parse(timer!.fireAt) - Date.parse(step!.recordedAt)).toBe(400);
        expect((await durable.load(id))!.timers).toEqual([
          {
            id: 'xstate.after.reviewDeadline.documentReview.inReview',
            version: 2,
            event: { type: 'xstate.after.reviewDeadline.documentReview.inReview' },
            delay: 400,
          },
        ]);
      });

      it('fires a due timer through a worker, as a step caused by the scheduling one', async () => {
        const durable = fast();
        const id = entity('doc');
        await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        expect(await durable.runDue()).toEqual({ actions: 0, timers: 0 });
        const worker = durable.startWorker({ pollInterval: 50 });
        try {
          await eventually(async () => expect((await durable.load(id))!.value).toBe('expired'));
        } finally {
          await worker.stop();
        }
        const history = await durable.history(id);
        const fired = history[history.length - 1]!;
        expect(fired).toMatchObject({
          kind: 'transitioned',
          to: 'expired',
          actor: { id: 'timer', role: 'system' },
          causationId: history[1]!.eventId,
          correlationId: history[1]!.correlationId,
        });
        expect(
          Date.parse(fired.recordedAt) - Date.parse(history[1]!.recordedAt),
        ).toBeGreaterThanOrEqual(400);
        expect(await durable.timers(id)).toMatchObject([{ status: 'fired', settledVersion: 3 }]);
      });

      it('cancels the timer when its state is left, in the same statement as the step', async () => {
        const durable = fast();
        const id = entity('doc');
        await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        await durable.send(id, { type: 'WITHDRAW' }, { actor: author });
        expect(await durable.timers(id)).toMatchObject([
          { status: 'cancelled', settledVersion: 3 },
        ]);
        await new Promise((r) => setTimeout(r, 450));
        expect(await durable.runDue()).toEqual({ actions: 0, timers: 0 });
        expect((await durable.load(id))!.value).toBe('withdrawn');
      });

      it('never fires a timer of a state that was left, even when its row missed the cancellation', async () => {
        const durable = fast();
        const id = entity('doc');
        await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        await durable.send(id, { type: 'WITHDRAW' }, { actor: author });
        // As if the cancellation had been lost: the machine's own record still decides.
        await store.database.query(
          `update "${store.schema}".machine_timers set status = 'pending', fire_at = now() where entity_id = $1`,
          [id],
        );
        expect(await durable.runDue()).toEqual({ actions: 0, timers: 1 });
        expect(await durable.timers(id)).toMatchObject([{ status: 'stale' }]);
        expect(await store.streamVersion({ type: 'review', id })).toBe(3);
      });

      it('schedules a new timer when a state is entered again, and fires only the live one', async () => {
        const durable = createDurableMachine(
          documentReview.provide({ delays: { reviewDeadline: 60_000 } }),
          { store, streamType: 'review' },
        );
        const id = entity('doc');
        await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        await durable.send(id, { type: 'REQUEST_CHANGES' }, { actor: reviewer });
        await durable.send(id, { type: 'REVISE' }, { actor: author });
        await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        expect((await durable.timers(id)).map((t) => [t.scheduledVersion, t.status])).toEqual([
          [2, 'cancelled'],
          [5, 'pending'],
        ]);
        expect(await fireTimersNow(durable as never, id)).toBe(1);
        expect((await durable.load(id))!.value).toBe('expired');
      });
    });

    describe('time travel', () => {
      it('stateAt every recorded instant equals the state recorded then, with the guards of its step', async () => {
        const durable = reviews();
        const id = entity('doc');
        const before = new Date(Date.now() - 60_000);
        const steps: [string, object][] = [
          ['SUBMIT', { type: 'SUBMIT', pages: 2 }],
          ['REQUEST_CHANGES', { type: 'REQUEST_CHANGES' }],
          ['REVISE', { type: 'REVISE' }],
          ['SUBMIT', { type: 'SUBMIT', pages: 0 }],
          ['SUBMIT', { type: 'SUBMIT', pages: 5 }],
          ['APPROVE_EDITORIAL', { type: 'APPROVE_EDITORIAL' }],
          ['APPROVE_LEGAL', { type: 'APPROVE_LEGAL' }],
        ];
        for (const [, event] of steps) {
          await durable.send(id, event as never, { actor: author }).catch((e) => {
            if (!isTransitionRejectedError(e)) throw e;
          });
          await new Promise((r) => setTimeout(r, 3));
        }
        const history = await durable.history(id);
        expect(history).toHaveLength(steps.length + 1);
        for (const entry of history) {
          // Records of the same millisecond: the state at that instant is the last of them.
          const last = history.filter((h) => h.recordedAt === entry.recordedAt).at(-1)!;
          const at = await durable.stateAt(id, entry.recordedAt);
          expect(at).toEqual(last);
          expect(at!.state.value).toEqual(last.state.value);
          expect(at!.state.context).toEqual(last.state.context);
        }
        expect(await durable.stateAt(id, before)).toBeUndefined();
        const rejectedStep = history.find((h) => h.kind === 'rejected')!;
        expect(rejectedStep.guards).toEqual([{ guard: 'hasPages', result: false }]);
        const revised = history.find((h) => h.event.type === 'REVISE')!;
        expect(revised.guards).toEqual([{ guard: 'canRevise', result: true }]);
        expect(revised.state.context).toEqual({ revision: 1, maxRevisions: 2 });
        const now = await durable.stateAt(id, new Date(Date.now() + 60_000));
        expect(now!.state.value).toBe('approved');
        await expect(durable.stateAt(id, 'yesterday')).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
        });
      });
    });

    describe('legality checks for compensations', () => {
      it('plans the event that leads to a target state, and takes it with transitionTo', async () => {
        const durable = reviews();
        const id = entity('doc');
        await durable.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        await durable.send(id, { type: 'REQUEST_CHANGES' }, { actor: reviewer });
        const plan = await durable.planTransitionTo(id, 'draft');
        expect(plan).toMatchObject({
          legal: true,
          event: { type: 'REVISE' },
          from: 'changesRequested',
          to: 'draft',
          guards: [{ guard: 'canRevise', result: true }],
          version: 3,
        });
        expect(await store.streamVersion({ type: 'document', id })).toBe(3);
        const done = await durable.transitionTo(id, 'draft', { actor: author });
        expect(done).toMatchObject({ version: 4, from: 'changesRequested', to: 'draft' });
      });

      it('refuses an illegal target with IllegalTransitionError and writes nothing', async () => {
        const durable = reviews();
        const id = entity('doc');
        await durable.send(id, { type: 'WITHDRAW' }, { actor: author });
        const plan = await durable.planTransitionTo(id, 'draft');
        expect(plan).toMatchObject({
          legal: false,
          from: 'withdrawn',
          target: 'draft',
          version: 2,
        });
        const error = await rejection(durable.transitionTo(id, 'draft', { actor: author }));
        expect(isIllegalTransitionError(error)).toBe(true);
        expect(await store.streamVersion({ type: 'document', id })).toBe(2);
      });

      it('takes candidate events with payloads, so guards that read the event decide legality', async () => {
        const durable = reviews();
        const id = entity('doc');
        await durable.create(id, { actor: author });
        const bare = await durable.planTransitionTo(id, 'inReview');
        expect(bare).toMatchObject({ legal: false, tried: ['SUBMIT', 'WITHDRAW'] });
        const withPages = await durable.planTransitionTo(id, 'inReview', {
          events: [{ type: 'SUBMIT', pages: 4 }],
        });
        expect(withPages).toMatchObject({ legal: true, event: { type: 'SUBMIT', pages: 4 } });
      });

      it('checks an event without writing or running anything', async () => {
        const runs: string[] = [];
        const claims = createDurableMachine(claimMachine, {
          store,
          streamType: 'claim',
          actions: { notifyPayer: () => void runs.push('notifyPayer') },
        });
        const id = entity('c');
        const check = await claims.check(id, { type: 'ClaimSubmitted', lines: 1 });
        expect(check).toEqual({
          accepted: true,
          version: 0,
          from: 'draft',
          to: 'submitted',
          guards: [{ guard: 'hasLines', result: true }],
          actions: ['notifyPayer'],
        });
        const refused = await claims.check(id, { type: 'PaymentPosted', amount: 1 });
        expect(refused).toMatchObject({ accepted: false, reason: 'no-transition' });
        expect(runs).toEqual([]);
        expect(await store.streamVersion({ type: 'claim', id })).toBe(0);
      });
    });

    describe('machine versions and migrations', () => {
      // v2 (test/machinesV2.ts) renames `changesRequested` to `revising` and adds a context field.
      it('migrates persisted v1 instances to v2 with a registered migration', async () => {
        const v1 = reviews();
        const id = entity('doc');
        await v1.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        await v1.send(id, { type: 'REQUEST_CHANGES' }, { actor: reviewer });
        const migrated = createDurableMachine(documentReviewV2, {
          store,
          streamType: 'document',
          version: 2,
          migrations: {
            1: (snapshot) => ({
              ...snapshot,
              value: snapshot.value === 'changesRequested' ? 'revising' : snapshot.value,
              context: { ...(snapshot.context as object), reviewers: [] },
            }),
          },
        });
        const loaded = await migrated.load(id);
        expect(loaded).toMatchObject({
          value: 'revising',
          context: { revision: 0, maxRevisions: 2, reviewers: [] },
          machine: { id: 'documentReview', version: 2 },
        });
        const next = await migrated.send(id, { type: 'REVISE' }, { actor: author });
        expect(next).toMatchObject({ from: 'revising', to: 'draft' });
        const history = await migrated.history(id);
        // History keeps what was recorded, in the shape of the version that recorded it.
        expect(history.map((h) => [h.state.machine.version, h.state.value])).toEqual([
          [1, 'draft'],
          [1, { inReview: { legal: 'pending', editorial: 'pending' } }],
          [1, 'changesRequested'],
          [2, 'draft'],
        ]);
      });

      it('refuses to load a state that no longer exists without a migration, naming the state', async () => {
        const v1 = reviews();
        const id = entity('doc');
        await v1.send(id, { type: 'SUBMIT', pages: 1 }, { actor: author });
        await v1.send(id, { type: 'REQUEST_CHANGES' }, { actor: reviewer });
        const unmigrated = createDurableMachine(documentReviewV2, {
          store,
          streamType: 'document',
          version: 2,
        });
        const error = await rejection(unmigrated.load(id));
        expect(isUnknownStateError(error)).toBe(true);
        expect(error).toMatchObject({
          state: 'changesRequested',
          storedVersion: 1,
          currentVersion: 2,
        });
        expect((error as Error).message).toContain("'changesRequested'");
        await expect(
          unmigrated.send(id, { type: 'REVISE' }, { actor: author }),
        ).rejects.toMatchObject({ code: 'UNKNOWN_STATE' });
        // Instances in states that still exist load without a migration.
        const other = entity('doc');
        await v1.send(other, { type: 'SUBMIT', pages: 1 }, { actor: author });
        expect((await unmigrated.load(other))!.value).toEqual({
          inReview: { legal: 'pending', editorial: 'pending' },
        });
      });

      it('refuses an instance stored by a newer machine version', async () => {
        const id = entity('doc');
        await createDurableMachine(documentReview, {
          store,
          streamType: 'document',
          version: 3,
        }).create(id, { actor: author });
        const error = await rejection(reviews().load(id));
        expect(isEvidentError(error, 'MACHINE_VERSION_MISMATCH')).toBe(true);
      });
    });
  });
}
