import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgliteFactory, type StoreFixture, stream } from '../../test/fixtures.js';
import type { RecordedEvent } from '../recordedEvent.js';
import { archive } from './archive.js';
import { insertOld, readWholeLog, yearsAgo } from './archiveFixtures.js';
import { createDirectoryTarget } from './target.js';

const run = promisify(execFile);
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
const cli = (args: string[]) =>
  run(
    process.execPath,
    ['--import', 'tsx', '--conditions=@evident/source', 'src/archive/cli.ts', ...args],
    { cwd: packageRoot, env: { ...process.env, DATABASE_URL: '' } },
  );

describe('the evident-replay command', () => {
  let fixture: StoreFixture;
  let directory: string;
  let log: RecordedEvent[];

  beforeAll(async () => {
    fixture = await pgliteFactory()();
    const { store } = fixture;
    directory = await mkdtemp(join(tmpdir(), 'evident-cli-'));
    await insertOld(fixture.store, { stream: stream(), count: 3, recordedAt: yearsAgo(3) });
    await insertOld(store, {
      stream: stream(),
      type: 'ClaimDenied',
      count: 2,
      recordedAt: yearsAgo(2),
    });
    await archive({ store, target: createDirectoryTarget(directory), olderThan: yearsAgo(1) });
    log = await readWholeLog(store);
  });
  afterAll(async () => {
    await fixture?.cleanup();
    await rm(directory, { recursive: true, force: true });
  });

  it('writes the replayed window as JSON lines, with progress and a summary on stderr', async () => {
    const { stdout, stderr } = await cli([
      '--archive',
      directory,
      '--from',
      yearsAgo(2.5).toISOString(),
      '--progress',
    ]);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual(log.filter((e) => e.type === 'ClaimDenied'));
    expect(stderr).toMatch(/\[#+-*\]\s+\d+% \d+\/2 events \(archive\)/);
    expect(stderr).toMatch(/replayed 2 events \(2 from the archive, 0 from the store\)/);
  });

  it('passes each event to the default export of --into', async () => {
    const module = join(directory, 'handler.mjs');
    const out = join(directory, 'types.txt');
    await writeFile(
      module,
      `import { appendFileSync } from 'node:fs';\nexport default (e) => appendFileSync(${JSON.stringify(out)}, e.type + '\\n');\n`,
    );
    await cli(['--archive', directory, '--types', 'ClaimSubmitted', '--into', module]);
    expect((await readFile(out, 'utf8')).trim().split('\n')).toEqual(
      Array(3).fill('ClaimSubmitted'),
    );
  });

  it('says what it needs when given neither an archive nor a database', async () => {
    await expect(cli([])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('give --archive, --database-url, or both'),
    });
  });
});
