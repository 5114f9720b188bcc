import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', testing: 'src/testing.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // p-retry is ESM-only: bundled so the CommonJS build works on every Node 20.
  noExternal: ['p-retry'],
  // import.meta.url locates the shipped sql/ folder in the CommonJS build too.
  shims: true,
});
