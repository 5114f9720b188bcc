import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// One config, three tiers chosen by file name (see CONTRIBUTING.md):
//   *.unit.test.ts  no I/O, runs anywhere
//   *.int.test.ts   real PostgreSQL, RabbitMQ, SQS emulator
//   *.e2e.test.ts   whole app, built packages, real browser
// Workspace packages resolve to their TypeScript sources through the
// "@evident/source" export condition, so tests never need a build first.
const shared = {
  resolve: {
    conditions: ['@evident/source'],
    alias: { '#test-env': fileURLToPath(new URL('./test/env.ts', import.meta.url)) },
  },
  // Tests run in Vite's SSR environment, which does not read `resolve.conditions`: without this,
  // workspace packages resolve to their dist/ builds (stale, or missing before `pnpm build`).
  // The rest are Vite's own server defaults minus 'module', which sends the AWS SDK to its
  // bundler-only ESM build that Node cannot load.
  ssr: { resolve: { conditions: ['@evident/source', 'node', 'development|production'] } },
};
const roots = ['packages', 'examples', 'docs'];
const tier = (name: string) => roots.flatMap((r) => [`${r}/**/*.${name}.test.ts`]);
const exclude = ['**/node_modules/**', '**/dist/**'];
// Tests that stop or restart a shared server (RabbitMQ, PostgreSQL), or hold a transaction open
// for seconds (which holds back every log reader of the cluster), would disturb the suites running
// beside them. They live in their own project, run one file at a time, after the rest.
const serial = roots.flatMap((r) => [
  `${r}/**/*.restart.int.test.ts`,
  `${r}/**/*.serial.int.test.ts`,
]);

export default defineConfig({
  test: {
    projects: [
      { ...shared, test: { name: 'unit', include: tier('unit'), exclude } },
      {
        ...shared,
        test: {
          name: 'int',
          include: tier('int'),
          exclude: [...exclude, ...serial],
          globalSetup: ['./test/globalSetup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        ...shared,
        test: {
          name: 'serial',
          include: serial,
          exclude,
          globalSetup: ['./test/globalSetup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        ...shared,
        test: {
          name: 'e2e',
          include: tier('e2e'),
          exclude,
          globalSetup: ['./test/globalSetup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
