/** Step-by-step progress for long lab operations: one line per step, timed, on stderr. */
import { performance } from 'node:perf_hooks';

const tty = process.stderr.isTTY === true && process.env['NO_COLOR'] === undefined;

export type Progress = <T>(title: string, fn: () => Promise<T>, detail?: (r: T) => string) => Promise<T>;

export function consoleProgress(): Progress {
  return async (title, fn, detail) => {
    const t0 = performance.now();
    if (tty) process.stderr.write(`  … ${title}`);
    try {
      const r = await fn();
      const ms = Math.round(performance.now() - t0);
      const extra = detail ? `  ${detail(r)}` : '';
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}  ${tty ? '\x1b[32m✓\x1b[0m' : '✓'} ${title} (${ms} ms)${extra}\n`);
      return r;
    } catch (err) {
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}  ${tty ? '\x1b[31m✗\x1b[0m' : '✗'} ${title}\n`);
      throw err;
    }
  };
}

export const silentProgress: Progress = (_t, fn) => fn();
