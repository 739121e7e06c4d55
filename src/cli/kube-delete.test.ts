/**
 * `palisade delete` against kubectl delete: each case runs the machine's real
 * kubectl and then palisade on the same objects of the same API server, and
 * both must print the same stdout and stderr and exit alike. kubectl is
 * required (never skipped). The cases avoid Namespaces (palisade deletes them
 * last) and faulty manifests (palisade deletes nothing then; kubectl deletes
 * the other objects): those differences are tested in kube-delete-label.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startKubeTestLab, type KubeTestLab, type RunResult } from '../../test/kit/kube.ts';

const KUBECTL = process.env.PALISADE_KUBECTL ?? '/usr/bin/kubectl';

const OBJECTS = `apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {containers: [{name: c}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec: {podSelector: {}}
`;

/** The same objects, named and nothing else: kubectl deletes from such a manifest, and so must palisade. */
const NAMES_ONLY = `apiVersion: v1
kind: Pod
metadata: {name: a}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cnp}
`;

const CLUSTERWIDE = 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: cw, namespace: default}\n';

let lab: KubeTestLab;
let objects: string;
before(async () => {
  lab = await startKubeTestLab();
  objects = await lab.file('objects.yaml', OBJECTS);
  await lab.file('names-only.yaml', NAMES_ONLY);
  await lab.file('clusterwide.yaml', CLUSTERWIDE);
});
after(() => lab.close());

function kubectl(args: string[], stdin?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(KUBECTL, ['--kubeconfig', lab.kubeconfig, '--cache-dir', join(lab.dir, 'kcache'), ...args],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: lab.dir }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    child.stdin?.end(stdin ?? '');
  });
}

/** Puts the lab in a known state: exactly the named pods and policies exist. */
async function given(pods: string[], policies: string[], cnps: string[] = []): Promise<void> {
  const paths = ['/api/v1/namespaces/default/pods', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies'];
  for (const path of paths) {
    const list = await lab.call('GET', path);
    for (const item of list.body.items) await lab.call('DELETE', `${path}/${item.metadata.name}`);
  }
  for (const name of pods) await lab.call('POST', paths[0]!, { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c' }] } });
  for (const name of policies) await lab.call('POST', paths[1]!, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name }, spec: { podSelector: {} } });
  for (const name of cnps) await lab.call('POST', paths[2]!, { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name }, spec: { endpointSelector: {} } });
}

interface Case {
  name: string;
  args: (dir: string) => string[];
  state: () => Promise<void>;
  stdin?: string;
  /** What both print and exit with (checked against kubectl too, so the case documents it); read once the files exist. */
  expect: () => { code: number; stdout: string[]; stderr: string[] };
}

const when = (file: string): string => `error when deleting ${JSON.stringify(file)}`;

const cases: Case[] = [
  {
    name: 'delete -f of existing objects',
    args: () => ['delete', '-f', objects],
    state: () => given(['a', 'b'], ['np']),
    expect: () => ({ code: 0, stdout: ['pod "a" deleted', 'pod "b" deleted', 'networkpolicy.networking.k8s.io "np" deleted'], stderr: [] }),
  },
  {
    name: 'delete -f of missing objects',
    args: () => ['delete', '-f', objects],
    state: () => given([], []),
    expect: () => ({
      code: 1,
      stdout: [],
      stderr: [
        `Error from server (NotFound): ${when(objects)}: pods "a" not found`,
        `Error from server (NotFound): ${when(objects)}: pods "b" not found`,
        `Error from server (NotFound): ${when(objects)}: networkpolicies.networking.k8s.io "np" not found`,
      ],
    }),
  },
  {
    name: 'delete -f, one object missing: the others are deleted',
    args: () => ['delete', '-f', objects],
    state: () => given(['b'], ['np']),
    expect: () => ({
      code: 1,
      stdout: ['pod "b" deleted', 'networkpolicy.networking.k8s.io "np" deleted'],
      stderr: [`Error from server (NotFound): ${when(objects)}: pods "a" not found`],
    }),
  },
  {
    name: 'delete -f of a manifest that only names its objects',
    args: (dir) => ['delete', '-f', join(dir, 'names-only.yaml')],
    state: () => given(['a'], ['np'], ['cnp']),
    expect: () => ({ code: 0, stdout: ['pod "a" deleted', 'networkpolicy.networking.k8s.io "np" deleted', 'ciliumnetworkpolicy.cilium.io "cnp" deleted'], stderr: [] }),
  },
  {
    name: 'delete -f --ignore-not-found, one object missing',
    args: () => ['delete', '-f', objects, '--ignore-not-found'],
    state: () => given(['a'], []),
    expect: () => ({ code: 0, stdout: ['pod "a" deleted'], stderr: [] }),
  },
  {
    name: 'delete -f - (standard input) of a missing object',
    args: () => ['delete', '-f', '-'],
    stdin: 'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n',
    state: () => given([], []),
    expect: () => ({ code: 1, stdout: [], stderr: [`Error from server (NotFound): ${when('STDIN')}: pods "a" not found`] }),
  },
  {
    name: 'delete -f -n of a cluster-scoped object',
    args: (dir) => ['delete', '-f', join(dir, 'clusterwide.yaml'), '-n', 'default'],
    state: () => given([], []),
    expect: () => ({
      code: 1,
      stdout: [],
      stderr: [
        'Warning: deleting cluster-scoped resources, not scoped to the provided namespace',
        `Error from server (NotFound): ${when(join(lab.dir, 'clusterwide.yaml'))}: ciliumclusterwidenetworkpolicies.cilium.io "cw" not found`,
      ],
    }),
  },
  {
    name: 'delete KIND NAME of a missing object',
    args: () => ['delete', 'pod', 'ghost'],
    state: () => given([], []),
    expect: () => ({ code: 1, stdout: [], stderr: ['Error from server (NotFound): pods "ghost" not found'] }),
  },
  {
    name: 'delete KIND NAME NAME, one missing',
    args: () => ['delete', 'pod', 'ghost', 'b'],
    state: () => given(['b'], []),
    expect: () => ({ code: 1, stdout: ['pod "b" deleted'], stderr: ['Error from server (NotFound): pods "ghost" not found'] }),
  },
  {
    name: 'delete KIND NAME --ignore-not-found of a missing object',
    args: () => ['delete', 'networkpolicy', 'ghost', '--ignore-not-found'],
    state: () => given([], []),
    expect: () => ({ code: 0, stdout: [], stderr: [] }),
  },
];

const lines = (s: string): string[] => (s === '' ? [] : s.trimEnd().split('\n'));

for (const c of cases) {
  test(`${c.name}: as kubectl`, async () => {
    await c.state();
    const k = await kubectl(c.args(lab.dir), c.stdin);
    await c.state();
    const p = await lab.run(c.args(lab.dir), c.stdin !== undefined ? { stdin: c.stdin } : {});
    const seen = (r: RunResult) => ({ code: r.code, stdout: lines(r.stdout), stderr: lines(r.stderr) });
    assert.deepEqual(seen(k), c.expect(), 'kubectl');
    assert.deepEqual(seen(p), c.expect(), 'palisade');
  });
}

test('delete -f -n NS of an object in another namespace deletes nothing, with kubectl\'s words', async () => {
  await given(['a'], []);
  const file = await lab.file('in-default.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\n');
  const r = await lab.run(['delete', '-f', file, '-n', 'kube-system']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /in-default\.yaml#1 metadata\.namespace: the namespace from the provided object "default" does not match the namespace "kube-system"\. You must pass '--namespace=default' to perform this operation\./);
  assert.match(r.stderr, /nothing was deleted/);
  assert.equal((await lab.call('GET', '/api/v1/namespaces/default/pods/a')).status, 200);
  const k = await kubectl(['delete', '-f', file, '-n', 'kube-system']);
  assert.equal(k.code, 1);
  assert.match(k.stderr, /the namespace from the provided object "default" does not match the namespace "kube-system"/);
});

test('delete KIND NAME refuses a name that is not one path segment, as kubectl', async () => {
  await lab.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  const r = await lab.run(['delete', 'pod', '..', '-n', 'shop']);
  assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', `error: invalid resource name "..": [may not be '..']\n`]);
  const k = await kubectl(['delete', 'pod', '..', '-n', 'shop']);
  assert.deepEqual([k.code, k.stderr], [1, `error: invalid resource name "..": [may not be '..']\n`]);
  // Sent as it is, pods/.. is resolved away and the DELETE goes to the namespace itself.
  assert.equal((await lab.call('GET', '/api/v1/namespaces/shop')).status, 200);
});
