import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing.ts',
    svg: 'src/svg.ts',
    'cli/diagrams': 'src/cli/diagrams.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // import.meta.url locates the shipped sql/ folder in the CommonJS build too.
  shims: true,
});
