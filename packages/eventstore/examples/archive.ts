// biome-ignore-all lint/suspicious/noConsole: an example shows what it prints.
/**
 * The example of docs/archive.md, verbatim between the region markers (a test checks it and runs
 * it): archive a store, verify the archive, replay a window from archive and store.
 */
import { PGlite } from '@electric-sql/pglite';
import { createEnvelope } from '@evident/envelope';
import { createEventStore } from '@evident/eventstore';
import { archive, createDirectoryTarget, replay, verifyArchive } from '@evident/eventstore/archive';

export async function archiveExample(directory: string) {
  // #region example
  const store = createEventStore({ pglite: new PGlite() }); // or { connectionString }
  await store.migrate();
  const claim = { type: 'claim', id: 'c-123' };
  const submitted = createEnvelope({
    type: 'ClaimSubmitted',
    data: { payerId: 'delta-dental', lines: [{ code: 'D1110', fee: 110 }] },
    source: 'billing-service',
    actor: { id: 'u-17', role: 'billing-clerk' },
  });
  await store.append(claim, [submitted], { expectedVersion: 'no_stream' });

  // Archive everything recorded before now (in production: e.g. before 90 days ago).
  const target = createDirectoryTarget(directory);
  const run = await archive({ store, target, olderThan: new Date() });
  console.log(run.files.map((f) => f.path)); // ['type=ClaimSubmitted/date=…/part-0-0.parquet']

  // Checksums, manifests and every row against the store; marks the run verified.
  const { ok } = await verifyArchive({ target, store });

  // Any window, in log order: the archive first, then the live store after it.
  const types = new Map<string, number>();
  await replay({
    store,
    archive: target,
    from: new Date(Date.now() - 24 * 3600 * 1000),
    into: (event) => void types.set(event.type, (types.get(event.type) ?? 0) + 1),
  });
  // #endregion example
  return { store, run, ok, types };
}
