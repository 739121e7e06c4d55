/**
 * `lab up` and `lab down`: a whole cluster out of network namespaces, and
 * every trace of it removed again — also after a crash, from leftovers alone.
 *
 *   up:   network (fabric, nodes) → API server → Node objects → controller → agents → ready
 *         → published metrics → Prometheus (--prometheus) → web UI
 *   down: lab processes (by recorded pid) → processes inside lab namespaces →
 *         namespaces (pods, nodes, fabric) → /run/palisade/<lab> → /sys/fs/bpf/palisade/<lab>
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { buildBpfObject, isBpffs } from '../datapath/index.ts';
import { buildLabNetwork, destroyLabNetwork, UNDERLAY_IF } from './index.ts';
import { listNetns, netnsPids, run } from '../kernel/index.ts';
import {
  agentSocketPath,
  apiDataPath,
  apiSocketPath,
  bpfDir,
  fabricNetns,
  kubeconfigPath,
  labDir,
  labMarker,
  labNetnsPrefix,
  logsDir,
  nodeDir,
  nodeNetns,
  RUN_ROOT,
  validateLabName,
  type FqdnSettings,
  type NetworkPolicySettings,
  type LabState,
} from './paths.ts';
import { LAB_NETWORK, labNodes } from './addressing.ts';
import { isAlive, isOurs, PROJECT_ROOT, recordedPids, startLabProcess, stopPid } from './processes.ts';
import { agentPid, NODE_PROCESSES, nodePid, nodePidPath, supervisorName } from './node-processes.ts';
import { fileURLToPath } from 'node:url';
import { readLabState, writeLabState } from './state.ts';
import { unixRequest } from './unix-http.ts';
import type { Progress } from './progress.ts';
import { clusterDnsObjects, prepareClusterDns, removePodEtc } from './cluster-dns.ts';
import { RawObjectApi } from '../kube-client/index.ts';
import { ensureLabCa, ensureWorldGateway, labCaDir, startUpstreamDns, trustBundlePath, writeTrustBundle } from './world/index.ts';
import { assertPrometheusInstalled, HUBBLE_JOB, startPrometheus } from './prometheus.ts';
import { LabError } from './errors.ts';
import { startLabUi } from './web-ui.ts';
import { readPublished, updatePublished } from './publish.ts';

export interface UpOptions {
  name: string;
  nodes: number;
  datapath: 'legacy' | 'ebpf';
  progress: Progress;
  /** How long agents may take to become ready. */
  timeoutMs?: number;
  fqdn?: FqdnSettings;
  /** eBPF: tcx or tc (clsact) for every agent instead of auto. */
  bpfAttach?: 'tcx' | 'tc';
  networkPolicy?: NetworkPolicySettings;
  /** Run Prometheus over the agents' metrics (src/lab/prometheus.ts). */
  prometheus?: boolean;
  /** Start the web UI (src/lab/web-ui.ts). The CLI's lab up does; tests and benches ask when they need it. */
  ui?: boolean;
}


export { AGENT_NODE_FLAGS } from './node-processes.ts';

export async function preflight(): Promise<void> {
  if (process.getuid?.() !== 0) throw new LabError('the lab needs root (it creates network namespaces); run with sudo');
  const missing = [
    ['ip', '/usr/sbin/ip', 'iproute2'],
    ['nft', '/usr/sbin/nft', 'nftables'],
    ['host-local', '/usr/lib/cni/host-local', 'containernetworking-plugins'],
  ].filter(([, path]) => !existsSync(path!));
  if (missing.length) {
    throw new LabError(`missing: ${missing.map(([n, , pkg]) => `${n} (apt-get install ${pkg})`).join(', ')}; scripts/setup.sh installs them`);
  }
}

export async function labUp(o: UpOptions): Promise<LabState> {
  const bad = validateLabName(o.name);
  if (bad) throw new LabError(bad);
  await preflight();
  if (o.prometheus) assertPrometheusInstalled();
  if (o.datapath === 'ebpf') await prepareEbpf();
  if (existsSync(labDir(o.name)) || listNetns(labNetnsPrefix(o.name)).length > 0) {
    throw new LabError(`lab ${o.name} already exists (or left traces); see palisade lab status --name ${o.name}, or remove it with palisade lab down --name ${o.name}`);
  }
  const nodes = labNodes(o.nodes);
  const state: LabState = {
    name: o.name,
    datapath: o.datapath,
    createdAt: new Date().toISOString(),
    root: PROJECT_ROOT,
    nodes,
    apiServer: { url: '', pid: 0 },
    controller: { pid: 0 },
    agents: {},
    network: LAB_NETWORK,
    ...(o.fqdn ? { fqdn: o.fqdn } : {}),
    ...(o.bpfAttach ? { bpfAttach: o.bpfAttach } : {}),
    ...(o.networkPolicy ? { networkPolicy: o.networkPolicy } : {}),
  };
  await mkdir(logsDir(o.name), { recursive: true });
  await writeLabState(state);
  try {
    await o.progress(`network: fabric and ${nodes.length} node namespaces`, () =>
      buildLabNetwork({
        fabricNetns: fabricNetns(o.name),
        fabricIp: LAB_NETWORK.fabricIp,
        underlayPrefix: Number(LAB_NETWORK.underlayCIDR.split('/')[1]),
        nodes: nodes.map((n) => ({ name: n.name, netns: nodeNetns(o.name, n.name), underlayIp: n.underlayIp, podCIDR: n.podCIDR })),
      }),
    );
    await o.progress('outside world: upstream DNS (172.31.0.1) and lab CA', async () => {
      await ensureWorldGateway(fabricNetns(o.name));
      await startUpstreamDns(o.name);
      await writeTrustBundle(await ensureLabCa(labCaDir(o.name), o.name), trustBundlePath(o.name));
    });
    state.apiServer = await o.progress('API server', () => startApiServer(o.name), (a) => a.url);
    await writeLabState(state);
    await o.progress('Node objects and node configuration', () => registerNodes(o.name, state));
    await o.progress('cluster DNS (kube-system/kube-dns, 10.96.0.10)', () => createClusterDns(o.name, state));
    state.controller.pid = await o.progress('lab controller (scheduler and kubelets)', () =>
      startLabProcess({ lab: o.name, name: 'controller', args: ['lab', 'controller', '--name', o.name, '--run-dir', labMarker(o.name)] }),
    );
    for (const n of nodes) state.agents[n.name] = { pid: await startAgent(o.name, n.name) };
    await writeLabState(state);
    await o.progress(`agents ready on ${nodes.map((n) => n.name).join(', ')}`, () => waitForAgents(o.name, nodes.map((n) => n.name), o.timeoutMs ?? 30_000));
    // What follows adds to published.json: the controller must have written it first.
    if (o.prometheus || o.ui) await waitForPublished(state, 15_000);
    if (o.prometheus) {
      state.prometheus = await o.progress(`Prometheus (job ${HUBBLE_JOB}, scraping ${nodes.length} agents every 5 s)`, () => startPrometheus(o.name), (p) => p.url);
      await writeLabState(state);
      await updatePublished(o.name, { prometheus: state.prometheus.url });
    }
    if (o.ui) {
      state.ui = await o.progress('web UI', () => startLabUi(o.name, state.prometheus?.url), (u) => u.url);
      await writeLabState(state);
      await updatePublished(o.name, { ui: state.ui.url });
    }
    return state;
  } catch (err) {
    // Leave nothing half-built behind.
    await labDown(o.name).catch(() => undefined);
    throw err;
  }
}

/** The controller publishes the agents' metrics (published.json) as it starts. */
async function waitForPublished(s: LabState, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const metrics = (await readPublished(s.name))?.metrics ?? {};
    if (s.nodes.every((n) => n.name in metrics)) return;
    if (Date.now() > deadline) throw new LabError(`the lab controller did not publish the agents' metrics within ${timeoutMs / 1000} s (log ${logsDir(s.name)}/controller.log)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The eBPF datapath needs the BPF filesystem (where its maps and programs are
 * pinned, so they outlive an agent) and its compiled object.
 */
async function prepareEbpf(): Promise<void> {
  if (!isBpffs('/sys/fs/bpf')) {
    await run('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']).catch((err: unknown) => {
      throw new LabError(`--datapath ebpf needs the BPF filesystem at /sys/fs/bpf and mounting it failed: ${String(err)}`);
    });
  }
  try {
    buildBpfObject();
  } catch (err) {
    throw new LabError(`--datapath ebpf: compiling the BPF programs failed (clang, libbpf-dev; scripts/setup.sh installs them): ${String(err)}`);
  }
}

async function startApiServer(lab: string): Promise<{ url: string; pid: number }> {
  const pid = await startLabProcess({
    lab,
    name: 'apiserver',
    script: `${PROJECT_ROOT}src/apiserver/main.ts`,
    args: ['--port', '0', '--data', apiDataPath(lab), '--socket', apiSocketPath(lab), '--kubeconfig', kubeconfigPath(lab)],
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (existsSync(kubeconfigPath(lab)) && existsSync(apiSocketPath(lab))) {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kubeconfigPath(lab));
      const url = kc.getCurrentCluster()?.server;
      if (url) return { url, pid };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = await readFile(`${logsDir(lab)}/apiserver.log`, 'utf8').catch(() => '');
  throw new LabError(`the API server did not come up within 15 s${log ? `:\n${log.slice(-2000)}` : ''}`);
}

async function registerNodes(lab: string, s: LabState): Promise<void> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath(lab));
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (const n of s.nodes) {
    await core.createNode({
      body: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'palisade.dev/lab': lab } },
        spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
        status: { addresses: [{ type: 'InternalIP', address: n.underlayIp }, { type: 'Hostname', address: n.name }] },
      },
    });
    const dir = nodeDir(lab, n.name);
    await mkdir(`${dir}/ipam`, { recursive: true });
    await writeFile(
      `${dir}/agent.json`,
      JSON.stringify(
        {
          node: n.name,
          runDir: dir,
          datapath: s.datapath,
          ...(s.datapath === 'ebpf' ? { pinDir: `${bpfDir(lab)}/${n.name}`, ...(s.bpfAttach ? { bpfAttach: s.bpfAttach } : {}) } : {}),
          apiSocket: apiSocketPath(lab),
          ...(s.fqdn ? { fqdn: s.fqdn } : {}),
          ...(s.networkPolicy ? { networkPolicy: s.networkPolicy } : {}),
          // Drops and L7 events to disk, rotated at 10 MiB (palisade observe reads the ring buffer instead).
          flowLog: { path: `${dir}/flows.log`, maxSizeBytes: 10 * 1024 * 1024, maxFiles: 3, include: [{ verdict: ['DROPPED'] }, { event_type: [{ type: 5 }] }] },
          network: {
            underlayIp: n.underlayIp,
            underlayIf: UNDERLAY_IF,
            underlayCIDR: s.network.underlayCIDR,
            podCIDR: n.podCIDR,
            clusterPodCIDR: s.network.clusterPodCIDR,
          },
        },
        null,
        2,
      ),
    );
    await writeFile(
      `${dir}/cni.json`,
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name: 'palisade',
          type: 'palisade-cni',
          agentSocket: agentSocketPath(lab, n.name),
          ipam: { type: 'host-local', ranges: [[{ subnet: n.podCIDR }]], dataDir: `${dir}/ipam` },
        },
        null,
        2,
      ),
    );
  }
}

async function createClusterDns(lab: string, s: LabState): Promise<void> {
  await prepareClusterDns(lab);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath(lab));
  const api = RawObjectApi.makeRaw(kc, false);
  const first = s.nodes[0];
  if (!first) return;
  for (const o of clusterDnsObjects(lab, s.network.fabricIp, first.name)) await api.create(o as unknown as k8s.KubernetesObject);
}

async function waitForAgents(lab: string, nodes: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(nodes);
  while (pending.size > 0) {
    for (const n of [...pending]) {
      // Ready: the agent has its policy in the kernel and the node proxy (HTTP, DNS) is linked to it.
      const r = await unixRequest(agentSocketPath(lab, n), 'GET', '/v1/status', undefined, 1000).catch(() => undefined);
      const status = r?.status === 200 ? (JSON.parse(r.body) as { ready?: boolean; proxyLinked?: boolean }) : undefined;
      if (status?.ready && status.proxyLinked) pending.delete(n);
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      const logs = await Promise.all(
        [...pending].flatMap((n) =>
          NODE_PROCESSES.map(async (p) => `--- ${p} ${n} ---\n${(await readFile(`${logsDir(lab)}/${p}-${n}.log`, 'utf8').catch(() => '')).slice(-1500)}`),
        ),
      );
      throw new LabError(`agents not ready after ${timeoutMs / 1000} s: ${[...pending].join(', ')}\n${logs.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface DownReport {
  processes: number;
  namespaces: string[];
  removedDirs: string[];
}

/** Removes everything of `lab`, whether it is healthy, half-built or crashed. */
export async function labDown(lab: string): Promise<DownReport> {
  const bad = validateLabName(lab);
  if (bad) throw new LabError(bad);
  await preflight();
  let processes = 0;
  // 1. The lab's own processes, by recorded pid, if they still are ours;
  //    supervisors first, or they would start the agents again.
  const pids = [...(await recordedPids(lab))].sort(([a], [b]) => Number(b.startsWith('supervisor-')) - Number(a.startsWith('supervisor-')));
  for (const [, pid] of pids) {
    if (isOurs(pid, labMarker(lab))) {
      await stopPid(pid);
      processes++;
    }
  }
  // 2. Anything still running inside the lab's namespaces (containers, agents) is the lab's.
  const namespaces = listNetns(labNetnsPrefix(lab));
  for (const ns of namespaces) {
    for (const pid of await netnsPids(ns)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* not a group leader */
      }
      await stopPid(pid, 500);
      processes++;
    }
  }
  // 3. Namespaces, and with them every veth, route and nftables table of the lab.
  await destroyLabNetwork(labNetnsPrefix(lab));
  // 4. Files and pins, and the pods' /etc overlays (resolv.conf).
  const removedDirs: string[] = [];
  const etc = existsSync('/etc/netns') ? (await readdir('/etc/netns')).filter((n) => n.startsWith(labNetnsPrefix(lab))) : [];
  for (const ns of etc) await removePodEtc(ns);
  for (const dir of [labDir(lab), bpfDir(lab)]) {
    if (existsSync(dir)) {
      await rm(dir, { recursive: true, force: true });
      removedDirs.push(dir);
    }
  }
  return { processes, namespaces, removedDirs };
}

/** Labs on this machine: state directories and namespace prefixes. */
export async function listLabs(): Promise<string[]> {
  const names = new Set<string>();
  try {
    for (const d of await readdir(RUN_ROOT)) if (!validateLabName(d)) names.add(d);
  } catch {
    /* no /run/palisade */
  }
  for (const ns of listNetns('pl-')) {
    const m = /^pl-([a-z0-9]+)-(fabric|node-\d+|pod-.*|ext-.*)$/.exec(ns);
    if (m?.[1]) names.add(m[1]);
  }
  return [...names].sort();
}

export { readLabState };

/**
 * Starts a node's agent and node proxy under their supervisor, which
 * restarts each whenever it dies (src/lab/supervisor.ts); resolves with the agent's pid.
 */
async function startAgent(lab: string, node: string): Promise<number> {
  await rm(nodePidPath(lab, node, 'agent'), { force: true });
  const supervisor = await startLabProcess({
    lab,
    name: supervisorName(node),
    script: SUPERVISOR_MAIN,
    args: ['--lab', lab, '--node', node, '--run-dir', labMarker(lab)],
  });
  return waitForAgentPid(lab, node, 0, supervisor);
}

const SUPERVISOR_MAIN = fileURLToPath(new URL('./supervisor-main.ts', import.meta.url));

/** Waits until the supervisor has started an agent other than `old`. */
async function waitForAgentPid(lab: string, node: string, old: number, supervisor: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pid = agentPid(lab, node);
    if (pid && pid !== old && isAlive(pid)) return pid;
    if (!isAlive(supervisor)) throw new LabError(`the supervisor of ${node} exited; see ${logsDir(lab)}/${supervisorName(node)}.log`);
    if (Date.now() > deadline) throw new LabError(`no agent started on ${node} within 10 s; see ${logsDir(lab)}/agent-${node}.log`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The node's supervisor pid when it is running and ours, else 0. */
async function supervisorPid(lab: string, node: string): Promise<number> {
  const pid = (await recordedPids(lab)).get(supervisorName(node)) ?? 0;
  return pid && isOurs(pid, labMarker(lab)) ? pid : 0;
}

/**
 * Restarts a node's agent (policy stays in the kernel meanwhile) and resolves
 * with the new pid once it is ready. The agent is ended and its supervisor
 * starts the next one; with `downMs`, the node stays without an agent that long.
 */
export async function restartAgent(lab: string, node: string, opts: { downMs?: number } = {}): Promise<number> {
  const s = await readLabState(lab);
  if (!s) throw new LabError(`no lab ${lab}`);
  if (!s.nodes.some((n) => n.name === node)) throw new LabError(`lab ${lab} has no node ${node} (nodes: ${s.nodes.map((n) => n.name).join(', ')})`);
  const supervisor = await supervisorPid(lab, node);
  let pid: number;
  if (supervisor && !opts.downMs) {
    const old = agentPid(lab, node);
    if (old && isOurs(old, labMarker(lab))) await stopPid(old);
    pid = await waitForAgentPid(lab, node, old, supervisor);
  } else {
    await stopAgent(lab, node);
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    pid = await startAgent(lab, node);
  }
  await waitForAgents(lab, [node], 30_000);
  return pid;
}

/**
 * Stops a node's agent and node proxy with their supervisor, and leaves them
 * stopped (the kernel keeps the policy; steered L7 and DNS find no proxy).
 */
export async function stopAgent(lab: string, node: string): Promise<void> {
  const supervisor = await supervisorPid(lab, node);
  if (supervisor) await stopPid(supervisor, 5000);
  for (const p of NODE_PROCESSES) {
    const pid = nodePid(lab, node, p);
    if (pid && isOurs(pid, labMarker(lab))) await stopPid(pid);
  }
}
