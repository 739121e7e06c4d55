/**
 * End-to-end test support: a real lab (namespaces, API server, controller,
 * agents, real packets) with a name of its own, removed even when a test fails.
 * Needs root; fails loudly without it.
 */
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { labDown, labUp } from '../../src/lab/lifecycle.ts';
import { silentProgress } from '../../src/lab/progress.ts';
import { podNetns, type FqdnSettings, type LabState, type NetworkPolicySettings } from '../../src/lab/paths.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PALISADE = `${ROOT}bin/palisade`;

/** The datapath the end-to-end suites run against: $PALISADE_E2E_DATAPATH, legacy by default (CI runs both). */
export const DATAPATH: 'legacy' | 'ebpf' = process.env['PALISADE_E2E_DATAPATH'] === 'ebpf' ? 'ebpf' : 'legacy';

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('this end-to-end test needs root (it builds a lab of network namespaces); run it as root');
}

/** PALISADE_E2E_LAB_PREFIX goes first: runs sharing a machine tell their labs (pl-<lab>-…) apart by it. */
export function labName(prefix: string): string {
  return `${process.env['PALISADE_E2E_LAB_PREFIX'] ?? ''}${prefix}${randomBytes(3).toString('hex')}`;
}

export interface TestLab {
  name: string;
  state: LabState;
  dir: string;
  /** Runs bin/palisade with --lab (or --name for lab commands) appended. */
  cli(args: string[], input?: string): { code: number | null; out: string; err: string };
  apply(yaml: string): void;
  remove(yaml: string): void;
  /** curl from a pod; returns the HTTP code ('000' when no connection) and curl's exit code. */
  curl(ns: string, pod: string, url: string, timeoutS?: number): Promise<{ http: string; exit: number; body: string }>;
  execIn(ns: string, pod: string, argv: string[]): { code: number | null; out: string; err: string };
  /** execIn without blocking the event loop (for loops that run while the lab changes). */
  execInAsync(ns: string, pod: string, argv: string[]): Promise<{ code: number | null; out: string; err: string }>;
  down(): Promise<void>;
}

/** A lab on $PALISADE_E2E_DATAPATH unless `opts.datapath` names one. */
export async function startLab(
  name: string,
  nodes = 2,
  opts: { fqdn?: FqdnSettings; datapath?: 'legacy' | 'ebpf'; bpfAttach?: 'tcx' | 'tc'; networkPolicy?: NetworkPolicySettings; timeoutMs?: number; prometheus?: boolean; ui?: boolean } = {},
): Promise<TestLab> {
  requireRoot();
  const dir = mkdtempSync(`${tmpdir()}/palisade-e2e-`);
  let state: LabState;
  try {
    state = await labUp({ name, nodes, progress: silentProgress, ...opts, datapath: opts.datapath ?? DATAPATH });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    await labDown(name).catch(() => undefined);
    throw err;
  }
  let n = 0;
  const cli: TestLab['cli'] = (args, input) => {
    const r = spawnSync(PALISADE, [...args, args[0] === 'lab' ? '--name' : '--lab', name], { encoding: 'utf8', input, env: { ...process.env, NO_COLOR: '1' } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const file = (yaml: string): string => {
    const f = `${dir}/m${n++}.yaml`;
    writeFileSync(f, yaml);
    return f;
  };
  return {
    name,
    state,
    dir,
    cli,
    apply(yaml) {
      const r = cli(['apply', '-f', file(yaml), '--timeout', '30s']);
      if (r.code !== 0) throw new Error(`apply failed (${r.code}):\n${r.out}\n${r.err}`);
    },
    remove(yaml) {
      const r = cli(['delete', '-f', file(yaml)]);
      if (r.code !== 0) throw new Error(`delete failed (${r.code}):\n${r.out}\n${r.err}`);
    },
    curl(ns, pod, url, timeoutS = 1) {
      return new Promise((resolve) => {
        const child = spawn('ip', ['netns', 'exec', podNetns(name, ns, pod), 'curl', '-s', '-m', String(timeoutS), '-o', '-', '-w', '\n%{http_code}', url]);
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', (code) => {
          const i = out.lastIndexOf('\n');
          resolve({ http: out.slice(i + 1), body: out.slice(0, Math.max(0, i)), exit: code ?? -1 });
        });
      });
    },
    execIn(ns, pod, argv) {
      const r = spawnSync('ip', ['netns', 'exec', podNetns(name, ns, pod), ...argv], { encoding: 'utf8' });
      return { code: r.status, out: r.stdout, err: r.stderr };
    },
    execInAsync(ns, pod, argv) {
      return new Promise((resolve) => {
        const child = spawn('ip', ['netns', 'exec', podNetns(name, ns, pod), ...argv]);
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) => resolve({ code, out, err }));
      });
    },
    async down() {
      rmSync(dir, { recursive: true, force: true });
      await labDown(name);
    },
  };
}

export { within } from '../kit/wait.ts';

/**
 * Runs a Node script inside a pod's network namespace (pods run host
 * binaries) and resolves with the JSON object on its last line of output;
 * rejects with all it printed when it fails or prints none.
 */
export function podScriptJson<T = Record<string, unknown>>(lab: string, ns: string, pod: string, script: string, args: readonly string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', podNetns(lab, ns, pod), process.execPath, script, ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`${script.split('/').pop()} ${args[0] ?? ''} in ${ns}/${pod} exited ${code}: ${out}${err}`));
      else resolve(JSON.parse(line) as T);
    });
  });
}
