/**
 * Reliability scenario 22: saga code changes while instances are in flight. The stored-history
 * check (`checkStoredHistories` from the test kit) replays every unfinished instance against the
 * code about to be deployed and names each incompatible change; the runtime refuses to continue
 * a history its code could not have produced.
 */
import { createEnvelope } from '@evident/envelope';
import type { EventStore } from '@evident/eventstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory, type StoreFixture, sagaId } from '../test/fixtures.js';
import { createSagaRuntime, defineSaga, renameSteps, type SagaMigration } from './index.js';
import { checkStoredHistories } from './testing.js';

const noop = () => ({ ok: true });
const hold = { transition: 'moveToHolding', run: () => null };
const pending = { transition: 'markPendingInsuranceResolution', run: () => null };

/** Version 1 as deployed: onboarding waits for the signed consent after assigning a coordinator. */
const deployed = defineSaga('onboarding-consent', { version: 1 })
  .step('createPatientRecord', { run: noop, compensate: hold })
  .step('verifyInsuranceEligibility', { run: noop })
  .step('assignCareCoordinator', { run: noop, compensate: pending })
  .waitFor('ConsentSigned', { name: 'consent' })
  .step('scheduleInitialConsultation', { run: noop });

describe.skipIf(!postgresUrl)('saga code changed under instances in flight (PostgreSQL)', () => {
  let fixture: StoreFixture;
  let store: EventStore;
  const inFlight = [sagaId('v'), sagaId('v')];
  const finished = sagaId('v');

  beforeAll(async () => {
    fixture = await postgresFactory(postgresUrl!)();
    store = fixture.store;
    const runtime = createSagaRuntime({ store, sagas: [deployed], workers: false });
    for (const id of [...inFlight, finished])
      await runtime.start('onboarding-consent', null, { id });
    await runtime.drain();
    await runtime.signal(finished, consent());
    await runtime.drain();
    expect((await runtime.get(finished))!.status).toBe('completed');
    for (const id of inFlight) expect((await runtime.get(id))!.status).toBe('waiting');
    await runtime.stop();
  });
  afterAll(() => fixture?.cleanup());

  const consent = () =>
    createEnvelope({
      type: 'ConsentSigned',
      data: { form: 'HIPAA-NPP' },
      source: 'patient-portal',
      actor: { id: 'portal', role: 'system' },
    });
  const check = (
    saga: ReturnType<typeof defineSaga>,
    options: { includeFinished?: boolean } = {},
  ) => checkStoredHistories({ store, sagas: [saga], ...options });
  const kinds = async (saga: ReturnType<typeof defineSaga>) =>
    (await check(saga)).map((r) => [
      r.sagaId,
      r.compatible,
      r.problems.map((p) => `${p.kind}:${p.node}`),
    ]);

  it('accepts the deployed code, and changes that leave the recorded path as it was', async () => {
    const appended = defineSaga('onboarding-consent', { version: 1 })
      .step('createPatientRecord', { run: noop, compensate: hold, retry: { attempts: 5 } })
      .step('verifyInsuranceEligibility', { run: noop, timeout: '30s' })
      .step('assignCareCoordinator', { run: noop, compensate: pending })
      .waitFor('ConsentSigned', { name: 'consent', timeout: '30d' })
      .step('scheduleInitialConsultation', { run: noop })
      .step('sendWelcomeCommunications', { run: noop });
    for (const saga of [deployed, appended]) {
      const reports = await check(saga as never);
      expect(reports.map((r) => r.sagaId).sort()).toEqual([...inFlight].sort());
      expect(reports.every((r) => r.compatible && r.status === 'waiting')).toBe(true);
    }
    expect(
      (await check(deployed as never, { includeFinished: true })).map((r) => r.sagaId),
    ).toContain(finished);
  });

  it('flags a step inserted before the point the instances reached', async () => {
    const inserted = defineSaga('onboarding-consent', { version: 1 })
      .step('createPatientRecord', { run: noop, compensate: hold })
      .step('verifyInsuranceEligibility', { run: noop })
      .step('checkPriorAuthorization', { run: noop })
      .step('assignCareCoordinator', { run: noop, compensate: pending })
      .waitFor('ConsentSigned', { name: 'consent' })
      .step('scheduleInitialConsultation', { run: noop });
    expect(await kinds(inserted as never)).toEqual(
      inFlight.map((id) => [id, false, ['order-changed:assignCareCoordinator']]),
    );
  });

  it('flags reordered, renamed and retyped steps', async () => {
    const reordered = defineSaga('onboarding-consent', { version: 1 })
      .step('verifyInsuranceEligibility', { run: noop })
      .step('createPatientRecord', { run: noop, compensate: hold })
      .step('assignCareCoordinator', { run: noop, compensate: pending })
      .waitFor('ConsentSigned', { name: 'consent' });
    const renamed = defineSaga('onboarding-consent', { version: 1 })
      .step('registerPatient', { run: noop, compensate: hold })
      .step('verifyInsuranceEligibility', { run: noop })
      .step('assignCareCoordinator', { run: noop, compensate: pending })
      .waitFor('ConsentSigned', { name: 'consent' });
    const retyped = defineSaga('onboarding-consent', { version: 1 })
      .step('createPatientRecord', { run: noop, compensate: hold })
      .step('verifyInsuranceEligibility', { run: noop })
      .step('assignCareCoordinator', { run: noop, compensate: pending })
      .sleep('1d', { name: 'consent' });
    expect((await check(reordered as never))[0]!.problems.map((p) => p.kind)).toEqual([
      'order-changed',
    ]);
    expect((await check(renamed as never))[0]!.problems.map((p) => `${p.kind}:${p.node}`)).toEqual([
      'unknown-node:createPatientRecord',
      'order-changed:verifyInsuranceEligibility',
    ]);
    expect((await check(retyped as never))[0]!.problems.map((p) => `${p.kind}:${p.node}`)).toEqual([
      'kind-changed:consent',
    ]);
  });

  it('flags a compensation removed or changed for a step the instances completed', async () => {
    const removed = defineSaga('onboarding-consent', { version: 1 })
      .step('createPatientRecord', { run: noop, compensate: hold })
      .step('verifyInsuranceEligibility', { run: noop })
      .step('assignCareCoordinator', { run: noop })
      .waitFor('ConsentSigned', { name: 'consent' });
    const changed = defineSaga('onboarding-consent', { version: 1 })
      .step('createPatientRecord', {
        run: noop,
        compensate: { transition: 'archiveRecord', run: () => null },
      })
      .step('verifyInsuranceEligibility', { run: noop })
      .step('assignCareCoordinator', { run: noop, compensate: pending })
      .waitFor('ConsentSigned', { name: 'consent' });
    expect((await check(removed as never))[0]!.problems.map((p) => `${p.kind}:${p.node}`)).toEqual([
      'compensation-removed:assignCareCoordinator',
    ]);
    expect((await check(changed as never))[0]!.problems[0]!.message).toMatch(
      /createPatientRecord completed promising compensation moveToHolding; the code now compensates with archiveRecord/,
    );
  });

  it('flags instances whose version no deployed definition runs, unless a migration is registered', async () => {
    const v2 = defineSaga('onboarding-consent', { version: 2 }).step('newShape', { run: noop });
    const reports = await check(v2 as never);
    expect(reports.map((r) => r.problems.map((p) => p.kind))).toEqual([
      ['version-unregistered'],
      ['version-unregistered'],
    ]);
    const v2Shape = (migration: SagaMigration) =>
      defineSaga('onboarding-consent', { version: 2, migrations: { 1: migration } })
        .step('registerPatient', { run: noop, compensate: hold })
        .step('verifyInsuranceEligibility', { run: noop })
        .step('assignCareCoordinator', { run: noop, compensate: pending })
        .waitFor('ConsentSigned', { name: 'consent' });
    const migrated = await check(
      v2Shape(renameSteps({ createPatientRecord: 'registerPatient' })) as never,
    );
    expect(migrated.map((r) => [r.version, r.compatible])).toEqual([
      [1, true],
      [1, true],
    ]);
    // A migration that renames the start but not the success: the check sees the half-done rename.
    const halfDone = v2Shape((e) =>
      e.type === 'StepStarted' && e.data.step === 'createPatientRecord'
        ? { type: e.type, data: { ...e.data, step: 'registerPatient' } }
        : e,
    );
    expect((await check(halfDone as never))[0]!.problems.map((p) => p.kind)).toContain(
      'order-changed',
    );
  });

  it('leaves an instance to code that can continue it, telling operators why', async () => {
    const inserted = defineSaga('onboarding-consent', { version: 1 })
      .step('createPatientRecord', { run: noop, compensate: hold })
      .step('checkPriorAuthorization', { run: noop })
      .step('verifyInsuranceEligibility', { run: noop })
      .step('assignCareCoordinator', { run: noop, compensate: pending })
      .waitFor('ConsentSigned', { name: 'consent' })
      .step('scheduleInitialConsultation', { run: noop });
    const wrong = createSagaRuntime({ store, sagas: [inserted], workers: false });
    const id = inFlight[0]!;
    await wrong.signal(id, consent());
    await wrong.drain();
    const left = (await wrong.get(id))!;
    expect(left).toMatchObject({
      status: 'waiting',
      leaseOwner: null,
      lastError: { code: 'HISTORY_INCOMPATIBLE' },
    });
    expect(left.lastError!.message).toMatch(
      /entered verifyInsuranceEligibility before checkPriorAuthorization/,
    );
    expect(await wrong.count({ error: 'HISTORY_INCOMPATIBLE' })).toBeGreaterThanOrEqual(1);
    const types = (await store.readStream({ type: 'saga', id })).map((e) => e.type);
    expect(types.at(-1)).toBe('SignalReceived');
    await wrong.stop();

    // The compatible code takes it from there (once its back-off has passed).
    await store.database.query(
      `update "${store.schema}".saga_instances set due_at = now() where saga_id = $1`,
      [id],
    );
    const right = createSagaRuntime({ store, sagas: [deployed], workers: false });
    await right.drain();
    expect((await right.get(id))!.status).toBe('completed');
    await right.stop();
  });
});
