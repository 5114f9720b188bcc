/** A one-line progress bar redrawn in place on a terminal (the replay CLI's stderr). */
export interface ProgressBar {
  update(done: number, total: number | null, label: string): void;
  /** Draw the final state and end the line. */
  finish(summary: string): void;
}

const width = 30;
const format = (n: number) => n.toLocaleString('en-US');

/**
 * @param out where to draw (a TTY redraws in place with `\r`; anything else gets the summary only,
 *   unless `always` is set, when each redraw is its own line at most every `intervalMs`)
 */
export function createProgressBar(
  out: NodeJS.WritableStream & { isTTY?: boolean },
  options: { readonly always?: boolean; readonly intervalMs?: number } = {},
): ProgressBar {
  const tty = out.isTTY === true;
  const draw = tty || options.always === true;
  const interval = options.intervalMs ?? (tty ? 100 : 1000);
  const started = performance.now();
  let last = Number.NEGATIVE_INFINITY;
  let drawn = false;
  let latest: readonly [number, number | null, string] | null = null;

  const line = (done: number, total: number | null, label: string) => {
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    if (total !== null && total > 0) {
      const ratio = Math.min(1, done / total);
      const filled = Math.round(ratio * width);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
      return `[${bar}] ${String(Math.round(ratio * 100)).padStart(3)}% ${format(done)}/${format(total)} events (${label}) ${format(rate)}/s`;
    }
    return `${format(done)} events (${label}) ${format(rate)}/s`;
  };

  return {
    update(done, total, label) {
      if (!draw) return;
      latest = [done, total, label];
      const now = performance.now();
      if (now - last < interval) return;
      last = now;
      out.write(tty ? `\r\x1b[2K${line(done, total, label)}` : `${line(done, total, label)}\n`);
      drawn = true;
    },
    finish(summary) {
      // The bar's final state stays on screen above the summary.
      const final = latest ? `${line(...latest)}\n` : '';
      out.write(`${tty && drawn ? '\r\x1b[2K' : ''}${final}${summary}\n`);
    },
  };
}
