/**
 * Saga workers in child processes (test/sagaWorker.ts), started and killed for real.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const script = fileURLToPath(new URL('./sagaWorker.ts', import.meta.url));

export interface Child {
  readonly process: ChildProcess;
  readonly workerId: string;
  readonly lines: string[];
  waitFor(line: string): Promise<void>;
}

export function start(args: string[]): Promise<Child> {
  const child = spawn(
    process.execPath,
    ['--conditions=@evident/source', '--import', 'tsx', script, ...args],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  const waiters: { line: string; resolve: () => void }[] = [];
  let err = '';
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.filter((w) => line === w.line || line.startsWith(`${w.line} `)))
        w.resolve();
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`worker exited (${code}) early: ${err}`));
    child.once('exit', onExit);
    const check = setInterval(() => {
      const ready = lines.find((l) => l.startsWith('ready '));
      if (!ready) return;
      clearInterval(check);
      child.off('exit', onExit);
      resolve({
        process: child,
        workerId: ready.slice('ready '.length),
        lines,
        waitFor: (line) =>
          lines.some((l) => l === line || l.startsWith(`${line} `))
            ? Promise.resolve()
            : new Promise((r, j) => {
                waiters.push({ line, resolve: r });
                child.once('exit', (code) =>
                  j(new Error(`worker exited (${code}) before "${line}": ${err}`)),
                );
              }),
      });
    }, 10);
  });
}

export async function kill(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  const exited = new Promise((r) => child.process.once('exit', r));
  child.process.kill('SIGKILL');
  await exited;
}
