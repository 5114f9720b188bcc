import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The package as a user gets it: built, packed, installed with npm into a project of its own,
// and loaded by plain Node both as ESM and as CommonJS.

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = join(packageDir, '..', '..');
let project: string;

function run(command: string, args: readonly string[], cwd: string): string {
  try {
    return execFileSync(command, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

const script = (lines: readonly string[]) => lines.join('\n');

// Both scripts print the same facts, so ESM and CJS can be compared line for line.
const body = [
  "const claim = createEnvelope({ type: 'ClaimSubmitted', data: { claimId: 'CLM-000123' },",
  "  source: 'billing-service', actor: { id: 'staff-17', role: 'billing-clerk' } });",
  'const registry = createSchemaRegistry().register("ClaimSubmitted", { version: 1,',
  "  schema: { type: 'object', properties: { claimId: { type: 'string', maxLength: 10 } } } });",
  'registry.validate(claim);',
  'let refused = "no";',
  "try { registry.validate({ ...claim, data: { claimId: 'CLM-0001234567' } }); }",
  "catch (error) { refused = isEvidentError(error, 'SCHEMA_VALIDATION_FAILED') ? error.code : String(error); }",
  'console.log(JSON.stringify({ type: claim.type, version: claim.schemaVersion,',
  '  sameWorkflow: claim.correlationId === claim.id, refused,',
  '  roundTrip: deserialize(serialize(claim)).id === claim.id }));',
];

beforeAll(() => {
  if (!existsSync(join(packageDir, 'dist', 'index.js'))) run('pnpm', ['build'], packageDir);
  project = mkdtempSync(join(tmpdir(), 'evident-envelope-dist-'));
  const tarball = join(project, 'evident-envelope.tgz');
  run('pnpm', ['pack', '--out', tarball], packageDir);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'scratch', private: true, version: '0.0.0' }),
  );
  run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball],
    project,
  );
  const names = 'createEnvelope, createSchemaRegistry, deserialize, isEvidentError, serialize';
  writeFileSync(
    join(project, 'esm.mjs'),
    script([`import { ${names} } from '@evident/envelope';`, ...body]),
  );
  writeFileSync(
    join(project, 'cjs.cjs'),
    script([`const { ${names} } = require('@evident/envelope');`, ...body]),
  );
}, 180_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

const expected = {
  type: 'ClaimSubmitted',
  version: 1,
  sameWorkflow: true,
  refused: 'SCHEMA_VALIDATION_FAILED',
  roundTrip: true,
};

describe('the packed package', () => {
  it('ships dist, the README and package.json, and no sources', () => {
    const installed = join(project, 'node_modules', '@evident', 'envelope');
    expect(existsSync(join(installed, 'src'))).toBe(false);
    expect(existsSync(join(installed, 'README.md'))).toBe(true);
    for (const file of ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts']) {
      expect(existsSync(join(installed, 'dist', file)), file).toBe(true);
    }
  });

  it('loads with import from an ES module', () => {
    expect(JSON.parse(run('node', ['esm.mjs'], project))).toEqual(expected);
  });

  it('loads with require from a CommonJS module', () => {
    expect(JSON.parse(run('node', ['cjs.cjs'], project))).toEqual(expected);
  });

  it("runs the README's usage block as written", () => {
    const readme = readFileSync(join(packageDir, 'README.md'), 'utf8');
    const block = /<!-- usage[^>]*-->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    // The block is kept free of type annotations so plain Node runs it.
    writeFileSync(join(project, 'readme.mjs'), block ?? '');
    expect(run('node', ['readme.mjs'], project).trim()).toBe("true [ '/patientControlNumber' ]");
  });

  it('declares its types for both formats', () => {
    const installed = join(project, 'node_modules', '@evident', 'envelope');
    for (const file of ['index.d.ts', 'index.d.cts']) {
      const types = readFileSync(join(installed, 'dist', file), 'utf8');
      expect(types).toContain('declare function createEnvelope');
      expect(types).toContain('declare function createSchemaRegistry');
      expect(types).toContain('declare function checkCompatibility');
    }
  });

  it('type-checks a consumer of each format against the shipped declarations', () => {
    const consumer = [
      "import { createEnvelope, type Envelope, type SchemaRegistry } from '@evident/envelope';",
      "const claim: Envelope<'ClaimSubmitted', { claimId: string }> = createEnvelope({",
      "  type: 'ClaimSubmitted', data: { claimId: 'CLM-1' },",
      "  source: 'billing-service', actor: { id: 'staff-17', role: 'billing-clerk' } });",
      'export const check = (registry: SchemaRegistry) => registry.check(claim).ok;',
    ];
    writeFileSync(join(project, 'consumer.mts'), script(consumer));
    writeFileSync(join(project, 'consumer.cts'), script(consumer));
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const options = ['--noEmit', '--strict', '--module', 'nodenext'];
    run('node', [tsc, ...options, 'consumer.mts', 'consumer.cts'], project);
  });
});
