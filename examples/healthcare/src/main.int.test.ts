/** The README's promise: `pnpm --filter @evident/example-healthcare start` runs and says this. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../', import.meta.url));

it('bills the three visits on PGlite and prints what the billing office received', async () => {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '--conditions=@evident/source', 'src/main.ts'],
    { cwd: root, env: { ...process.env, DATABASE_URL: '' } },
  );
  expect(stdout).toContain('visit v-1001: saga completed, claim "posted"');
  expect(stdout).toContain('visit v-1002: saga compensated, claim "onHold"');
  expect(stdout).toContain('visit v-1003: saga compensated, claim "never drafted"');
  expect(stdout).toContain('StepFailed verifyEligibility (PayerUnavailable)');
  expect(stdout).toContain('segregation of duties: kept (submitted by u-17, posted by u-42)');
  expect(stdout).toContain('claim-v-1002: HOLD → "onHold"');
});
