/**
 * `lab up --datapath ebpf --bpf-attach tc` end to end (root): on a kernel
 * that has tcx, the operator's choice of clsact holds. The programs sit on
 * tc filters, pods reach each other, policy drops what it should, and a
 * restarted agent replaces its filters in place (one per hook, no tcx
 * program beside them). The CLI refuses a kind it does not know. Runs on the
 * eBPF datapath whatever $PALISADE_E2E_DATAPATH says (the default, tcx, is
 * what every other eBPF test runs on).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { labName, PALISADE, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { restartAgent } from '../../src/lab/lifecycle.ts';
import { nodeNetns } from '../../src/lab/paths.ts';
import { run } from '../../src/kernel/index.ts';

requireRoot();
const name = labName('e2etc');
let lab: TestLab;
let server = '';

const PODS = `
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec:
  nodeName: node-1
  containers: [{name: web, command: [palisade, workload, http-echo, --port, "80"], ports: [{name: http, containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: stranger, namespace: default, labels: {app: stranger}}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: clients-only, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]
`;

interface Programs {
  hook: string | null;
  programs: { endpoint: string; ifname: string; fromContainer: number; toContainer: number; current: boolean }[];
}

function datapathStatus(): Programs {
  const r = lab.cli(['status', '-o', 'json']);
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as Record<string, { datapath: Programs }>)['node-1']!.datapath;
}

/** The tc filters on a veth's hook, as `tc` lists them: the program names, one per filter. */
async function tcFilters(ifname: string, point: 'ingress' | 'egress'): Promise<string[]> {
  const r = await run('tc', ['filter', 'show', 'dev', ifname, point], { netns: nodeNetns(name, 'node-1') });
  return [...r.stdout.matchAll(/ name (\S+) /g)].map((m) => m[1]!);
}

const reaches = async (pod: string): Promise<boolean> => (await lab.curl('default', pod, `http://${server}/`)).http === '200';

before(async () => {
  lab = await startLab(name, 1, { datapath: 'ebpf', bpfAttach: 'tc' });
  lab.apply(PODS);
  const pods = JSON.parse(lab.cli(['get', 'pods', 'server', '-o', 'json']).out) as { status: { podIP: string } };
  server = pods.status.podIP;
});

after(async () => {
  await lab?.down();
});

test('--bpf-attach tc: the programs sit on clsact filters; pods connect and policy drops the stranger', async () => {
  const st = datapathStatus();
  assert.equal(st.hook, 'tc');
  const serverVeth = st.programs.find((p) => p.endpoint === 'default/server')!;
  assert.ok(serverVeth.current && serverVeth.fromContainer > 0, JSON.stringify(st.programs));
  assert.deepEqual(await tcFilters(serverVeth.ifname, 'ingress'), ['from_container']);
  assert.deepEqual(await tcFilters(serverVeth.ifname, 'egress'), ['to_container']);
  await within(5000, 'client reaches server', () => reaches('client'));
  assert.equal(await reaches('stranger'), false, 'the policy drops the stranger');
});

test('a restarted agent replaces its tc filters in place, one per hook', async () => {
  const before = datapathStatus().programs.find((p) => p.endpoint === 'default/server')!;
  await restartAgent(name, 'node-1');
  const st = datapathStatus();
  const now = st.programs.find((p) => p.endpoint === 'default/server')!;
  assert.equal(st.hook, 'tc');
  assert.ok(now.current, 'the new agent’s programs are the ones attached');
  assert.notEqual(now.fromContainer, before.fromContainer);
  assert.deepEqual(await tcFilters(now.ifname, 'ingress'), ['from_container'], 'replaced, not stacked');
  assert.ok(await reaches('client'));
  assert.equal(await reaches('stranger'), false);
});

test('lab up refuses a --bpf-attach it does not know, and one without the eBPF datapath', () => {
  for (const args of [
    ['--datapath', 'ebpf', '--bpf-attach', 'xdp'],
    ['--bpf-attach', 'tc'],
  ]) {
    const r = spawnSync(PALISADE, ['lab', 'up', '--name', `${name}x`, ...args], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--bpf-attach/);
  }
});
