/**
 * bench/lab: how long a lab takes to come up, and what its legacy datapath
 * costs in throughput.
 *
 *   1. bring-up: a 2-node lab, then 20 pods applied and running
 *   2. iperf3, one TCP stream, pod → pod across nodes with a policy in force
 *   3. the ceiling: iperf3 across a bare veth pair between two namespaces, no Palisade
 *   → the ratio of 2 to 3
 *
 * Run as root: node bench/lab/run.ts [--seconds 5] [--json]
 */
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { labDown, labUp } from '../../src/lab/lifecycle.ts';
import { silentProgress } from '../../src/lab/progress.ts';
import { podNetns } from '../../src/lab/paths.ts';
import { createNetns, deleteNetns, ipBatch } from '../../src/kernel/index.ts';
import { PROJECT_ROOT } from '../../src/lab/processes.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
const seconds = Number(values.seconds);
if (process.getuid?.() !== 0) throw new Error('bench/lab needs root');

const lab = `bench${randomBytes(2).toString('hex')}`;
const dir = mkdtempSync(`${tmpdir()}/palisade-bench-`);
const palisade = (...args: string[]): string => {
  const r = spawnSync(`${PROJECT_ROOT}bin/palisade`, [...args, '--lab', lab], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`palisade ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
};

function pods(): string {
  const docs: string[] = [];
  for (let i = 0; i < 18; i++) {
    docs.push(`apiVersion: v1\nkind: Pod\nmetadata: {name: web-${i}, namespace: default, labels: {app: web, idx: "${i}"}}\nspec: {containers: [{name: c, command: [palisade, workload, http-echo, --port, "80"]}]}`);
  }
  docs.push('apiVersion: v1\nkind: Pod\nmetadata: {name: server, namespace: default, labels: {app: iperf-server}}\nspec: {nodeName: node-1, containers: [{name: c, command: [iperf3, -s]}]}');
  docs.push('apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: default, labels: {app: iperf-client}}\nspec: {nodeName: node-2, containers: [{name: c}]}');
  return docs.join('\n---\n');
}

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: iperf, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: iperf-server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: iperf-client}}]
    toPorts: [{ports: [{port: "5201", protocol: TCP}]}]
`;

function iperf(netns: string, server: string): number {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'iperf3', '-c', server, '-t', String(seconds), '-J'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iperf3 in ${netns}: ${r.stdout.slice(0, 500)}${r.stderr}`);
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

async function bareVeth(): Promise<number> {
  const a = `pl-${lab}-bare-a`;
  const b = `pl-${lab}-bare-b`;
  await createNetns(a);
  await createNetns(b);
  await ipBatch(['link add eth0 type veth peer name eth0 netns ' + b, 'addr add 10.99.0.1/24 dev eth0', 'link set eth0 up'], a);
  await ipBatch(['addr add 10.99.0.2/24 dev eth0', 'link set eth0 up'], b);
  const server = spawn('ip', ['netns', 'exec', b, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  try {
    return iperf(a, '10.99.0.2');
  } finally {
    server.kill();
    await deleteNetns(a);
    await deleteNetns(b);
  }
}

try {
  const t0 = performance.now();
  await labUp({ name: lab, nodes: 2, datapath: 'legacy', progress: silentProgress });
  const labMs = performance.now() - t0;
  writeFileSync(`${dir}/pods.yaml`, pods());
  const t1 = performance.now();
  palisade('apply', '-f', `${dir}/pods.yaml`, '--timeout', '120s');
  const podsMs = performance.now() - t1;
  writeFileSync(`${dir}/policy.yaml`, POLICY);
  palisade('apply', '-f', `${dir}/policy.yaml`);
  const serverIp = JSON.parse(palisade('get', 'pods', 'server', '-n', 'default', '-o', 'json')).status.podIP as string;
  await new Promise((r) => setTimeout(r, 500));
  const lab1 = iperf(podNetns(lab, 'default', 'client'), serverIp);
  const bare = await bareVeth();
  const result = {
    bringUp: { labSeconds: +(labMs / 1000).toFixed(2), twentyPodsSeconds: +(podsMs / 1000).toFixed(2), totalSeconds: +((labMs + podsMs) / 1000).toFixed(2) },
    iperf3: { seconds, labAcrossNodesWithPolicyGbps: +lab1.toFixed(2), bareVethGbps: +bare.toFixed(2), ratio: +(lab1 / bare).toFixed(3) },
  };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log('bench/lab — legacy datapath');
    console.log(`  bring-up        lab ${result.bringUp.labSeconds} s + 20 pods ${result.bringUp.twentyPodsSeconds} s = ${result.bringUp.totalSeconds} s`);
    console.log(`  iperf3 (1 TCP stream, ${seconds} s)`);
    console.log(`    pod → pod across nodes, policy in force   ${result.iperf3.labAcrossNodesWithPolicyGbps} Gbit/s`);
    console.log(`    bare veth pair, no Palisade (ceiling)      ${result.iperf3.bareVethGbps} Gbit/s`);
    console.log(`    ratio                                      ${result.iperf3.ratio}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await labDown(lab);
}
