/**
 * Test and benchmark support: a two-node mini cluster made of network
 * namespaces, without the rest of the lab, each node's datapath (legacy or
 * eBPF, one mode per lab) owned by a datapath-node-agent.ts process running
 * inside the node namespace.
 *
 *   pl-<id>-fabric   br0 172.31.0.1/24
 *     ├─ pl-<id>-node-1   eth0 172.31.0.11   pods 10.244.1.0/24: a, b
 *     └─ pl-<id>-node-2   eth0 172.31.0.12   pods 10.244.2.0/24: c
 *   the "world": addresses of TEST-NET-2 (198.51.100.0/24) on the fabric's lo
 *
 * <id> is the lab's prefix (`eb`, `lg` or the caller's) and random hex.
 * Hygiene: every namespace is `pl-<id>-…`, eBPF pins live under
 * /sys/fs/bpf/palisade/<id>/, and destroy() kills the processes it
 * started (by pid), deletes the namespaces and removes the pins — call it
 * in `after`/`finally`. Nothing here touches the root network namespace.
 */
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, rmdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { run } from '../../src/kernel/exec.ts';
import { createNetns, deleteNetns, listNetns } from '../../src/kernel/netns.ts';
import { buildLabNetwork } from '../../src/lab/lab-network.ts';
import { hostIfname, POD_GATEWAY } from '../../src/cni/pod-wiring.ts';
import type { DatapathMode, LocalEndpoint, NodeNetwork, PeerNode } from '../../src/datapath/types.ts';
import { isBpffs, removePinDir } from '../../src/datapath/ebpf/bpffs.ts';
import { buildBpfObject } from '../../src/datapath/ebpf/build.ts';
import type { World } from './datapath-node-agent.ts';

const AGENT_SCRIPT = fileURLToPath(new URL('./datapath-node-agent.ts', import.meta.url));
const RAW_IP = fileURLToPath(new URL('../e2e/fixtures/raw-ip.py', import.meta.url));
export const BPFFS = '/sys/fs/bpf';

export interface TestPod {
  name: string;
  node: string;
  ip: string;
  labels: Record<string, string>;
  netns: string;
  hostIfname: string;
  ports?: { name: string; containerPort: number }[];
}

export interface TestNode {
  name: string;
  netns: string;
  ip: string;
  podCIDR: string;
}

/** Fails loudly: these tests need root and must never be skipped silently. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('privileged datapath tests must run as root (they create network namespaces, nftables and BPF programs)');
}

/** Mounts bpffs at /sys/fs/bpf when it is not there (root mount namespace; no network change). */
export function ensureBpffs(): boolean {
  if (isBpffs(BPFFS)) return false;
  execFileSync('mount', ['-t', 'bpf', 'bpf', BPFFS]);
  return true;
}

/** A node's datapath process: commands in, answers out. */
export class NodeAgent {
  readonly child: ChildProcess;
  readonly pid: number;
  #next = 1;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #stderr: string[] = [];
  readonly ready: Promise<void>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.pid = child.pid!;
    let onReady: () => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${this.#stderr.join('')}`)));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { id?: number; result?: unknown; error?: string; ready?: boolean };
      if (m.ready) onReady();
      if (m.id === undefined) return;
      const w = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(`agent: ${m.error}\n${this.#stderr.join('')}`));
      else w?.resolve(m.result);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => this.#stderr.push(d));
    child.on('exit', () => {
      for (const w of this.#waiting.values()) w.reject(new Error(`agent exited\n${this.#stderr.join('')}`));
      this.#waiting.clear();
    });
  }

  /** `bpffsFd` < 0: no bpffs (the legacy datapath). */
  static async start(netns: string, mode: DatapathMode, pinDir: string, bpffsFd: number): Promise<NodeAgent> {
    // ip netns exec hides /sys/fs/bpf (it remounts /sys): the host's bpffs goes in as fd 3.
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--disable-warning=ExperimentalWarning', AGENT_SCRIPT, mode, pinDir], {
      stdio: bpffsFd >= 0 ? ['pipe', 'pipe', 'pipe', bpffsFd] : ['pipe', 'pipe', 'pipe'],
    });
    const agent = new NodeAgent(child);
    await agent.ready;
    return agent;
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(JSON.stringify({ id, cmd, ...args }) + '\n');
    });
  }

  /** SIGKILL: the datapath process dies without any cleanup, as a crashed agent would. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }
}

const SERVER = `
const net = require('node:net');
const [name, ...ports] = process.argv.slice(1);
let pending = ports.length;
for (const p of ports) net.createServer((s) => {
  s.on('error', () => {});
  s.write(name + ' ' + s.remoteAddress + '\\n');
  s.on('data', (d) => s.write(d));
}).listen(Number(p), '0.0.0.0', () => { if (--pending === 0) console.log('listening'); });`;

const UDP_ECHO = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (d, r) => s.send(d, r.port, r.address));
s.bind(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));`;

const PERSISTENT_CLIENT = `
const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
s.on('error', (e) => { console.error(e.message); process.exit(1); });
s.pipe(process.stdout);
process.stdin.pipe(s);`;

const UDP_RECORDER = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (d, r) => { console.log(r.address + ' ' + d.toString()); s.send(d, r.port, r.address); });
s.bind(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));`;

export interface TestLabOptions {
  /**
   * The start of the lab's id (namespaces `pl-<id>-…`, pins `palisade/<id>/`); default `eb` (eBPF) or `lg` (legacy).
   * `$PL_TEST_LAB_PREFIX` overrides it, so concurrent runs on a shared machine keep their own names.
   */
  idPrefix?: string;
}

export class DatapathTestLab {
  readonly mode: DatapathMode;
  readonly id: string;
  readonly prefix: string;
  readonly fabric: string;
  readonly pinRoot: string;
  readonly nodes: TestNode[];
  readonly pods: TestPod[];
  readonly #children = new Set<ChildProcess>();
  readonly #agents = new Set<NodeAgent>();
  #bpffsFd = -1;

  constructor(mode: DatapathMode = 'ebpf', options: TestLabOptions = {}) {
    this.mode = mode;
    this.id = `${process.env['PL_TEST_LAB_PREFIX'] ?? options.idPrefix ?? (mode === 'ebpf' ? 'eb' : 'lg')}${randomBytes(3).toString('hex')}`;
    this.prefix = `pl-${this.id}-`;
    this.fabric = `${this.prefix}fabric`;
    this.pinRoot = `${BPFFS}/palisade/${this.id}`;
    this.nodes = [1, 2].map((n) => ({ name: `node-${n}`, netns: `${this.prefix}node-${n}`, ip: `172.31.0.${10 + n}`, podCIDR: `10.244.${n}.0/24` }));
    const pod = (name: string, node: number, ip: string, labels: Record<string, string>, ports?: TestPod['ports']): TestPod => ({
      name,
      node: `node-${node}`,
      ip,
      labels,
      netns: `${this.prefix}pod-default-${name}`,
      hostIfname: hostIfname(`${this.id}-${name}`),
      ...(ports ? { ports } : {}),
    });
    this.pods = [
      pod('a', 1, '10.244.1.10', { app: 'a' }),
      pod('b', 1, '10.244.1.11', { app: 'web' }, [{ name: 'http', containerPort: 8080 }]),
      pod('c', 2, '10.244.2.10', { app: 'c' }, [{ name: 'http', containerPort: 8080 }]),
    ];
  }

  node(name: string): TestNode {
    return this.nodes.find((n) => n.name === name)!;
  }

  pod(name: string): TestPod {
    return this.pods.find((p) => p.name === name)!;
  }

  pinDirOf(node: string): string {
    // As the agent process sees the host's bpffs: through the fd it inherited.
    return `/proc/self/fd/3/palisade/${this.id}/${node}`;
  }

  networkOf(node: TestNode): NodeNetwork {
    return { name: node.name, underlayIp: node.ip, underlayIf: 'eth0', underlayCIDR: '172.31.0.0/24', podCIDR: node.podCIDR, clusterPodCIDR: '10.244.0.0/16' };
  }

  peersOf(node: TestNode): PeerNode[] {
    return this.nodes.filter((n) => n !== node).map((n) => ({ name: n.name, ip: n.ip, podCIDR: n.podCIDR }));
  }

  /** Namespaces, underlay, pods (wired by each node's agent) and node setup. Returns the agents. */
  async create(): Promise<Map<string, NodeAgent>> {
    requireRoot();
    if (this.mode === 'ebpf') {
      buildBpfObject();
      ensureBpffs();
      this.#bpffsFd = openSync(BPFFS, 'r');
    }
    await buildLabNetwork({
      fabricNetns: this.fabric,
      fabricIp: '172.31.0.1',
      underlayPrefix: 24,
      nodes: this.nodes.map((n) => ({ name: n.name, netns: n.netns, underlayIp: n.ip, podCIDR: n.podCIDR })),
    });
    // Independent steps side by side: a test run's set-up time counts in CI.
    const [started] = await Promise.all([
      Promise.all(this.nodes.map(async (n) => [n.name, await this.startAgent(n.name)] as const)),
      Promise.all(this.pods.map((p) => createNetns(p.netns))),
    ]);
    const agents = new Map<string, NodeAgent>(started);
    await Promise.all(
      this.pods.map((p) =>
        agents.get(p.node)!.call('wire', { pod: { podNetns: p.netns, ifname: 'eth0', hostIfname: p.hostIfname, ip: p.ip, gateway: POD_GATEWAY } }),
      ),
    );
    await Promise.all(this.nodes.map((n) => agents.get(n.name)!.call('setup', { node: this.networkOf(n), peers: this.peersOf(n) })));
    return agents;
  }

  async startAgent(node: string): Promise<NodeAgent> {
    const a = await NodeAgent.start(this.node(node).netns, this.mode, this.pinDirOf(node), this.#bpffsFd);
    this.#agents.add(a);
    return a;
  }

  /** The state an agent on `node` would apply (`extra`: proxies, FQDN-learned addresses). */
  world(node: string, policies: object[] = [], services: World['services'] = [], extra: Pick<World, 'httpProxyPort' | 'dnsProxyPort' | 'learned'> = {}): World {
    const n = this.node(node);
    const objects = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', labels: {} } },
      ...this.pods.map((p) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: p.name, namespace: 'default', labels: p.labels },
        spec: { nodeName: p.node, containers: [{ name: 'c', ...(p.ports ? { ports: p.ports } : {}) }] },
        status: { podIP: p.ip },
      })),
      ...policies,
    ];
    const localEndpoints: LocalEndpoint[] = this.pods
      .filter((p) => p.node === node)
      .map((p) => ({ key: `default/${p.name}`, ip: p.ip, hostIfname: p.hostIfname, containerId: `${this.id}-${p.name}` }));
    return {
      objects: objects as World['objects'],
      services,
      localEndpoints,
      ownAddresses: [n.ip],
      peerAddresses: this.nodes.filter((x) => x !== n).map((x) => x.ip),
      ...extra,
    };
  }

  /** A server outside the cluster: `ips` on the fabric's lo (nodes reach it by their default route), greeting `world <client>`. */
  async startWorldServer(ips: string[], ports: number[]): Promise<void> {
    for (const ip of ips) await run('ip', ['-n', this.fabric, 'addr', 'add', `${ip}/32`, 'dev', 'lo'], { allowFailure: true });
    await run('ip', ['-n', this.fabric, 'link', 'set', 'lo', 'up']);
    const child = spawn('ip', ['netns', 'exec', this.fabric, process.execPath, '-e', SERVER, 'world', ...ports.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#children.add(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (c) => reject(new Error(`world server exited ${c}`)));
    });
  }

  /**
   * One UDP datagram from a pod and the answer: its text and the address it
   * came from, or null. `size`: the datagram carries that many bytes ('q's)
   * instead of "question" (above 1,472 the pod's stack fragments it).
   */
  async udpAsk(from: string, ip: string, port: number, timeoutS = 1.5, size?: number): Promise<{ reply: string; from: string } | null> {
    const py = [
      'import socket',
      's=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      `s.settimeout(${timeoutS})`,
      `s.sendto(${size === undefined ? "b'question'" : `b'q'*${size}`}, ('${ip}', ${port}))`,
      'try:',
      '  d,a=s.recvfrom(65535)',
      "  print(a[0]+':'+str(a[1])+' '+d.decode())",
      'except Exception as e:',
      "  print('timeout')",
    ].join('\n');
    const r = await run('ip', ['netns', 'exec', this.pod(from).netns, 'python3', '-c', py], { allowFailure: true });
    const line = r.stdout.trim();
    if (!line || line === 'timeout') return null;
    const sp = line.indexOf(' ');
    return { from: line.slice(0, sp), reply: line.slice(sp + 1) };
  }

  /** A TCP server in a pod greeting with `<pod> <client address>` and echoing, on each port. */
  async startServer(pod: string, ports: number[]): Promise<void> {
    const p = this.pod(pod);
    const child = spawn('ip', ['netns', 'exec', p.netns, process.execPath, '-e', SERVER, p.name, ...ports.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#children.add(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (c) => reject(new Error(`server in ${pod} exited ${c}`)));
    });
  }

  /**
   * A UDP server in a pod that notes every datagram (`<source address> <text>`,
   * read with the returned function, which clears the list) and sends it back.
   */
  async startUdpRecorder(pod: string, port: number): Promise<() => string[]> {
    const child = spawn('ip', ['netns', 'exec', this.pod(pod).netns, process.execPath, '-e', UDP_RECORDER, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#children.add(child);
    const lines: string[] = [];
    const rl = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      rl.once('line', () => resolve());
      child.once('exit', (c) => reject(new Error(`UDP recorder in ${pod} exited ${c}`)));
    });
    rl.on('line', (l) => lines.push(l));
    return () => lines.splice(0);
  }

  /** A UDP server in a pod sending every datagram back to its sender. */
  async startUdpEcho(pod: string, port: number): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', this.pod(pod).netns, process.execPath, '-e', UDP_ECHO, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#children.add(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (c) => reject(new Error(`UDP echo in ${pod} exited ${c}`)));
    });
  }

  /** `ping -c count -s size` from a pod: how many answers came back. */
  async ping(from: string, ip: string, size: number, count = 2): Promise<number> {
    const r = await run('ip', ['netns', 'exec', this.pod(from).netns, 'ping', '-c', String(count), '-i', '0.2', '-W', '1', '-s', String(size), ip], { allowFailure: true });
    return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
  }

  /** The hostile-packet writer (test/e2e/fixtures/raw-ip.py) run in a pod or node namespace: its JSON answer. */
  async rawIp(netns: string, args: string[]): Promise<Record<string, unknown>> {
    const r = await run('ip', ['netns', 'exec', netns, 'python3', RAW_IP, ...args]);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  /** One TCP connection from a pod: the server's greeting line, or null when it did not connect in time. */
  async connect(from: string, ip: string, port: number, timeoutS = 2): Promise<string | null> {
    const r = await run(
      'ip',
      ['netns', 'exec', this.pod(from).netns, 'timeout', String(timeoutS), 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}; head -n1 <&3`],
      { allowFailure: true },
    );
    return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : null;
  }

  /**
   * One TCP connection from a pod to an echo server (startServer): reads the
   * greeting, sends `bytes` and reads them back. The bytes echoed, or null
   * when it could not connect or the echo fell short within `timeoutS`.
   */
  async echoBytes(from: string, ip: string, port: number, bytes: number, timeoutS = 10): Promise<number | null> {
    const py = [
      'import socket,sys',
      `s=socket.create_connection(('${ip}',${port}),timeout=${timeoutS})`,
      'f=s.makefile("rb")',
      'f.readline()',
      `n=${bytes}`,
      'got=0',
      "chunk=b'x'*65536",
      'sent=0',
      'while sent<n:',
      '  k=min(len(chunk),n-sent); s.sendall(chunk[:k]); sent+=k',
      '  while got<sent-262144:',
      '    d=f.read1(65536)',
      '    if not d: break',
      '    got+=len(d)',
      'while got<n:',
      '  d=f.read1(65536)',
      '  if not d: break',
      '  got+=len(d)',
      'print(got)',
    ].join('\n');
    const r = await run('ip', ['netns', 'exec', this.pod(from).netns, 'timeout', String(timeoutS), 'python3', '-c', py], { allowFailure: true });
    const got = Number(r.stdout.trim());
    return r.code === 0 && got === bytes ? got : null;
  }

  /** A long-lived connection from a pod: send a line, get its echo (or null on timeout). */
  async openConnection(from: string, ip: string, port: number): Promise<{ echo(line: string, timeoutMs?: number): Promise<string | null>; close(): void }> {
    const child = spawn('ip', ['netns', 'exec', this.pod(from).netns, process.execPath, '-e', PERSISTENT_CLIENT, ip, String(port)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#children.add(child);
    const lines: string[] = [];
    const waiters: (() => void)[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      lines.push(l);
      for (const w of waiters.splice(0)) w();
    });
    const nextLine = (timeoutMs: number): Promise<string | null> =>
      new Promise((resolve) => {
        if (lines.length) return resolve(lines.shift()!);
        const t = setTimeout(() => resolve(null), timeoutMs);
        waiters.push(() => {
          clearTimeout(t);
          resolve(lines.shift() ?? null);
        });
      });
    const greeting = await nextLine(3000);
    if (greeting === null) throw new Error(`no connection from ${from} to ${ip}:${port}`);
    return {
      echo: async (line, timeoutMs = 2000) => {
        child.stdin!.write(line + '\n');
        return nextLine(timeoutMs);
      },
      close: () => {
        child.kill('SIGKILL');
        this.#children.delete(child);
      },
    };
  }

  /** A TCP connect from an address the pod does not own (added to its eth0 for the occasion). */
  async connectSpoofed(from: string, spoofedIp: string, ip: string, port: number): Promise<boolean> {
    const netns = this.pod(from).netns;
    await run('ip', ['-n', netns, 'addr', 'add', `${spoofedIp}/32`, 'dev', 'eth0'], { allowFailure: true });
    const py = `import socket,sys\ns=socket.socket()\ns.bind(('${spoofedIp}',0))\ns.settimeout(1.5)\ntry:\n  s.connect(('${ip}',${port}))\n  print('connected')\nexcept Exception as e:\n  print('failed', e)`;
    const r = await run('ip', ['netns', 'exec', netns, 'python3', '-c', py], { allowFailure: true });
    await run('ip', ['-n', netns, 'addr', 'del', `${spoofedIp}/32`, 'dev', 'eth0'], { allowFailure: true });
    return r.stdout.includes('connected');
  }

  /** iperf3 for `seconds` from one pod to another: bits per second received. */
  async iperf(from: string, to: string, seconds = 2): Promise<number> {
    const server = spawn('ip', ['netns', 'exec', this.pod(to).netns, 'iperf3', '-s', '-1', '-B', this.pod(to).ip, '-p', '5201'], { stdio: 'ignore' });
    this.#children.add(server);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await run('ip', ['netns', 'exec', this.pod(from).netns, 'iperf3', '-c', this.pod(to).ip, '-p', '5201', '-t', String(seconds), '--connect-timeout', '3000', '-J'], { allowFailure: true });
      const doc = JSON.parse(r.stdout) as { error?: string; end?: { sum_received?: { bits_per_second: number } } };
      const bps = doc.end?.sum_received?.bits_per_second;
      if (bps === undefined) throw new Error(`iperf3 ${from} → ${to}: ${doc.error ?? r.stdout.slice(0, 500)}`);
      return bps;
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      this.#children.delete(server);
    }
  }

  /** 2,000 rules in a forward chain of the node that match nothing the test sends. */
  async addDummyForwardRules(node: string, count = 2000): Promise<void> {
    const lines = ['table inet pl_bench {', '  chain forward {', '    type filter hook forward priority filter; policy accept;'];
    for (let i = 0; i < count; i++) lines.push(`    ip saddr 192.0.2.${i % 250} tcp dport ${10000 + i} counter drop`);
    lines.push('  }', '}');
    await run('nft', ['-f', '-'], { input: lines.join('\n') + '\n', netns: this.node(node).netns });
  }

  async destroy(): Promise<void> {
    for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    this.#children.clear();
    for (const a of this.#agents) await a.kill().catch(() => {});
    this.#agents.clear();
    // Pods, nodes, fabric: only ours, by prefix.
    for (const n of listNetns(this.prefix).sort((a, b) => order(a) - order(b))) await deleteNetns(n);
    if (this.mode === 'ebpf') {
      removePinDir(this.pinRoot);
      try {
        if (existsSync(`${BPFFS}/palisade`) && readdirSync(`${BPFFS}/palisade`).length === 0) rmdirSync(`${BPFFS}/palisade`);
      } catch {
        // another lab's pins appeared meanwhile
      }
    }
    if (this.#bpffsFd >= 0) closeSync(this.#bpffsFd);
    this.#bpffsFd = -1;
  }
}

const order = (n: string): number => (n.includes('-pod-') ? 0 : n.endsWith('-fabric') ? 2 : 1);
