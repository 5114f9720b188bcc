import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export type Child = ChildProcessByStdio<null, Readable, null>;

/**
 * Start `test/consumerProcess.ts` (or another script of `test/`) with `config`. Wait for `ready`
 * (subscribed) or for whatever the test expects with `waitFor`: a message already queued may
 * arrive before `ready` is printed.
 */
export async function startConsumerProcess(
  config: Record<string, unknown>,
  file = 'consumerProcess.ts',
): Promise<{
  child: Child;
  lines: string[];
  waitFor: (prefix: string, timeoutMs?: number) => Promise<string>;
  exited: Promise<NodeJS.Signals | number | null>;
}> {
  const script = fileURLToPath(new URL(`./${file}`, import.meta.url));
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--conditions=@evident/source', '--import', 'tsx', script, JSON.stringify(config)],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    },
  );
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  let buffer = '';
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
    for (const l of [...listeners]) l();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  const waitFor = (prefix: string, timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const line = lines.find((l) => l.startsWith(prefix));
        if (line !== undefined) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(line);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(
          new Error(
            `child printed no "${prefix}" within ${timeoutMs} ms; got ${JSON.stringify(lines)}`,
          ),
        );
      }, timeoutMs);
      listeners.add(check);
      void exited.then(() => setTimeout(check, 10));
      check();
    });
  return { child, lines, waitFor, exited };
}
