/**
 * Where the kubectl-like commands write, and how they end. Commands never touch
 * process.stdout or process.exitCode directly, so tests drive them in-process
 * and read what a person would have seen.
 */

export interface KubeIo {
  out(text: string): void;
  err(text: string): void;
  /** A TTY gets a live one-line progress display; pipes and logs get plain lines. */
  isTTY: boolean;
  /** A command's exit status when it is not 0 and not a CliError (exec passes its child's through). */
  setExitCode(code: number): void;
  /** Standard input for `-f -`. */
  stdin: AsyncIterable<Uint8Array | string>;
}

export function processIo(): KubeIo {
  return {
    out: (text) => { process.stdout.write(text); },
    err: (text) => { process.stderr.write(text); },
    isTTY: process.stdout.isTTY === true,
    setExitCode: (code) => { process.exitCode = code; },
    stdin: process.stdin,
  };
}
