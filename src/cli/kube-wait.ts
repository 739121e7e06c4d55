/**
 * `apply --wait`: poll until every applied Pod runs and has an IP — what the
 * lab's controller and CNI do after the object exists. Polling (every 100 ms,
 * one list per namespace) instead of a watch keeps this correct against any
 * server, costs little for the handful of pods a lab holds, and cannot miss
 * an event.
 *
 * Done = `status.phase` Running and `status.podIP` set. A pod whose phase is
 * Failed or Succeeded will never get there: the wait stops at once.
 */
import { POD } from './kube-kinds.ts';
import type { ApiObject, KubeClient } from './kube-client.ts';
import type { KubeIo } from './kube-io.ts';
import { CliError, green, red } from './style.ts';

export const WAIT_POLL_MS = 100;

/** kubectl-style durations: "60s", "1m30s", "500ms", "2h"; a bare number is seconds. */
export function parseDuration(text: string): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  const part = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;
  if (rest === '') throw new CliError('empty duration: write e.g. 60s, 1m30s or 500ms', 2);
  while (rest !== '') {
    const m = part.exec(rest);
    if (m === null) throw new CliError(`invalid duration ${JSON.stringify(text)}: write e.g. 60s, 1m30s or 500ms`, 2);
    total += Number(m[1]) * unit[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

export interface PodRef {
  namespace: string;
  name: string;
}

interface PodState {
  ref: PodRef;
  /** undefined: not (or no longer) found. */
  pod: ApiObject | undefined;
}

function podStatus(pod: ApiObject | undefined): { phase: string; podIP: string; message: string } {
  const status = (pod?.status ?? {}) as { phase?: unknown; podIP?: unknown; message?: unknown; reason?: unknown };
  return {
    phase: typeof status.phase === 'string' ? status.phase : '',
    podIP: typeof status.podIP === 'string' ? status.podIP : '',
    message: [status.reason, status.message].filter((s): s is string => typeof s === 'string' && s !== '').join(': '),
  };
}

function isRunning(pod: ApiObject | undefined): boolean {
  const s = podStatus(pod);
  return s.phase === 'Running' && s.podIP !== '';
}

/** "default/p1: Pending, no IP yet (ContainerCreating: pulling)" */
function describeNotReady(p: PodState): string {
  const where = `${p.ref.namespace}/${p.ref.name}`;
  if (p.pod === undefined) return `${where}: not found (deleted while waiting?)`;
  const s = podStatus(p.pod);
  const facts = [s.phase === '' ? 'no phase yet' : s.phase, s.podIP === '' ? 'no IP yet' : `IP ${s.podIP}`];
  return `${where}: ${facts.join(', ')}${s.message !== '' ? ` (${s.message})` : ''}`;
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs?: number;
}

export async function waitForPods(client: KubeClient, refs: PodRef[], opts: WaitOptions, io: KubeIo): Promise<void> {
  if (refs.length === 0) return;
  const pollMs = opts.pollMs ?? WAIT_POLL_MS;
  const deadline = Date.now() + opts.timeoutMs;
  const namespaces = [...new Set(refs.map((r) => r.namespace))];
  const noun = refs.length === 1 ? 'pod' : 'pods';
  let lastLine = '';
  const show = (line: string): void => {
    if (line === lastLine) return;
    lastLine = line;
    // A TTY gets one line rewritten in place; a pipe gets a new line per change.
    io.out(io.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
  };
  const endLine = (): void => { if (io.isTTY && lastLine !== '') io.out('\n'); };

  for (;;) {
    const byKey = new Map<string, ApiObject>();
    for (const ns of namespaces) {
      for (const pod of await client.list(POD, ns)) byKey.set(`${ns}/${pod.metadata?.name ?? ''}`, pod);
    }
    const states: PodState[] = refs.map((ref) => ({ ref, pod: byKey.get(`${ref.namespace}/${ref.name}`) }));
    const running = states.filter((s) => isRunning(s.pod)).length;
    if (running === refs.length) {
      show(`${green('✓')} ${refs.length} ${noun} running`);
      endLine();
      return;
    }
    show(`waiting for ${refs.length} ${noun}: ${running}/${refs.length} running`);

    const dead = states.filter((s) => ['Failed', 'Succeeded'].includes(podStatus(s.pod).phase));
    if (dead.length > 0) {
      endLine();
      throw new CliError(`${dead.length} ${dead.length === 1 ? 'pod' : 'pods'} will never run:\n${dead.map((s) => `  ${red('✗')} ${describeNotReady(s)}`).join('\n')}`, 1);
    }
    if (Date.now() >= deadline) {
      endLine();
      const waiting = states.filter((s) => !isRunning(s.pod));
      throw new CliError(
        `timed out after ${formatMs(opts.timeoutMs)} waiting for ${waiting.length} of ${refs.length} ${noun} to run with an IP:\n` +
        waiting.map((s) => `  ${red('✗')} ${describeNotReady(s)}`).join('\n'), 1);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
