/**
 * What a kubelet does for a DaemonSet pod's containers, for one process of a
 * lab node (its agent, its node proxy): keep it running. The supervisor is
 * the process's parent, so it learns of a crash or a `kill -9` from the exit
 * itself (no polling) and starts a new one at once; a process that keeps
 * dying soon after it starts is restarted with backoff (CrashLoopBackOff),
 * so a broken config does not spin the CPU.
 *
 *   supervisor ─spawn─► child (nsenter into the node's namespace)
 *        ▲                 │ exit (code or signal)
 *        └── restart ◄─────┘ after backoff(run length); restarts and the last exit recorded
 *
 * While the agent is away its policy stays in the kernel; while the proxy is
 * away steered L7/DNS traffic finds no socket: both fail closed.
 */
import type { ChildProcess } from 'node:child_process';

/** A run at least this long was healthy: the next restart is immediate. */
export const HEALTHY_RUN_MS = 10_000;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10_000;

/**
 * The wait before a restart: none after a healthy run; doubling from 250 ms
 * to 10 s for each consecutive run shorter than HEALTHY_RUN_MS.
 */
export function restartDelayMs(quickExitsInARow: number): number {
  if (quickExitsInARow <= 0) return 0;
  return Math.min(FIRST_BACKOFF_MS * 2 ** (quickExitsInARow - 1), MAX_BACKOFF_MS);
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ISO time of the exit. */
  at: string;
  ranMs: number;
}

/** What `lab status` shows of a node's process: kubectl's RESTARTS and the last state. */
export interface Restarts {
  restarts: number;
  lastExit?: ChildExit;
  /** Set while a restart waits out its backoff. */
  backoffUntil?: string;
}

export interface SupervisorOptions {
  /** Starts the process once. */
  spawnChild(): ChildProcess;
  /** A new child runs (its pid), before anything else learns of it. */
  onStart(pid: number): void;
  /** The restart record changed. */
  onRecord(r: Restarts): void;
  /** Default HEALTHY_RUN_MS. */
  healthyRunMs?: number;
}

export class Supervisor {
  readonly #o: SupervisorOptions;
  #child: ChildProcess | undefined;
  #startedAt = 0;
  #quickExits = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  readonly record: Restarts = { restarts: 0 };

  constructor(o: SupervisorOptions) {
    this.#o = o;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): void {
    if (this.#stopping) return;
    this.#restartTimer = undefined;
    delete this.record.backoffUntil;
    const child = this.#o.spawnChild();
    this.#child = child;
    this.#startedAt = performance.now();
    if (child.pid !== undefined) this.#o.onStart(child.pid);
    // A failed spawn ('error' without a pid) ends in 'close' like an exit.
    child.once('error', () => undefined);
    child.once('close', (code, signal) => this.#exited(child, code, signal));
  }

  #exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const ranMs = performance.now() - this.#startedAt;
    if (this.#stopping) return;
    this.#quickExits = ranMs < (this.#o.healthyRunMs ?? HEALTHY_RUN_MS) ? this.#quickExits + 1 : 0;
    const delay = restartDelayMs(this.#quickExits);
    this.record.restarts++;
    this.record.lastExit = { code, signal, at: new Date().toISOString(), ranMs: Math.round(ranMs) };
    if (delay > 0) this.record.backoffUntil = new Date(Date.now() + delay).toISOString();
    this.#o.onRecord(this.record);
    if (delay === 0) this.start();
    else this.#restartTimer = setTimeout(() => this.start(), delay);
  }

  /** Stops supervising, then the child (SIGTERM, SIGKILL after `graceMs`); resolves once it is gone. */
  async stop(graceMs = 3000): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}
