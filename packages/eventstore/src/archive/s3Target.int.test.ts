import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { type FauxqsServer, startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrl } from '#test-env';
import { postgresFactory, type StoreFixture, settled, stream } from '../../test/fixtures.js';
import type { RecordedEvent } from '../recordedEvent.js';
import { archive } from './archive.js';
import { insertOld, readWholeLog, yearsAgo } from './archiveFixtures.js';
import { replay } from './replay.js';
import { createS3Target } from './s3Target.js';
import { verifyArchive } from './verify.js';

/** The S3 target against fauxqs, an S3 emulator running in this process. */
describe.skipIf(!postgresUrl)('archive to S3 (fauxqs) from PostgreSQL', () => {
  let server: FauxqsServer;
  let client: S3Client;
  let fixture: StoreFixture;
  const bucket = 'evident-archive';

  beforeAll(async () => {
    server = await startFauxqs({ port: 0, host: 'localhost', logger: false });
    client = new S3Client({
      endpoint: `http://127.0.0.1:${server.port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      forcePathStyle: true,
    });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    fixture = await postgresFactory(postgresUrl!)();
  });
  afterAll(async () => {
    await fixture?.cleanup();
    client?.destroy();
    await server?.stop();
  });

  it('writes runs under a prefix, continues them, verifies them and replays them', async () => {
    const { store } = fixture;
    const target = createS3Target({ client, bucket, prefix: 'prod/events/' });
    expect(target.id).toBe('s3://evident-archive/prod/events/');
    await insertOld(store, { stream: stream(), count: 3, recordedAt: yearsAgo(3) });
    const first = await archive({ store, target, olderThan: yearsAgo(1) });
    const last = await insertOld(store, {
      stream: stream(),
      type: 'ClaimDenied',
      count: 2,
      recordedAt: yearsAgo(2),
    });
    await settled(store, last);
    const second = await archive({ store, target, olderThan: yearsAgo(1) });
    expect([first.run, first.events, second.run, second.events]).toEqual([0, 3, 1, 2]);

    const object = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: `prod/events/${second.files[0]!.path}` }),
    );
    expect((await object.Body!.transformToByteArray()).subarray(0, 4)).toEqual(
      new TextEncoder().encode('PAR1'),
    );
    expect((await target.list('_manifests/')).sort()).toEqual([
      '_manifests/run-00000000.json',
      '_manifests/run-00000001.json',
    ]);

    expect(await verifyArchive({ target, store })).toMatchObject({
      ok: true,
      runs: 2,
      events: 5,
      verifiedRuns: [0, 1],
    });
    const seen: RecordedEvent[] = [];
    await replay({ store, archive: target, into: (e) => void seen.push(e) });
    expect(seen).toEqual(await readWholeLog(store));

    // An object replaced behind the archive's back.
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `prod/events/${first.files[0]!.path}`,
        Body: 'x',
      }),
    );
    expect((await verifyArchive({ target, store })).problems).toEqual([
      { kind: 'checksum_mismatch', run: 0, path: first.files[0]!.path },
    ]);
  });

  it('reads a missing object as absent', async () => {
    const target = createS3Target({ client, bucket, prefix: 'empty/' });
    expect(await target.get('_manifests/run-00000000.json')).toBeNull();
    expect(await target.list('_manifests/')).toEqual([]);
  });
});
