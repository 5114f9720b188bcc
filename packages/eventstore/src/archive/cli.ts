#!/usr/bin/env node
/**
 * evident-replay: replay a window of the event log from an archive and/or the live store, as JSON
 * lines on stdout or into a handler module, with a progress bar on stderr.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createEventStore, type EventStore } from '../eventStore.js';
import { createProgressBar } from './progress.js';
import { type ReplayHandler, replay } from './replay.js';
import { createS3Target } from './s3Target.js';
import { type ArchiveTarget, createDirectoryTarget } from './target.js';

const usage = `Usage: evident-replay [options]

Replays events in global log order: first from the archive, then from the live store after the
archive's last checkpoint. Each event is written to stdout as one JSON line, or passed to the
default export of --into.

  --archive <dir|s3://bucket/prefix/>  archive to read (S3 uses the AWS SDK's usual configuration;
                                       AWS_S3_FORCE_PATH_STYLE=true for emulators)
  --database-url <url>                 live store (default: $DATABASE_URL; none: archive only)
  --schema <name>                      store schema (default: evident)
  --tenant <id>                        replay as this tenant only
  --from <ISO 8601>                    first recordedAt, inclusive
  --to <ISO 8601>                      last recordedAt, exclusive
  --types <A,B,...>                    only these event types
  --into <module>                      module whose default export handles each event
  --batch-size <n>                     events per query to the store (default: 1000)
  --progress                           draw progress even when stderr is not a terminal
  --help
`;

function date(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) throw new Error(`--${name} must be an ISO 8601 date`);
  return parsed;
}

async function archiveTarget(location: string): Promise<ArchiveTarget> {
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!s3) return createDirectoryTarget(location);
  const { S3Client } = await import('@aws-sdk/client-s3');
  const prefix = s3[2] ? s3[2].replace(/\/?$/, '/') : '';
  return createS3Target({
    client: new S3Client({ forcePathStyle: process.env.AWS_S3_FORCE_PATH_STYLE === 'true' }),
    bucket: s3[1]!,
    prefix,
  });
}

async function handlerFrom(module: string | undefined): Promise<ReplayHandler> {
  if (module === undefined) {
    return (event) =>
      new Promise<void>((done, fail) => {
        const ok = process.stdout.write(`${JSON.stringify(event)}\n`);
        if (ok) done();
        else process.stdout.once('drain', done).once('error', fail);
      });
  }
  const loaded = (await import(pathToFileURL(resolve(module)).href)) as { default?: unknown };
  if (typeof loaded.default !== 'function') {
    throw new Error('--into must name a module whose default export is a function');
  }
  return loaded.default as ReplayHandler;
}

export async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    // `pnpm run replay -- --archive …` passes the separator through.
    args: argv[0] === '--' ? argv.slice(1) : [...argv],
    options: {
      archive: { type: 'string' },
      'database-url': { type: 'string' },
      schema: { type: 'string' },
      tenant: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      types: { type: 'string' },
      into: { type: 'string' },
      'batch-size': { type: 'string' },
      progress: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const url = values['database-url'] ?? process.env.DATABASE_URL;
  if (!values.archive && !url) {
    process.stderr.write(`evident-replay: give --archive, --database-url, or both\n\n${usage}`);
    return 2;
  }
  let store: EventStore | undefined;
  if (url) {
    store = createEventStore({
      connectionString: url,
      poolSize: 2,
      notify: { enabled: false },
      ...(values.schema ? { schema: values.schema } : {}),
      ...(values.tenant ? { tenant: values.tenant } : {}),
    });
  }
  const progress = createProgressBar(process.stderr, { always: values.progress === true });
  try {
    const from = date('from', values.from);
    const to = date('to', values.to);
    const result = await replay({
      ...(store ? { store } : {}),
      ...(values.archive ? { archive: await archiveTarget(values.archive) } : {}),
      ...(from ? { from } : {}),
      ...(to ? { to } : {}),
      ...(values.types ? { types: values.types.split(',').map((t) => t.trim()) } : {}),
      ...(values['batch-size'] ? { batchSize: Number(values['batch-size']) } : {}),
      into: await handlerFrom(values.into),
      onProgress: (p) =>
        p.phase === 'archive'
          ? progress.update(p.events, p.archiveEstimate, 'archive')
          : progress.update(p.events, null, 'live store'),
    });
    progress.finish(
      `replayed ${result.events} events (${result.fromArchive} from the archive, ${result.fromStore} from the store) through ${result.checkpoint}`,
    );
    return 0;
  } catch (error) {
    progress.finish(`evident-replay: ${(error as Error).message}`);
    return 1;
  } finally {
    await store?.close();
  }
}

const invoked = process.argv[1] ? pathToFileURL(resolve(process.argv[1])).href : '';
if (import.meta.url === invoked || /evident-replay$/.test(process.argv[1] ?? '')) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`evident-replay: ${(error as Error).message}\n`);
      process.exitCode = 2;
    },
  );
}
