/**
 * Running the kernel's own tools (ip, nft, sysctl) — the one place commands
 * are spawned, so every failure carries the command line and its stderr.
 */
import { spawn } from 'node:child_process';

export class CommandError extends Error {
  readonly command: string;
  readonly code: number | null;
  readonly stderr: string;
  constructor(command: string, code: number | null, stderr: string) {
    super(`${command}: ${stderr.trim() || `exit code ${code}`}`);
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

export interface RunOptions {
  /** Run inside this named network namespace (`ip netns exec`). */
  netns?: string;
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolve with the result instead of rejecting on a non-zero exit. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, cmd, ...args]] : [cmd, [...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new CommandError([file, ...argv].join(' '), null, err.message)));
    child.on('close', (code) => {
      if (code !== 0 && !opts.allowFailure) reject(new CommandError([file, ...argv].join(' '), code, stderr));
      else resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** `ip -batch -` in a namespace: many link/addr/route changes for one process start. */
export async function ipBatch(lines: readonly string[], netns?: string): Promise<void> {
  if (lines.length === 0) return;
  const args = netns ? ['-n', netns, '-batch', '-'] : ['-batch', '-'];
  await run('ip', args, { input: lines.join('\n') + '\n' });
}

/** One atomic nftables transaction. */
export async function nft(script: string, netns?: string): Promise<void> {
  await run('nft', ['-f', '-'], { input: script, ...(netns ? { netns } : {}) });
}
