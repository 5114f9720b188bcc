import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { archiveExample } from '../../examples/archive.js';

const read = (path: string) => readFile(fileURLToPath(new URL(path, import.meta.url)), 'utf8');

describe('docs/archive.md', () => {
  it('shows the example verbatim', async () => {
    const [doc, example] = await Promise.all([
      read('../../../../docs/archive.md'),
      read('../../examples/archive.ts'),
    ]);
    const imports = example.match(/import \{[^}]+\} from '@evident\/eventstore\/archive';\n/)![0];
    const region = example
      .match(/\/\/ #region example\n([\s\S]*?)\n\s*\/\/ #endregion example/)![1]!
      .split('\n')
      .map((line) => line.replace(/^ {2}/, ''))
      .join('\n');
    expect(doc).toContain(imports);
    expect(doc).toContain(region);
  });

  it('runs: archives, verifies and replays', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const directory = await mkdtemp(join(tmpdir(), 'evident-docs-'));
    try {
      const { store, run, ok, types } = await archiveExample(directory);
      await store.database.pglite?.close();
      expect(run.files).toHaveLength(1);
      expect(log).toHaveBeenCalledWith([expect.stringMatching(/^type=ClaimSubmitted\/date=/)]);
      expect(ok).toBe(true);
      expect([...types]).toEqual([['ClaimSubmitted', 1]]);
    } finally {
      log.mockRestore();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
