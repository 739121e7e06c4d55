/**
 * A pod's sandbox on its node: a network namespace wired by the CNI plugin,
 * and its containers' commands running inside it (host filesystem), their
 * output in per-container log files. This is the lab's container runtime.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createNetns, deleteNetns, run } from '../kernel/index.ts';
import type { Pod } from '../k8s/index.ts';
import { containerLogPath, nodeDir, nodeNetns, podDir, podNetns } from './paths.ts';
import { PROJECT_ROOT, isAlive, stopPid } from './processes.ts';
import { removePodEtc, writePodEtc } from './cluster-dns.ts';
import { trustBundlePath } from './world/index.ts';

export interface SandboxState {
  namespace: string;
  pod: string;
  uid: string;
  node: string;
  netns: string;
  containerId: string;
  ip: string;
  /** pid 0: a container with no command. nextAt: earliest restart (ms since epoch). */
  containers: Record<string, { pid: number; restarts: number; nextAt?: number }>;
}

const stateFile = (lab: string, ns: string, pod: string): string => `${podDir(lab, ns, pod)}/sandbox.json`;

export async function readSandbox(lab: string, ns: string, pod: string): Promise<SandboxState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(lab, ns, pod), 'utf8')) as SandboxState;
  } catch {
    return undefined;
  }
}

export async function writeSandbox(lab: string, s: SandboxState): Promise<void> {
  await writeFile(stateFile(lab, s.namespace, s.pod), JSON.stringify(s, null, 1));
}

function cniEnv(command: string, s: { containerId: string; netns: string; namespace: string; pod: string }): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: s.containerId,
    CNI_NETNS: `/run/netns/${s.netns}`,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${s.namespace};K8S_POD_NAME=${s.pod}`,
    CNI_PATH: '/usr/lib/cni',
  };
}

async function cni(lab: string, node: string, command: 'ADD' | 'DEL', s: Parameters<typeof cniEnv>[1]): Promise<Record<string, unknown>> {
  const conf = await readFile(`${nodeDir(lab, node)}/cni.json`, 'utf8');
  const r = await run('ip', ['netns', 'exec', nodeNetns(lab, node), `${PROJECT_ROOT}bin/palisade-cni`], {
    input: conf,
    env: cniEnv(command, s),
    allowFailure: true,
  });
  const out = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
  if (r.code !== 0) throw new Error(`CNI ${command} failed: ${String(out['msg'] ?? r.stderr.trim())}${out['details'] ? ` (${String(out['details'])})` : ''}`);
  return out;
}

/** Creates the namespace, runs CNI ADD, starts the containers. */
export async function startSandbox(lab: string, pod: Pod, node: string): Promise<SandboxState> {
  const namespace = pod.metadata.namespace ?? 'default';
  const name = pod.metadata.name;
  await mkdir(podDir(lab, namespace, name), { recursive: true });
  const netns = podNetns(lab, namespace, name);
  await createNetns(netns);
  await writePodEtc(netns, namespace, trustBundlePath(lab));
  const containerId = `${pod.metadata.uid ?? name}`.replace(/[^a-zA-Z0-9_.-]/g, '');
  const ids = { containerId, netns, namespace, pod: name };
  const result = await cni(lab, node, 'ADD', ids);
  const ips = (result['ips'] ?? []) as { address: string }[];
  const ip = ips[0]?.address.split('/')[0];
  if (!ip) throw new Error('CNI ADD returned no address');
  const state: SandboxState = { namespace, pod: name, uid: pod.metadata.uid ?? '', node, netns, containerId, ip, containers: {} };
  for (const c of pod.spec.containers) {
    state.containers[c.name] = { pid: startContainer(lab, pod, c.name, netns, ip), restarts: 0 };
  }
  await writeSandbox(lab, state);
  return state;
}

/**
 * The lab's readiness check: a pod is ready once every port its containers
 * declare is listening (TCP) or bound (UDP) in its namespace, so a Service
 * never sends a connection to a server that is still starting.
 */
export async function waitUntilListening(pod: Pod, netns: string, timeoutMs: number): Promise<string[]> {
  const want = pod.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => `${(p.protocol ?? 'TCP').toLowerCase()}/${p.containerPort}`));
  if (want.length === 0) return [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await run('ss', ['-Hlntu'], { netns, allowFailure: true });
    const have = new Set(
      r.stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length >= 5)
        .map((f) => `${f[0]}/${(f[4] ?? '').split(':').pop()}`),
    );
    const missing = want.filter((w) => !have.has(w));
    if (missing.length === 0 || Date.now() > deadline) return missing;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Starts one container's command in the pod's namespace; 0 when it has none (a pause container). */
export function startContainer(lab: string, pod: Pod, container: string, netns: string, ip: string): number {
  const c = pod.spec.containers.find((x) => x.name === container);
  const argv = [...(c?.command ?? []), ...(c?.args ?? [])];
  if (argv.length === 0) return 0;
  const namespace = pod.metadata.namespace ?? 'default';
  const log = openSync(containerLogPath(lab, namespace, pod.metadata.name, container), 'a');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${PROJECT_ROOT}bin:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    POD_NAME: pod.metadata.name,
    POD_NAMESPACE: namespace,
    POD_IP: ip,
    HOSTNAME: pod.metadata.name,
    // Node clients in pods trust the lab CA too (curl and OpenSSL read the pod's /etc/ssl).
    NODE_EXTRA_CA_CERTS: trustBundlePath(lab),
  };
  for (const e of c?.env ?? []) env[e.name] = e.value ?? '';
  const child = spawn('ip', ['netns', 'exec', netns, ...argv], { detached: true, stdio: ['ignore', log, log], env, cwd: '/' });
  closeSync(log);
  child.on('error', () => {});
  child.unref();
  return child.pid ?? 0;
}

/** Stops the containers (their process groups), runs CNI DEL, removes the namespace and files. */
export async function stopSandbox(lab: string, s: SandboxState): Promise<void> {
  await Promise.all(
    Object.values(s.containers).map(async ({ pid }) => {
      if (pid <= 0 || !isAlive(pid)) return;
      try {
        process.kill(-pid, 'SIGTERM'); // the whole process group the container started
      } catch {
        /* already gone */
      }
      await stopPid(pid, 2000);
    }),
  );
  await cni(lab, s.node, 'DEL', s).catch(() => undefined);
  await deleteNetns(s.netns);
  await removePodEtc(s.netns);
  await rm(podDir(lab, s.namespace, s.pod), { recursive: true, force: true });
}
