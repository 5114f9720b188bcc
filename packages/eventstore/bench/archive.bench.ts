/**
 * Archive benchmark against PostgreSQL: archiving to Parquet and replaying from the archive (and
 * from archive plus store), each beside plain readAll over the same events in the same run.
 *
 *   pnpm --filter @evident/eventstore bench      (BENCH_ARCHIVE_EVENTS to change the count)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report } from '@evident/devkit/bench';
import { dropSchema } from '@evident/devkit/postgres';
import { createEnvelope } from '@evident/envelope';
import { createEventStore, startOfLog } from '@evident/eventstore';
import { archive, createDirectoryTarget, replay } from '@evident/eventstore/archive';
import pg from 'pg';

const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/evident_test';
const total = Number(process.env.BENCH_ARCHIVE_EVENTS ?? 50_000);
const schema = `bench_archive_${process.pid}`;
const types = ['ClaimSubmitted', 'ClaimAcknowledged', 'ClaimAdjudicated', 'PaymentPosted'];

const pool = new pg.Pool({ connectionString: url, max: 8 });
const store = createEventStore({ pool, schema });
const directory = await mkdtemp(join(tmpdir(), 'evident-archive-bench-'));
try {
  await store.migrate();
  for (let i = 0; i < total / 500; i++) {
    const batch = Array.from({ length: 500 }, (_, k) =>
      createEnvelope({
        type: types[k % types.length]!,
        data: {
          payer: `payer-${k % 20}`,
          lines: [
            { code: 'D1110', fee: 110 + (k % 7) },
            { code: 'D0120', fee: 65 },
          ],
          status: 'pending',
        },
        source: 'billing-service',
        actor: { id: 'u-17', role: 'billing-clerk' },
      }),
    );
    await store.append({ type: 'claim', id: `c-${i}` }, batch, { expectedVersion: 'no_stream' });
  }
  // Let the appends settle below the log's horizon before timing anything.
  await new Promise((r) => setTimeout(r, 200));

  let t = performance.now();
  let read = 0;
  let after = startOfLog;
  for (;;) {
    const page = await store.readAll({ after, limit: 1000 });
    read += page.events.length;
    after = page.checkpoint;
    if (page.caughtUp) break;
  }
  const readAllRate = read / ((performance.now() - t) / 1000);
  const ceiling = { ceiling: readAllRate, ceilingName: 'readAll over the same events, no handler' };

  const target = createDirectoryTarget(directory);
  t = performance.now();
  const archived = await archive({ store, target, olderThan: new Date(Date.now() + 60_000) });
  const archiveRate = archived.events / ((performance.now() - t) / 1000);
  const bytes = archived.files.reduce((n, f) => n + f.bytes, 0);
  report({
    bench: 'eventstore.archive.write',
    value: archiveRate,
    unit: 'events/s',
    ...ceiling,
    events: archived.events,
    files: archived.files.length,
    bytesPerEvent: Math.round(bytes / archived.events),
  });

  let replayed = 0;
  t = performance.now();
  await replay({ archive: target, into: () => void replayed++ });
  report({
    bench: 'eventstore.archive.replay',
    value: replayed / ((performance.now() - t) / 1000),
    unit: 'events/s',
    ...ceiling,
    events: replayed,
    source: 'archive only',
  });

  replayed = 0;
  t = performance.now();
  await replay({ store, into: () => void replayed++ });
  report({
    bench: 'eventstore.archive.replay.store',
    value: replayed / ((performance.now() - t) / 1000),
    unit: 'events/s',
    ...ceiling,
    events: replayed,
    source: 'live store only',
  });
} finally {
  await store.close();
  await pool.end();
  await rm(directory, { recursive: true, force: true });
  await dropSchema(url, schema);
}
