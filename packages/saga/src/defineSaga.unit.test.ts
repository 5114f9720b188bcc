import { describe, expect, expectTypeOf, it } from 'vitest';
import { onboardingSaga } from '../examples/onboarding.js';
import { createWorld } from '../test/world.js';
import { defineSaga, type InputFrom, isSagaError, type ResultsFrom, renameSteps } from './index.js';

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal');
};
const invalid = (f: () => unknown) => isSagaError(refusal(f), 'SAGA_DEFINITION_INVALID');

describe('defining a saga', () => {
  it('gives each step the input and the typed results of the steps before it', () => {
    const saga = defineSaga<{ patientId: string }>('typed', { version: 1 })
      .step('createPatientRecord', {
        run: ({ input }) => {
          expectTypeOf(input.patientId).toEqualTypeOf<string>();
          return { recordId: `rec-${input.patientId}` };
        },
      })
      .step('verify', {
        run: async ({ results }) => {
          expectTypeOf(results.createPatientRecord.recordId).toEqualTypeOf<string>();
          return { eb01: '1' as const };
        },
      })
      .when(
        ({ results }) => results.verify.eb01 === '1',
        (b) => b.step('requestPriorAuthorization', { run: () => ({ reference: 'PA-1' }) }),
      )
      .parallel({
        primary: (b) => b.step('submitPrimary', { run: () => ({ claimId: 'c-1' }) }),
        secondary: (b) => b.step('submitSecondary', { run: () => ({ claimId: 'c-2' }) }),
      })
      .waitFor<'RemittanceReceived', { paid: number }, 'remittance'>('RemittanceReceived', {
        name: 'remittance',
      })
      .step('post', {
        run: ({ results }) => {
          expectTypeOf(results.requestPriorAuthorization).toEqualTypeOf<
            { reference: string } | undefined
          >();
          expectTypeOf(results.submitSecondary.claimId).toEqualTypeOf<string>();
          expectTypeOf(results.remittance).toMatchTypeOf<{ data: { paid: number } } | null>();
          return null;
        },
      });
    expectTypeOf<InputFrom<typeof saga>>().toEqualTypeOf<{ patientId: string }>();
    expectTypeOf<ResultsFrom<typeof saga>['verify']>().toEqualTypeOf<{ eb01: '1' }>();
    expect(saga.nodes.map((n) => n.id)).toEqual([
      'createPatientRecord',
      'verify',
      'when-1',
      'parallel-1',
      'remittance',
      'post',
    ]);
  });

  it('is immutable: each method returns a new definition', () => {
    const base = defineSaga('immutable', { version: 1 }).step('a', { run: () => null });
    const longer = base.step('b', { run: () => null });
    expect(base.nodes).toHaveLength(1);
    expect(longer.nodes).toHaveLength(2);
    expect(Object.isFrozen(base)).toBe(true);
  });

  it('defines the seven-step onboarding saga of the example', () => {
    const saga = onboardingSaga(createWorld().services);
    expect(saga.name).toBe('patient-onboarding');
    expect(saga.nodes.map((n) => n.id)).toHaveLength(7);
    const step = saga.nodes[1]!;
    expect(step).toMatchObject({
      kind: 'step',
      attemptTimeoutMs: 30_000,
      stepTimeoutMs: 120_000,
      retry: { attempts: 3, initialMs: 1000, coefficient: 2 },
    });
  });

  it('refuses duplicate names anywhere in the saga, branches included', () => {
    const base = defineSaga('dupes', { version: 1 }).step('a', { run: () => null });
    expect(invalid(() => base.step('a', { run: () => null }))).toBe(true);
    expect(
      invalid(() =>
        base.when(
          () => true,
          (b) => b.step('a', { run: () => null }),
        ),
      ),
    ).toBe(true);
    expect(
      invalid(() =>
        base.parallel({
          x: (b) => b.step('b', { run: () => null }),
          y: (b) => b.step('b', { run: () => null }),
        }),
      ),
    ).toBe(true);
    expect(invalid(() => base.waitFor('Signal', { name: 'a' }))).toBe(true);
    expect(invalid(() => base.sleep('1d', { name: 'a' }))).toBe(true);
  });

  it('refuses malformed names, options and branches with a clear error', () => {
    const base = defineSaga('bad', { version: 1 });
    expect(invalid(() => defineSaga('has space', { version: 1 }))).toBe(true);
    expect(invalid(() => defineSaga('x', { version: 0 }))).toBe(true);
    expect(invalid(() => defineSaga('x', { version: 2, migrations: { 2: (e) => e } }))).toBe(true);
    expect(invalid(() => base.step("'; drop table", { run: () => null }))).toBe(true);
    expect(invalid(() => base.step('a', {} as never))).toBe(true);
    expect(invalid(() => base.step('a', { run: () => null, retry: { attempts: 0 } }))).toBe(true);
    expect(
      invalid(() => base.step('a', { run: () => null, retry: { backoffCoefficient: 0.5 } })),
    ).toBe(true);
    expect(invalid(() => base.step('a', { run: () => null, timeout: 0 }))).toBe(true);
    expect(invalid(() => base.step('a', { run: () => null, onExhausted: 'ignore' as never }))).toBe(
      true,
    );
    expect(
      invalid(() => base.step('a', { run: () => null, compensate: { transition: 'x' } as never })),
    ).toBe(true);
    expect(invalid(() => base.parallel({ only: (b) => b.step('a', { run: () => null }) }))).toBe(
      true,
    );
    expect(
      invalid(() => base.parallel({ x: (b) => b, y: (b) => b.step('a', { run: () => null }) })),
    ).toBe(true);
    expect(invalid(() => base.waitFor('bad type!'))).toBe(true);
    expect(invalid(() => base.sleep({ until: 'not a date' }))).toBe(true);
    expect(
      (refusal(() => base.step('a', { run: () => null, timeout: '30 s' as never })) as Error)
        .message,
    ).toMatch(/step a: timeout must be/);
  });

  it('normalizes retry and timeout options', () => {
    const saga = defineSaga('norm', { version: 1 }).step('a', {
      run: () => null,
      retry: { attempts: 5, initialInterval: '2s', backoffCoefficient: 3, maximumInterval: '1s' },
      timeout: '30s',
    });
    expect(saga.nodes[0]).toMatchObject({
      retry: { attempts: 5, initialMs: 2000, coefficient: 3, maximumMs: 2000 },
      attemptTimeoutMs: 30_000,
      stepTimeoutMs: null,
    });
  });

  it('renames steps in stored events, the starts a success carries included', () => {
    const migrate = renameSteps({ createPatientRecord: 'registerPatient' });
    expect(
      migrate({
        type: 'StepSucceeded',
        data: {
          step: 'createPatientRecord',
          next: [{ step: 'verify' }, { step: 'createPatientRecord' }],
        },
      }),
    ).toEqual({
      type: 'StepSucceeded',
      data: { step: 'registerPatient', next: [{ step: 'verify' }, { step: 'registerPatient' }] },
    });
    expect(migrate({ type: 'ConditionEvaluated', data: { node: 'x', value: true } })!.data).toEqual(
      {
        node: 'x',
        value: true,
      },
    );
  });
});
