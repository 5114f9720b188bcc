import { defineConfig } from 'tsup';

export default defineConfig({
  entry: [
    'src/index.ts',
    'src/kms.ts',
    'src/testing.ts',
    'src/archive/index.ts',
    'src/archive/cli.ts',
  ],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // ESM-only dependencies: bundled so the CommonJS build works on every Node 20.
  noExternal: ['p-retry', 'hyparquet', 'hyparquet-writer'],
  // import.meta.url locates the shipped sql/ folder in the CommonJS build too.
  shims: true,
});
