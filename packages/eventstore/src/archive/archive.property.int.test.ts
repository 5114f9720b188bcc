import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { events, postgresFactory, settled, stream } from '../../test/fixtures.js';
import type { Checkpoint } from '../checkpoint.js';
import type { RecordedEvent } from '../recordedEvent.js';
import { archive } from './archive.js';
import { insertOld, readWholeLog } from './archiveFixtures.js';
import { readManifests } from './manifest.js';
import { replay } from './replay.js';
import { createDirectoryTarget } from './target.js';

const day = 86_400_000;
const origin = Date.now() - 4000 * day;

type Step =
  | {
      readonly kind: 'old';
      readonly days: number;
      readonly count: number;
      readonly denied: boolean;
    }
  | { readonly kind: 'live'; readonly count: number }
  | { readonly kind: 'archive'; readonly cutoffDays: number; readonly batchSize: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('old' as const),
    days: fc.integer({ min: 0, max: 20 }),
    count: fc.integer({ min: 1, max: 4 }),
    denied: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('live' as const), count: fc.integer({ min: 1, max: 3 }) }),
  fc.record({
    kind: fc.constant('archive' as const),
    cutoffDays: fc.integer({ min: 0, max: 25 }),
    batchSize: fc.integer({ min: 1, max: 7 }),
  }),
);

/**
 * Whatever the order of old imports, live appends and archive runs with any cut-offs: the archive
 * is a prefix of the log without duplicates, and replaying any window from archive and store is
 * readAll of that window.
 */
describe.skipIf(!postgresUrl)('archive runs against any history (property, PostgreSQL)', () => {
  it('keeps the archive a prefix of the log and replay equal to readAll', async () => {
    const factory = postgresFactory(postgresUrl!);
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 1, max: 30 }),
        async (steps, fromDays, spanDays) => {
          const { store, cleanup } = await factory();
          const directory = await mkdtemp(join(tmpdir(), 'evident-prop-'));
          const target = createDirectoryTarget(directory);
          try {
            let last: Checkpoint | null = null;
            for (const s of steps) {
              if (s.kind === 'old') {
                last = await insertOld(store, {
                  stream: stream(),
                  count: s.count,
                  type: s.denied ? 'ClaimDenied' : 'ClaimSubmitted',
                  recordedAt: new Date(origin + s.days * day),
                });
              } else if (s.kind === 'live') {
                last = (
                  await store.append(stream(), events(s.count), { expectedVersion: 'no_stream' })
                ).checkpoint;
              } else {
                await settled(store, last);
                await archive({
                  store,
                  target,
                  olderThan: new Date(origin + s.cutoffDays * day),
                  batchSize: s.batchSize,
                });
              }
            }
            await settled(store, last);
            const log = await readWholeLog(store);

            const manifests = await readManifests(target);
            const archived: RecordedEvent[] = [];
            await replay({ archive: target, into: (e) => void archived.push(e) });
            expect(archived).toEqual(log.slice(0, archived.length));
            expect(archived.at(-1)?.checkpoint ?? null).toBe(
              manifests.at(-1)?.manifest.throughCheckpoint ?? null,
            );

            for (const { manifest } of manifests) {
              for (const f of manifest.files)
                expect(f.maxRecordedAt < manifest.olderThan).toBe(true);
            }

            const from = new Date(origin + fromDays * day);
            const to = new Date(from.getTime() + spanDays * day);
            const seen: RecordedEvent[] = [];
            await replay({ store, archive: target, from, to, into: (e) => void seen.push(e) });
            expect(seen).toEqual(
              log.filter((e) => {
                const at = Date.parse(e.recordedAt);
                return at >= from.getTime() && at < to.getTime();
              }),
            );
          } finally {
            await cleanup();
            await rm(directory, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
