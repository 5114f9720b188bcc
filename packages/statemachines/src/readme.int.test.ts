/** The README's usage is the quickstart example, verbatim, and it runs. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { quickstart } from '../examples/quickstart.js';
import { pgliteFactory, type StoreFixture } from '../test/fixtures.js';

const read = (path: string) => readFile(fileURLToPath(new URL(path, import.meta.url)), 'utf8');

describe('README', () => {
  let fixture: StoreFixture;
  beforeAll(async () => {
    fixture = await pgliteFactory()();
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });

  it('shows the quickstart example verbatim', async () => {
    const [readme, example] = await Promise.all([
      read('../README.md'),
      read('../examples/quickstart.ts'),
    ]);
    const imports = example.match(/import \{\n[^}]+\} from '@evident\/statemachines';\n/)![0];
    const region = example
      .match(/\/\/ #region usage\n([\s\S]*?)\n\s*\/\/ #endregion usage/)![1]!
      .split('\n')
      .map((line) => line.replace(/^ {2}/, ''))
      .join('\n');
    expect(readme).toContain(imports);
    expect(readme).toContain(region);
  });

  it('runs, and finds the state at the time of a past step', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const { submitted, then } = await quickstart(fixture.store);
      expect(log).toHaveBeenCalledWith('notify', 'document/doc-1/2/0');
      expect(submitted).toMatchObject({ kind: 'transitioned', event: { type: 'SUBMIT' } });
      expect(then!.state.value).toEqual({ inReview: { legal: 'pending', editorial: 'pending' } });
    } finally {
      log.mockRestore();
    }
  });
});
