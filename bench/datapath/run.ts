/**
 * bench/datapath: legacy vs eBPF host routing, in real labs, one run.
 *
 *   for each datapath (legacy, ebpf): a 2-node lab, a server pod on node-1 (iperf3,
 *   sockperf), a client on node-1 (same node) and one on node-2 (across nodes), a
 *   CiliumNetworkPolicy in force, and 2,000 kube-proxy-style non-matching rules in
 *   each node's nftables forward path (the netfilter load eBPF host routing bypasses)
 *   → iperf3 TCP throughput with 1 and 8 streams, sockperf ping-pong transactions/s
 *   the ceiling: a bare veth pair between two namespaces, no Palisade
 *   → ratios: eBPF / legacy across nodes (target ≥ 1.3), eBPF / ceiling (target ≥ 0.9)
 *
 * Run as root: node bench/datapath/run.ts [--seconds 3] [--json]
 */
import { spawn, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { labDown, labUp } from '../../src/lab/lifecycle.ts';
import { silentProgress } from '../../src/lab/progress.ts';
import { nodeNetns, podNetns } from '../../src/lab/paths.ts';
import { createNetns, deleteNetns, ipBatch, nft } from '../../src/datapath/index.ts';
import { PROJECT_ROOT } from '../../src/lab/processes.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, json: { type: 'boolean', default: false } } });
const seconds = Number(values.seconds);
if (process.getuid?.() !== 0) throw new Error('bench/datapath needs root');

const PODS = `
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec:
  nodeName: node-1
  containers:
  - {name: iperf, command: [iperf3, -s], ports: [{name: iperf, containerPort: 5201}]}
  - {name: rr, command: [sockperf, server, --tcp, -p, "7001"], ports: [{name: rr, containerPort: 7001}]}
---
apiVersion: v1
kind: Pod
metadata: {name: near, namespace: default, labels: {app: client}}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: far, namespace: default, labels: {app: client}}
spec: {nodeName: node-2, containers: [{name: c}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: clients-only, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "5201", protocol: TCP}, {port: "7001", protocol: TCP}]}]
`;

/** 2,000 rules of the shape kube-proxy writes (one per service port), none of which match pod traffic. */
function kubeProxyLikeRules(): string {
  const rules: string[] = [];
  for (let i = 0; i < 2000; i++) rules.push(`    ip daddr 10.111.${i >> 8}.${i & 255} tcp dport ${1000 + (i % 1000)} counter accept`);
  return `table ip pl_bench_kubeproxy {\n  chain forward {\n    type filter hook forward priority filter - 5; policy accept;\n${rules.join('\n')}\n  }\n}\n`;
}

function iperf(netns: string, server: string, streams: number): number {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'iperf3', '-c', server, '-t', String(seconds), '-P', String(streams), '-J'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iperf3: ${r.stdout.slice(0, 300)}${r.stderr}`);
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

/** sockperf ping-pong: transactions per second (one outstanding request at a time). */
function rr(netns: string, server: string): number {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'sockperf', 'ping-pong', '--tcp', '-i', server, '-p', '7001', '-t', String(seconds)], { encoding: 'utf8' });
  const m = /avg-latency=([\d.]+)/.exec(r.stdout) ?? /avg-rtt=([\d.]+)/.exec(r.stdout);
  if (!m?.[1]) throw new Error(`sockperf: ${r.stdout.slice(-400)}${r.stderr}`);
  // sockperf reports one-way latency (half the round trip) in µs.
  return Math.round(1e6 / (2 * Number(m[1])));
}

interface Row {
  setup: string;
  path: string;
  gbps1: number;
  gbps8: number;
  rrPerSec: number;
}

async function measureLab(datapath: 'legacy' | 'ebpf', dir: string): Promise<Row[]> {
  const lab = `bd${datapath === 'ebpf' ? 'e' : 'l'}${randomBytes(2).toString('hex')}`;
  try {
    await labUp({ name: lab, nodes: 2, datapath, progress: silentProgress });
    writeFileSync(`${dir}/pods.yaml`, PODS);
    const r = spawnSync(`${PROJECT_ROOT}bin/palisade`, ['apply', '--lab', lab, '-f', `${dir}/pods.yaml`, '--timeout', '60s'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stdout + r.stderr);
    const get = spawnSync(`${PROJECT_ROOT}bin/palisade`, ['get', 'pods', 'server', '--lab', lab, '-o', 'json'], { encoding: 'utf8' });
    const server = (JSON.parse(get.stdout) as { status: { podIP: string } }).status.podIP;
    await new Promise((res) => setTimeout(res, 500));
    const rows: Row[] = [];
    // First without the extra rules, to show what they cost each datapath (one stream).
    for (const [path, pod] of [['same node', 'near'], ['across nodes', 'far']] as const) {
      rows.push({ setup: `${datapath}, no extra rules`, path, gbps1: iperf(podNetns(lab, 'default', pod), server, 1), gbps8: NaN, rrPerSec: NaN });
    }
    for (const n of ['node-1', 'node-2']) await nft(kubeProxyLikeRules(), nodeNetns(lab, n));
    for (const [path, pod] of [['same node', 'near'], ['across nodes', 'far']] as const) {
      const ns = podNetns(lab, 'default', pod);
      rows.push({ setup: `${datapath} + 2,000 rules`, path, gbps1: iperf(ns, server, 1), gbps8: iperf(ns, server, 8), rrPerSec: rr(ns, server) });
    }
    return rows;
  } finally {
    await labDown(lab);
  }
}

async function measureBare(): Promise<Row> {
  const tag = `bv${randomBytes(2).toString('hex')}`;
  const a = `pl-${tag}-bare-a`;
  const b = `pl-${tag}-bare-b`;
  await createNetns(a);
  await createNetns(b);
  const servers = [spawn('ip', ['netns', 'exec', b, 'iperf3', '-s'], { stdio: 'ignore' }), spawn('ip', ['netns', 'exec', b, 'sockperf', 'server', '--tcp', '-p', '7001'], { stdio: 'ignore' })];
  try {
    await ipBatch([`link add eth0 type veth peer name eth0 netns ${b}`, 'addr add 10.99.0.1/24 dev eth0', 'link set eth0 up'], a);
    await ipBatch(['addr add 10.99.0.2/24 dev eth0', 'link set eth0 up', 'link set lo up'], b);
    await new Promise((res) => setTimeout(res, 500));
    return { setup: 'bare veth pair (ceiling)', path: 'one hop', gbps1: iperf(a, '10.99.0.2', 1), gbps8: iperf(a, '10.99.0.2', 8), rrPerSec: rr(a, '10.99.0.2') };
  } finally {
    for (const s of servers) s.kill();
    await deleteNetns(a);
    await deleteNetns(b);
  }
}

const dir = mkdtempSync(`${tmpdir()}/palisade-bench-dp-`);
try {
  const rows = [...(await measureLab('legacy', dir)), ...(await measureLab('ebpf', dir)), await measureBare()];
  const find = (setup: string, path: string): Row => rows.find((r) => r.setup === setup && r.path === path)!;
  const across = find('ebpf + 2,000 rules', 'across nodes').gbps1 / find('legacy + 2,000 rules', 'across nodes').gbps1;
  const ceiling = find('ebpf + 2,000 rules', 'same node').gbps1 / rows[rows.length - 1]!.gbps1;
  const cost = (dp: string, path: string): number => 1 - find(`${dp} + 2,000 rules`, path).gbps1 / find(`${dp}, no extra rules`, path).gbps1;
  if (values.json) console.log(JSON.stringify({ seconds, rows, ratios: { ebpfOverLegacyAcrossNodes: across, ebpfSameNodeOverCeiling: ceiling, rulesCostLegacyAcross: cost('legacy', 'across nodes'), rulesCostEbpfAcross: cost('ebpf', 'across nodes') } }));
  else {
    console.log(`bench/datapath — iperf3 ${seconds} s per run; policy in force; 2,000 non-matching forward rules per node`);
    console.log(`  ${'setup'.padEnd(26)} ${'path'.padEnd(13)} ${'1 stream'.padStart(12)} ${'8 streams'.padStart(12)} ${'req/resp'.padStart(12)}`);
    for (const r of rows) {
      const cell = (v: number, unit: string, digits = 2): string => (Number.isNaN(v) ? '—' : `${unit === '/s' ? v.toLocaleString() : v.toFixed(digits)}${unit}`).padStart(12);
      console.log(`  ${r.setup.padEnd(26)} ${r.path.padEnd(13)} ${cell(r.gbps1, ' Gb/s')} ${cell(r.gbps8, ' Gb/s')} ${cell(r.rrPerSec, '/s')}`);
    }
    for (const dp of ['legacy', 'ebpf']) {
      console.log(`  what 2,000 forward rules cost ${dp.padEnd(6)}: same node ${(cost(dp, 'same node') * 100).toFixed(0)} %, across nodes ${(cost(dp, 'across nodes') * 100).toFixed(0)} %`);
    }
    console.log(`  eBPF / legacy, across nodes, 1 stream: ${across.toFixed(2)}× (target ≥ 1.3)  ${across >= 1.3 ? 'PASS' : 'FAIL'}`);
    console.log(`  eBPF same node / bare veth ceiling:    ${(ceiling * 100).toFixed(0)} % (target ≥ 90 %)  ${ceiling >= 0.9 ? 'PASS' : 'FAIL'}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
