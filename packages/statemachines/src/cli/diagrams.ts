#!/usr/bin/env node
/**
 * evident-diagrams: write Mermaid, SVG and Markdown diagrams of every XState machine exported by
 * the given modules.
 *
 *   evident-diagrams --out docs/diagrams dist/machines/claim.js dist/machines/plan.js
 *   npx tsx node_modules/.bin/evident-diagrams --out docs/diagrams src/machines/*.ts
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { AnyStateMachine } from 'xstate';
import { writeDiagrams } from '../svg.js';

function isStateMachine(value: unknown): value is AnyStateMachine {
  const v = value as Record<string, unknown> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.transition === 'function' &&
    typeof v.getInitialSnapshot === 'function' &&
    typeof v.root === 'object' &&
    typeof v.id === 'string'
  );
}

const usage =
  'usage: evident-diagrams --out <directory> [--format markdown,mermaid,dot,svg] <module>...';

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      out: { type: 'string' },
      format: { type: 'string' },
      help: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  if (values.help || !values.out || positionals.length === 0) {
    console.error(usage);
    return values.help ? 0 : 2;
  }
  const machines: AnyStateMachine[] = [];
  for (const file of positionals) {
    const exports = (await import(pathToFileURL(resolve(file)).href)) as Record<string, unknown>;
    for (const value of Object.values(exports)) {
      if (isStateMachine(value) && !machines.includes(value)) machines.push(value);
    }
  }
  if (machines.length === 0) {
    console.error(`no XState machine is exported by ${positionals.join(', ')}`);
    return 1;
  }
  const formats = values.format?.split(',') as
    | ('markdown' | 'mermaid' | 'dot' | 'svg')[]
    | undefined;
  const written = await writeDiagrams(machines, {
    directory: resolve(values.out),
    ...(formats ? { formats } : {}),
  });
  for (const path of written) process.stdout.write(`${path}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
