/**
 * The lab's own processes: started detached (they outlive `lab up`), each
 * recorded by pid, and ended only by that pid after checking that the process
 * still is ours — its command line names the lab's directory.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { labDir, logsDir } from './paths.ts';

/** The checkout this code runs from. */
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI_MAIN = `${PROJECT_ROOT}src/cli/main.ts`;
export const NODE_FLAGS = ['--disable-warning=ExperimentalWarning'];

export const pidsDir = (lab: string): string => `${labDir(lab)}/pids`;

export interface StartOptions {
  lab: string;
  /** Name for the pid and log files. */
  name: string;
  /** Run inside this network namespace. */
  netns?: string;
  args: string[];
  /** The script to run (default: the CLI). */
  script?: string;
  /** A program to run instead of node (e.g. /usr/bin/prometheus); `script` and `nodeFlags` then do not apply. */
  program?: string;
  /** Extra flags for node itself (e.g. a heap limit). */
  nodeFlags?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Starts `palisade <args>` (or `program <args>`) detached, its output in logs/<name>.log; returns the pid. */
export async function startLabProcess(o: StartOptions): Promise<number> {
  await mkdir(pidsDir(o.lab), { recursive: true });
  await mkdir(logsDir(o.lab), { recursive: true });
  const log = openSync(`${logsDir(o.lab)}/${o.name}.log`, 'a');
  const [program, programArgs] = o.program ? [o.program, o.args] : [process.execPath, [...NODE_FLAGS, ...(o.nodeFlags ?? []), o.script ?? CLI_MAIN, ...o.args]];
  // nsenter enters only the network namespace: unlike `ip netns exec` it keeps
  // the host's /sys, where the BPF filesystem with the datapath's pins lives.
  const [cmd, argv] = o.netns ? ['nsenter', [`--net=/run/netns/${o.netns}`, program, ...programArgs]] : [program, programArgs];
  const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', log, log], env: o.env ?? process.env, cwd: PROJECT_ROOT });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${o.name}`);
  child.unref();
  await writeFile(`${pidsDir(o.lab)}/${o.name}.pid`, `${pid}\n`);
  return pid;
}

/** How a started process went: ready with what `ready` gave, or not, with what it logged meanwhile. */
export type ReadyOutcome<T> = { ready: true; pid: number; value: T } | { ready: false; exited: boolean; log: string; logFile: string };

/**
 * Starts a lab process and polls `ready` until it gives a value. One that
 * exits, or is not ready within `timeoutMs` (then it is stopped), comes back
 * with the end of what it logged since this start, for the caller's error.
 */
export async function startLabProcessReady<T>(o: StartOptions, ready: () => Promise<T | undefined>, timeoutMs: number, pollMs = 50): Promise<ReadyOutcome<T>> {
  const logFile = `${logsDir(o.lab)}/${o.name}.log`;
  const logStart = (await stat(logFile).catch(() => undefined))?.size ?? 0;
  const pid = await startLabProcess(o);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && isAlive(pid)) {
    const value = await ready();
    if (value !== undefined) return { ready: true, pid, value };
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const exited = !isAlive(pid);
  if (!exited) await stopPid(pid);
  const log = (await readFile(logFile).catch(() => Buffer.alloc(0))).subarray(logStart).toString('utf8').slice(-2000);
  return { ready: false, exited, log, logFile };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when `pid` runs and its command line mentions `marker` (the lab's directory). */
export function isOurs(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs` if it is still there. */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** The recorded lab processes: name → pid. */
export async function recordedPids(lab: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let files: string[];
  try {
    files = await readdir(pidsDir(lab));
  } catch {
    return out;
  }
  for (const f of files) {
    if (!f.endsWith('.pid')) continue;
    const pid = Number((await readFile(`${pidsDir(lab)}/${f}`, 'utf8')).trim());
    if (Number.isInteger(pid) && pid > 1) out.set(f.slice(0, -4), pid);
  }
  return out;
}
