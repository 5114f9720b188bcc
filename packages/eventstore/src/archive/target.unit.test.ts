import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createProgressBar } from './progress.js';
import { createS3Target } from './s3Target.js';
import { checkPath, createDirectoryTarget } from './target.js';

describe('archive targets', () => {
  it('refuses paths that could leave the target, as a manifest edited by an attacker might hold', () => {
    for (const path of [
      '../etc/passwd',
      '/etc/passwd',
      'a//b',
      'type=A/../../x',
      '.hidden',
      '',
      'a\\b',
    ]) {
      expect(() => checkPath(path)).toThrow(expect.objectContaining({ code: 'ARCHIVE_CORRUPT' }));
    }
    expect(checkPath('type=claim%3Asubmitted/date=2026-11-28/part-0-0.parquet')).toBeTruthy();
  });

  it('names a directory target by its file URL and an S3 target by bucket and prefix', () => {
    expect(createDirectoryTarget('/srv/archive').id).toBe('file:///srv/archive');
    expect(createDirectoryTarget('/srv/archive', { id: 'prod' }).id).toBe('prod');
    const client = new S3Client({ region: 'us-east-1' });
    expect(createS3Target({ client, bucket: 'evident-archive', prefix: 'prod/' }).id).toBe(
      's3://evident-archive/prod/',
    );
    expect(() => createS3Target({ client, bucket: 'Bad_Bucket' })).toThrow(/bucket/);
    expect(() => createS3Target({ client, bucket: 'evident-archive', prefix: 'prod' })).toThrow(
      /prefix/,
    );
    expect(() => createS3Target({ client, bucket: 'evident-archive', prefix: '../x/' })).toThrow(
      /prefix/,
    );
    client.destroy();
  });
});

describe('the progress bar', () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return {
      isTTY,
      write: (s: string) => chunks.push(s) > 0,
      chunks,
    } as unknown as NodeJS.WritableStream & {
      isTTY: boolean;
      chunks: string[];
    };
  };

  it('redraws in place on a terminal and leaves the final state above the summary', () => {
    const out = sink(true);
    const bar = createProgressBar(out, { intervalMs: 0 });
    bar.update(5, 10, 'archive');
    bar.update(10, 10, 'archive');
    bar.update(12, null, 'live store');
    bar.finish('replayed 12 events');
    const text = out.chunks.join('');
    expect(text).toContain('\r\x1b[2K[###############---------------]  50% 5/10 events (archive)');
    expect(text).toMatch(/12 events \(live store\) [\d,]+\/s\nreplayed 12 events\n$/);
  });

  it('prints only the summary where nobody watches, unless asked', () => {
    const quiet = sink(false);
    const bar = createProgressBar(quiet);
    bar.update(1, 2, 'archive');
    bar.finish('done');
    expect(quiet.chunks).toEqual(['done\n']);
  });
});
