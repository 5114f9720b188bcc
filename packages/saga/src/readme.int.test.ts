/**
 * The README's code is code that runs: its usage block is the quickstart example's package import
 * and region, verbatim, and its other blocks are slices of the onboarding saga the quickstart runs.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPractice, quickstart } from '../examples/quickstart.js';
import { pgliteFactory, type StoreFixture } from '../test/fixtures.js';

const read = (path: string) => readFile(fileURLToPath(new URL(path, import.meta.url)), 'utf8');
const blocks = (markdown: string) =>
  [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
/** Lines without their indentation: a block shown at the left margin matches nested code. */
const flat = (code: string) =>
  code
    .split('\n')
    .map((line) => line.trim())
    .join('\n');

describe('README', () => {
  let fixture: StoreFixture;
  beforeAll(async () => {
    fixture = await pgliteFactory()();
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });

  it('shows the quickstart example verbatim, and only code from the examples', async () => {
    const [readme, example, onboarding] = await Promise.all([
      read('../README.md'),
      read('../examples/quickstart.ts'),
      read('../examples/onboarding.ts'),
    ]);
    const imports = example.match(/import \{[^}]+\} from '@evident\/saga';\n/)![0];
    const region = example
      .match(/\/\/ #region usage\n([\s\S]*?)\n\s*\/\/ #endregion usage/)![1]!
      .split('\n')
      .map((line) => line.replace(/^ {2}/, ''))
      .join('\n');
    const [usage, ...rest] = blocks(readme);
    expect(usage).toBe(`${imports}\n${region}\n`);
    expect(rest.length).toBeGreaterThan(0);
    for (const block of rest) expect(flat(onboarding)).toContain(flat(block).trim());
  });

  it('runs: the booking fails, and the saga compensates by moving participants to holding states', async () => {
    const practice = createPractice();
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const instance = await quickstart(fixture.store, practice.services);
      expect(instance).toMatchObject({ id: 'onboarding-p-81', status: 'compensated' });
      const lines = log.mock.calls.map((c) => String(c[0]));
      expect(lines).toContain(
        'StepFailed scheduleInitialConsultation (attempt 1): PlanNotContracted PLAN_NOT_CONTRACTED',
      );
      expect(lines).toContain(
        'CompensationStarted assignCareCoordinator (attempt 1) → markPendingInsuranceResolution',
      );
      expect(lines.at(-1)).toBe('SagaCompensated');
    } finally {
      log.mockRestore();
    }
    expect(Object.fromEntries(practice.states)).toEqual({
      'record-p-81': 'Holding',
      'account-p-81': 'OnHold',
      'assignment-p-81': 'PendingInsuranceResolution',
    });
  });
});
