/**
 * The lab end to end (root), on the datapath $PALISADE_E2E_DATAPATH names:
 * real namespaces, agents, kernel datapath and packets. Pod→pod on one node and across nodes; a
 * CiliumNetworkPolicy and a Kubernetes NetworkPolicy allowing exactly what
 * they should; changes within 1 s; deleting restores; kubectl sees the pods;
 * an agent killed and restarted keeps enforcing and drops no allowed
 * connection; an invalid file applies nothing; lab down leaves no trace.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DATAPATH, labName, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { restartAgent, stopAgent } from '../../src/lab/lifecycle.ts';
import { agentPid } from '../../src/lab/node-processes.ts';
import { listNetns } from '../../src/kernel/index.ts';
import { bpfDir, kubeconfigPath, labDir, labMarker } from '../../src/lab/paths.ts';

requireRoot();
const rootRulesetBefore = execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
const name = labName(DATAPATH === 'ebpf' ? 'e2eebpf' : 'e2elab');
let lab: TestLab;
let ip: Record<string, string> = {};

const PODS = `
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {team: blue}}
---
apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: default, labels: {app: backend}}
spec:
  nodeName: node-1
  containers:
  - {name: web, command: [palisade, workload, http-echo, --port, "80"], ports: [{name: http, containerPort: 80}]}
  - {name: echo, command: [palisade, workload, tcp-echo, --port, "8080"]}
  - {name: iperf, command: [iperf3, -s], ports: [{name: iperf, containerPort: 5201}]}
---
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: default, labels: {app: frontend}}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client2, namespace: default, labels: {app: client2}}
spec: {nodeName: node-2, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: other, labels: {app: api}}
spec:
  nodeName: node-2
  containers: [{name: web, command: [palisade, workload, http-echo, --port, "80"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: blue-client, namespace: other, labels: {app: blue-client}}
spec: {nodeName: node-1, containers: [{name: c}]}
`;

const CNP = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: backend-from-frontend, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;

const KNP = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-default, namespace: other}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: default}}, podSelector: {matchLabels: {app: frontend}}}]
    ports: [{port: 80}]
`;

before(async () => {
  lab = await startLab(name);
  lab.apply(PODS);
  const pods = JSON.parse(lab.cli(['get', 'pods', '-A', '-o', 'json']).out) as { items: { metadata: { namespace: string; name: string }; status: { podIP: string } }[] };
  ip = Object.fromEntries(pods.items.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p.status.podIP]));
});

after(async () => {
  await lab?.down();
});

const ok = async (from: string, to: string, port = 80): Promise<boolean> => {
  const [ns = '', pod = ''] = from.split('/');
  const r = await lab.curl(ns, pod, `http://${ip[to]}:${port}/`);
  return r.http === '200';
};
const tcpOpen = (from: string, to: string, port: number): boolean => {
  const [ns = '', pod = ''] = from.split('/');
  // bash's /dev/tcp connects for real; timeout bounds a dropped SYN.
  return lab.execIn(ns, pod, ['timeout', '1', 'bash', '-c', `exec 3<>/dev/tcp/${ip[to]}/${port}`]).code === 0;
};

test('pods get addresses from their node’s range and reach each other on one node and across nodes', async () => {
  assert.match(ip['default/backend'] ?? '', /^10\.244\.1\.\d+$/);
  assert.match(ip['default/client2'] ?? '', /^10\.244\.2\.\d+$/);
  assert.ok(await ok('default/frontend', 'default/backend'), 'same node');
  assert.ok(await ok('default/client2', 'default/backend'), 'across nodes');
  assert.ok(await ok('default/frontend', 'other/api'), 'across nodes and namespaces');
  assert.ok(tcpOpen('default/client2', 'default/backend', 8080), 'tcp-echo across nodes');
  const echo = JSON.parse((await lab.curl('default', 'client2', `http://${ip['default/backend']}/who`)).body) as { client: { address: string }; pod: string };
  assert.equal(echo.client.address, ip['default/client2'], 'the backend sees the client pod’s own address (no NAT between pods)');
  assert.equal(echo.pod, 'backend');
});

test('a CiliumNetworkPolicy allows exactly what it says, within 1 s; deleting it restores traffic', async () => {
  lab.apply(CNP);
  await within(1000, 'client2 blocked after apply', async () => !tcpOpen('default/client2', 'default/backend', 80));
  assert.ok(await ok('default/frontend', 'default/backend'), 'frontend → backend:80 allowed');
  assert.ok(!tcpOpen('default/frontend', 'default/backend', 8080), 'frontend → backend:8080 is not in the rule');
  assert.ok(!tcpOpen('other/blue-client', 'default/backend', 80), 'another namespace is not frontend');
  assert.ok(!tcpOpen('default/client2', 'default/backend', 80), 'client2 across nodes is blocked');
  assert.ok(await ok('default/backend', 'other/api'), 'egress of backend is untouched');
  const status = lab.cli(['lab', 'status', '-o', 'json']);
  const drops = JSON.parse(status.out) as { agentStatus: Record<string, { drops: { endpoint: string; direction: string; reason: string; packets: number }[] }> };
  const d = drops.agentStatus['node-1']?.drops.find((x) => x.endpoint === 'default/backend' && x.direction === 'ingress' && x.reason === 'POLICY_DENIED');
  assert.ok((d?.packets ?? 0) > 0, 'drops are counted per endpoint, direction and reason');
  lab.remove(CNP);
  await within(1000, 'client2 allowed again after delete', () => Promise.resolve(tcpOpen('default/client2', 'default/backend', 80)));
});

test('a Kubernetes NetworkPolicy: namespaceSelector AND podSelector in one peer, on one port', async () => {
  lab.apply(KNP);
  await within(1000, 'client2 blocked from other/api', async () => !tcpOpen('default/client2', 'other/api', 80));
  assert.ok(await ok('default/frontend', 'other/api'), 'frontend in default is allowed');
  assert.ok(!tcpOpen('other/blue-client', 'other/api', 80), 'a pod in the policy’s own namespace is not');
  lab.remove(KNP);
  await within(1000, 'client2 allowed again', () => Promise.resolve(tcpOpen('default/client2', 'other/api', 80)));
});

test('the real kubectl lists the lab’s pods with the lab kubeconfig', () => {
  const r = spawnSync('kubectl', ['--kubeconfig', kubeconfigPath(name), 'get', 'pods', '-A'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const p of ['backend', 'frontend', 'client2', 'api', 'blue-client']) assert.match(r.stdout, new RegExp(`\\b${p}\\b`));
});

test('an agent killed keeps its policy enforced; restarted, it drops no allowed connection', async () => {
  lab.apply(CNP);
  await within(1000, 'policy in force', async () => !tcpOpen('default/client2', 'default/backend', 80));
  await stopAgent(name, 'node-1');
  assert.ok(!tcpOpen('default/client2', 'default/backend', 80), 'still blocked with the agent gone');
  assert.ok(await ok('default/frontend', 'default/backend'), 'still allowed with the agent gone');
  // Restart while a client keeps connecting: every allowed connection succeeds.
  let stop = false;
  const results: string[] = [];
  const loop = (async () => {
    while (!stop) results.push((await lab.curl('default', 'frontend', `http://${ip['default/backend']}/`)).http);
  })();
  await restartAgent(name, 'node-1');
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await loop;
  assert.ok(results.length >= 5, `made ${results.length} connections during the restart`);
  assert.deepEqual(results.filter((c) => c !== '200'), [], 'no allowed connection failed');
  assert.ok(!tcpOpen('default/client2', 'default/backend', 80), 'still blocked after the restart');
  lab.remove(CNP);
});

test('an agent restart during an iperf3 stream: the stream goes on, policy stays enforced', async () => {
  const policy = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: iperf-from-client2, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client2}}]
    toPorts: [{ports: [{port: "5201", protocol: TCP}]}]
`;
  lab.apply(policy);
  await within(1000, 'frontend blocked on 5201', async () => !tcpOpen('default/frontend', 'default/backend', 5201));
  const stream = lab.execInAsync('default', 'client2', ['iperf3', '-c', ip['default/backend'] ?? '', '-t', '6', '-i', '1', '-J']);
  await new Promise((r) => setTimeout(r, 1500));
  await restartAgent(name, 'node-1');
  const r = await stream;
  assert.equal(r.code, 0, `iperf3 failed: ${r.out.slice(0, 300)}${r.err}`);
  const report = JSON.parse(r.out) as { intervals: { sum: { bits_per_second: number } }[] };
  const rates = report.intervals.map((i) => i.sum.bits_per_second).sort((a, b) => a - b);
  const slowest = rates[0] ?? 0;
  const median = rates[Math.floor(rates.length / 2)] ?? 0;
  // "Goes on": no second of the restart stalls the stream. A second at a tenth of
  // the stream's own median is a stall (any bit at all once passed for one).
  assert.ok(rates.length >= 5, `${rates.length} one-second intervals`);
  assert.ok(slowest >= median / 10, `every second of the stream kept at least a tenth of its median rate (slowest ${slowest} bit/s, median ${median} bit/s)`);
  assert.ok(!tcpOpen('default/frontend', 'default/backend', 5201), 'still blocked after the restart');
  lab.remove(policy);
});

test('an agent killed with SIGKILL is running again within 1 s (its supervisor restarts it), ready and enforcing; lab status counts the restart', async () => {
  const restartsOf = (): number => {
    const j = JSON.parse(lab.cli(['lab', 'status', '-o', 'json']).out) as { agentRestarts: Record<string, { restarts: number; lastExit?: { signal: string | null } } | null> };
    return j.agentRestarts['node-1']?.restarts ?? -1;
  };
  const before = restartsOf();
  assert.ok(before >= 0, 'lab status reports restarts');
  const old = agentPid(name, 'node-1');
  assert.ok(old > 0 && existsSync(`/proc/${old}`));
  process.kill(old, 'SIGKILL');
  const tookMs = await within(1000, 'a new agent process', async () => {
    const pid = agentPid(name, 'node-1');
    return pid !== old && pid > 0 && existsSync(`/proc/${pid}`);
  });
  await within(30_000, 'the new agent ready', async () => lab.cli(['lab', 'status']).code === 0);
  const status = lab.cli(['lab', 'status']);
  assert.match(status.out, new RegExp(`node-1 .*restarts ${before + 1} \\(last: killed by SIGKILL`), status.out);
  assert.equal(restartsOf(), before + 1);
  assert.ok(await ok('default/frontend', 'default/backend'), 'allowed traffic flows');
  console.log(`# agent process back ${tookMs} ms after SIGKILL`);
});

test('apply of a file with one invalid object names its field path and applies nothing', () => {
  const bad = `
apiVersion: v1
kind: Pod
metadata: {name: should-not-exist, namespace: default}
spec: {containers: [{name: c}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: broken, namespace: default}
spec:
  endpointSelector: {}
  egress:
  - toFQDNs: [{matchPattern: "bad%name"}]
`;
  const r = lab.cli(['apply', '-f', '-'], bad);
  assert.equal(r.code, 1);
  assert.match(r.out + r.err, /#2 spec\.egress\[0\]\.toFQDNs\[0\]\.matchPattern: '%' is not allowed/);
  const pods = lab.cli(['get', 'pods', '-n', 'default', '-o', 'name']).out;
  assert.doesNotMatch(pods, /should-not-exist/);
});

test('lab down leaves no trace: namespaces, files, pins, processes, root ruleset', async () => {
  const pids = Object.values(lab.state.agents).map((a) => a.pid);
  await lab.down();
  assert.deepEqual(listNetns(`pl-${name}-`), []);
  assert.equal(existsSync(labDir(name)), false);
  assert.equal(existsSync(bpfDir(name)), false);
  const stray = spawnSync('pgrep', ['-f', labMarker(name)], { encoding: 'utf8' }).stdout.trim();
  assert.equal(stray, '', 'no process of the lab is left');
  for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false);
  assert.equal(execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }), rootRulesetBefore, 'the root namespace ruleset is unchanged');
});
