import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { InvalidArgumentError } from '@evident/envelope';
import { type ArchiveTarget, checkPath } from './target.js';

export interface S3TargetOptions {
  /** A configured client of AWS SDK v3 (`@aws-sdk/client-s3`, an optional peer dependency). */
  readonly client: S3Client;
  readonly bucket: string;
  /** Key prefix under which the archive lives. @defaultValue '' (the bucket's root) */
  readonly prefix?: string;
  /** Names the target in `archive_runs`. @defaultValue `s3://<bucket>/<prefix>` */
  readonly id?: string;
}

const isPath = (path: string) => {
  try {
    checkPath(path);
    return true;
  } catch {
    return false;
  }
};

// Loaded on first use, so the archive subpath works without the AWS SDK installed.
let sdk: Promise<typeof import('@aws-sdk/client-s3')> | undefined;
const loadSdk = () => {
  sdk ??= import('@aws-sdk/client-s3');
  return sdk;
};

/**
 * Objects in an S3 bucket (or anything speaking its API). Each upload carries its SHA-256, which
 * S3 checks before it stores the object.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3';
 * const target = createS3Target({ client: new S3Client({}), bucket: 'evident-archive', prefix: 'prod/' });
 * ```
 */
export function createS3Target(options: S3TargetOptions): ArchiveTarget {
  const { client, bucket } = options;
  if (!client || typeof client.send !== 'function') {
    throw new InvalidArgumentError('client must be an S3Client of @aws-sdk/client-s3');
  }
  if (typeof bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new InvalidArgumentError('bucket must be a valid S3 bucket name');
  }
  const prefix = options.prefix ?? '';
  if (prefix !== '' && !(prefix.endsWith('/') && isPath(prefix.slice(0, -1)))) {
    throw new InvalidArgumentError('prefix must be empty or a path ending in "/"');
  }
  return {
    id: options.id ?? `s3://${bucket}/${prefix}`,
    async put(path, body) {
      const { PutObjectCommand } = await loadSdk();
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: prefix + checkPath(path),
          Body: body,
          ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
        }),
      );
    },
    async get(path) {
      const { GetObjectCommand } = await loadSdk();
      try {
        const out = await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: prefix + checkPath(path) }),
        );
        return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      } catch (error) {
        const name = (error as { name?: string }).name;
        if (name === 'NoSuchKey' || name === 'NotFound') return null;
        throw error;
      }
    },
    async list(folder) {
      const { ListObjectsV2Command } = await loadSdk();
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix + folder,
            Delimiter: '/',
            ContinuationToken: token,
          }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key.slice(prefix.length));
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },
  };
}
