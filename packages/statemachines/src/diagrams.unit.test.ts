import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { documentReview } from '../examples/documentReview.js';
import { stateNames } from './diagrams.js';
import { toDot, toMermaid } from './index.js';
import { diagramName, toSvg } from './svg.js';

// Mermaid's parser runs headless once it has a DOM to sanitize labels with.
let mermaid: { parse(text: string): Promise<unknown> };
let closeWindow: () => Promise<void>;
beforeAll(async () => {
  const { Window } = await import('happy-dom');
  const window = new Window();
  Object.assign(globalThis, { window, document: window.document });
  mermaid = (await import('mermaid')).default;
  closeWindow = () => window.happyDOM.close();
});
afterAll(async () => {
  await closeWindow?.();
});

const docs = (file: string) =>
  readFile(fileURLToPath(new URL(`../docs/diagrams/${file}`, import.meta.url)), 'utf8');

/** A machine with what diagrams must show: nesting, history-free regions, always, a root event. */
const kitchenSink = setup({
  types: { events: {} as { type: 'GO' } | { type: 'RESET' } | { type: 'PING' } },
  guards: { ready: () => true, allowed: () => true },
  actions: { log: () => {}, track: assign({}) },
}).createMachine({
  id: 'kitchen.sink',
  initial: 'idle',
  on: { RESET: '.idle' },
  states: {
    idle: { on: { GO: { target: 'working', guard: 'ready', actions: ['log', 'track'] } } },
    working: {
      initial: 'step1',
      exit: 'log',
      states: {
        step1: { always: { target: 'step2', guard: 'allowed' } },
        step2: { after: { 1500: 'step3' }, on: { PING: { actions: 'log' } } },
        step3: { type: 'final' },
      },
      onDone: 'done',
    },
    done: { type: 'final' },
  },
});

describe('toMermaid', () => {
  it('writes a state diagram that Mermaid parses', async () => {
    for (const machine of [documentReview, kitchenSink]) {
      await expect(mermaid.parse(toMermaid(machine))).resolves.toMatchObject({
        diagramType: 'stateDiagram',
      });
    }
  });

  it('shows parallel regions, guards with params, actions and delayed transitions', () => {
    const text = toMermaid(documentReview);
    // The two regions of inReview, separated as Mermaid draws concurrency.
    expect(text).toMatch(
      /state inReview \{[\s\S]*state inReview_legal \{[\s\S]*--[\s\S]*state inReview_editorial \{/,
    );
    expect(text).toContain('draft --> inReview : SUBMIT [hasPages]');
    expect(text).toContain('approved --> published : PUBLISH [hasRole(role=publisher)]');
    expect(text).toContain('changesRequested --> draft : REVISE [canRevise] / bumpRevision');
    expect(text).toContain(
      'inReview --> expired : after reviewDeadline / notifyAuthor(reason=deadline)',
    );
    expect(text).toContain('note right of inReview : entry / notifyReviewers');
    expect(text).toContain('published : entry / publishDocument');
    expect(text).toContain('published --> [*]');
  });

  it('labels eventless, delayed in milliseconds, done and targetless transitions', () => {
    const text = toMermaid(kitchenSink);
    expect(text).toContain('working_step1 --> working_step2 : always [allowed]');
    expect(text).toContain('working_step2 --> working_step3 : after 1500ms');
    expect(text).toContain('working --> done : done');
    expect(text).toContain('working_step2 --> working_step2 : PING / log');
    expect(text).toContain('idle --> working : GO [ready] / log, track');
    expect(text).toContain('[*] --> idle : RESET');
  });

  it('is the diagram checked in the docs, so the docs change exactly when the machine does', async () => {
    expect(await docs('documentReview.mmd')).toBe(toMermaid(documentReview));
    expect(await docs('documentReview.md')).toContain(toMermaid(documentReview));
  });
});

describe('toDot and toSvg', () => {
  it('renders an SVG that names every state', async () => {
    for (const machine of [documentReview, kitchenSink]) {
      const svg = await toSvg(machine);
      expect(svg.startsWith('<?xml') || svg.startsWith('<svg')).toBe(true);
      for (const name of stateNames(machine)) expect(svg).toContain(`>${name}</text>`);
    }
  });

  it('draws compound states and regions as clusters, parallel ones marked', () => {
    const dot = toDot(documentReview);
    expect(dot).toContain('subgraph cluster_inReview {');
    expect(dot).toContain('label="inReview\\nentry / notifyReviewers\\n(parallel)"');
    expect(dot).toContain('subgraph cluster_inReview_legal {');
    expect(dot).toContain('inReview_legal_approved [label="approved", peripheries=2];');
    expect(dot).toContain('approved -> published [label="PUBLISH [hasRole(role=publisher)]"];');
    expect(dot).toContain(
      'draft -> inReview__anchor [label="SUBMIT [hasPages]", lhead=cluster_inReview];',
    );
  });

  it('is the SVG checked in the docs', async () => {
    expect(await docs(`${diagramName(documentReview)}.svg`)).toBe(await toSvg(documentReview));
  });

  it('escapes quotes and backslashes in DOT labels', () => {
    const odd = setup({}).createMachine({ id: 'q"m', initial: 'a"b', states: { 'a"b': {} } });
    expect(toDot(odd)).toContain('label="a\\"b"');
  });
});
