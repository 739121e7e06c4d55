/** `palisade get`: tables per kind, -n / -A, -o wide|json|yaml|name, NAME lookups. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { startKubeTestLab, SHOP_MANIFEST, type KubeTestLab } from '../../test/kit/kube.ts';
import { formatTable, humanDuration, policySummary } from './kube-tables.ts';

let lab: KubeTestLab;
before(async () => {
  lab = await startKubeTestLab();
  const r = await lab.run(['apply', '-f', await lab.file('shop.yaml', SHOP_MANIFEST), '--no-wait']);
  assert.equal(r.code, 0, r.stderr);
  const more = 'apiVersion: v1\nkind: Pod\nmetadata: {name: client, labels: {app: client}}\nspec: {containers: [{name: c}]}\n---\n' +
    'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: deny-world}\nspec:\n  endpointSelector: {}\n  egressDeny: [{toEntities: [world]}]\n';
  assert.equal((await lab.run(['apply', '-f', await lab.file('more.yaml', more), '--no-wait'])).code, 0);
  // What the lab's controller and `lab up` create: node and external host objects, pod status.
  await lab.call('POST', '/api/v1/nodes', {
    apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, spec: { podCIDR: '10.200.1.0/24' },
    status: { addresses: [{ type: 'InternalIP', address: '192.168.77.11' }, { type: 'Hostname', address: 'node-1' }] },
  });
  await lab.call('POST', '/apis/lab.palisade.dev/v1/externalhosts', {
    apiVersion: 'lab.palisade.dev/v1', kind: 'ExternalHost', metadata: { name: 'api' },
    spec: { names: ['api.example.com', 'www.example.com'], ports: [80, { port: 443, protocol: 'TCP' }], ips: ['198.51.100.10'] },
  });
  await lab.call('PATCH', '/api/v1/namespaces/shop/pods/frontend/status',
    { status: { phase: 'Running', podIP: '10.200.1.5' } }, 'application/merge-patch+json');
  await lab.call('PATCH', '/api/v1/namespaces/shop/pods/frontend', { spec: { nodeName: 'node-1' } }, 'application/merge-patch+json');
});
after(() => lab.close());

/** The table's cells, whitespace-split (no cell here holds a space except SUMMARY, checked separately). */
const rows = (out: string): string[][] => out.trimEnd().split('\n').map((l) => l.trim().split(/\s{3,}/));

test('get pods -n: the namespace\'s pods, aligned, with READY STATUS IP NODE AGE', async () => {
  const r = await lab.run(['get', 'pods', '-n', 'shop']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(rows(r.stdout).map((row) => row.slice(0, 5)), [
    ['NAME', 'READY', 'STATUS', 'IP', 'NODE'],
    ['backend', '0/1', 'Pending', '<none>', '<none>'],
    ['frontend', '1/1', 'Running', '10.200.1.5', 'node-1'],
  ]);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0]!.indexOf('STATUS'), lines[1]!.indexOf('Pending'), 'columns are aligned');
});

test('get po -A adds NAMESPACE; -o wide adds LABELS', async () => {
  const r = await lab.run(['get', 'po', '-A', '-o', 'wide']);
  assert.equal(r.code, 0, r.stderr);
  const table = rows(r.stdout);
  assert.deepEqual(table[0], ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'IP', 'NODE', 'AGE', 'LABELS']);
  assert.deepEqual(table.slice(1).map((row) => [row[0], row[1], row.at(-1)]), [
    ['default', 'client', 'app=client'],
    ['shop', 'backend', 'app=backend'],
    ['shop', 'frontend', 'app=frontend'],
  ]);
});

test('get svc, nodes, externalhosts, namespaces: their columns', async () => {
  const svc = await lab.run(['get', 'svc', '-n', 'shop']);
  assert.deepEqual(rows(svc.stdout).map((r) => r.slice(0, 4)), [['NAME', 'CLUSTER-IP', 'PORTS', 'SELECTOR'], ['backend', '10.96.0.20', '80→8080/TCP', 'app=backend']]);
  const nodes = await lab.run(['get', 'no']);
  assert.deepEqual(rows(nodes.stdout).map((r) => r.slice(0, 3)), [['NAME', 'INTERNAL-IP', 'POD-CIDR'], ['node-1', '192.168.77.11', '10.200.1.0/24']]);
  const eh = await lab.run(['get', 'eh']);
  assert.deepEqual(rows(eh.stdout).map((r) => r.slice(0, 4)), [['NAME', 'NAMES', 'PORTS', 'IP'], ['api', 'api.example.com,www.example.com', '80,443/TCP', '198.51.100.10']]);
  const ns = await lab.run(['get', 'ns']);
  assert.deepEqual(rows(ns.stdout).map((r) => r[0]), ['NAME', 'default', 'kube-node-lease', 'kube-public', 'kube-system', 'shop']);
});

test('get externalhosts shows the default ports of a host that names none, and its own addresses', async () => {
  await lab.call('POST', '/apis/lab.palisade.dev/v1/externalhosts', {
    apiVersion: 'lab.palisade.dev/v1', kind: 'ExternalHost', metadata: { name: 'one' },
    spec: { names: ['one.one.one.one'], addresses: ['1.1.1.1', '1.0.0.1'] }, status: { ip: '1.1.1.1' },
  });
  try {
    const eh = await lab.run(['get', 'externalhosts', 'one']);
    assert.equal(eh.code, 0, eh.stderr);
    assert.deepEqual(rows(eh.stdout).map((r) => r.slice(0, 4)), [['NAME', 'NAMES', 'PORTS', 'IP'], ['one', 'one.one.one.one', '80,443', '1.1.1.1,1.0.0.1']]);
  } finally {
    await lab.call('DELETE', '/apis/lab.palisade.dev/v1/externalhosts/one');
  }
});

test('get policies: CNP, CCNP and KNP in one table with a summary', async () => {
  const r = await lab.run(['get', 'policies', '-n', 'shop']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(rows(r.stdout).map((row) => row.slice(0, 3)), [
    ['KIND', 'NAME', 'SUMMARY'],
    ['CCNP', 'deny-world', 'egress-deny 1'],
    ['CNP', 'allow-fe', 'ingress 1, egress 1, FQDN, L7'],
    ['KNP', 'default-deny', 'ingress deny-all'],
  ]);
  const all = await lab.run(['get', 'pol', '-A']);
  assert.deepEqual(rows(all.stdout).map((row) => row.slice(0, 3)), [
    ['NAMESPACE', 'KIND', 'NAME'],
    ['(cluster)', 'CCNP', 'deny-world'],
    ['shop', 'CNP', 'allow-fe'],
    ['shop', 'KNP', 'default-deny'],
  ]);
});

test('-o name', async () => {
  assert.equal((await lab.run(['get', 'pods', '-n', 'shop', '-o', 'name'])).stdout, 'pod/backend\npod/frontend\n');
  assert.equal((await lab.run(['get', 'pol', '-n', 'shop', '-o', 'name'])).stdout,
    'ciliumclusterwidenetworkpolicy.cilium.io/deny-world\nciliumnetworkpolicy.cilium.io/allow-fe\nnetworkpolicy.networking.k8s.io/default-deny\n');
});

test('-o json: a v1 List, or the object itself for a NAME', async () => {
  const list = JSON.parse((await lab.run(['get', 'pods', '-n', 'shop', '-o', 'json'])).stdout);
  assert.equal(list.kind, 'List');
  assert.deepEqual(list.items.map((p: any) => [p.kind, p.metadata.name]), [['Pod', 'backend'], ['Pod', 'frontend']]);
  const one = JSON.parse((await lab.run(['get', 'cnp', 'allow-fe', '-n', 'shop', '-o', 'json'])).stdout);
  assert.equal(one.kind, 'CiliumNetworkPolicy');
  assert.equal(one.spec.ingress[0].toPorts[0].rules.http[0].path, '/api/.*');
  assert.equal(typeof one.metadata.creationTimestamp, 'string', 'server JSON, not client-node model objects');
});

test('-o yaml: the same, in YAML', async () => {
  const list = parseYaml((await lab.run(['get', 'svc', '-A', '-o', 'yaml'])).stdout);
  assert.equal(list.kind, 'List');
  assert.deepEqual(list.items.map((s: any) => s.spec.clusterIP), ['10.96.0.20']);
  const node = parseYaml((await lab.run(['get', 'nodes', 'node-1', '-o', 'yaml'])).stdout);
  assert.equal(node.spec.podCIDR, '10.200.1.0/24');
});

test('NAME not found, empty lists, unknown types', async () => {
  const missing = await lab.run(['get', 'pods', 'nope', '-n', 'shop']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /pod "nope" not found in namespace "shop"/);
  const empty = await lab.run(['get', 'pods', '-n', 'kube-public']);
  assert.equal(empty.code, 0);
  assert.equal(empty.stdout, '');
  assert.equal(empty.stderr, 'No resources found in kube-public namespace.\n');
  const unknown = await lab.run(['get', 'widgets']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown resource type "widgets": use one of .*pods \(po\)/);
  const both = await lab.run(['get', 'pods', '-A', '-n', 'shop']);
  assert.equal(both.code, 2);
});

test('every command has a description and examples in --help', async () => {
  for (const command of ['apply', 'delete', 'get', 'exec', 'logs', 'label']) {
    const r = await lab.run([command, '--help']);
    assert.equal(r.code, 0, command);
    assert.match(r.stdout, /Examples:\n {2}(sudo )?palisade /, command);
    assert.match(r.stdout, /--lab <name>/, command);
    assert.match(r.stdout, /--kubeconfig <file>/, command);
  }
});

test('humanDuration follows kubectl (apimachinery HumanDuration)', () => {
  const s = 1000;
  const cases: [number, string][] = [
    [0, '0s'], [119 * s, '119s'], [120 * s, '2m'], [150 * s, '2m30s'], [10 * 60 * s, '10m'],
    [179 * 60 * s, '179m'], [3 * 3600 * s, '3h'], [3.5 * 3600 * s, '3h30m'], [8 * 3600 * s, '8h'],
    [47 * 3600 * s, '47h'], [50 * 3600 * s, '2d2h'], [8 * 86400 * s, '8d'], [800 * 86400 * s, '2y70d'], [9 * 365 * 86400 * s, '9y'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `${ms} ms`);
});

test('policy summaries', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['knp ingress+egress', { kind: 'NetworkPolicy', spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{}, {}], egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] } }, 'ingress 2, egress 1, CIDR'],
    ['knp default types, egress rules', { kind: 'NetworkPolicy', spec: { podSelector: {}, egress: [{}] } }, 'ingress deny-all, egress 1'],
    ['cnp specs, DNS', { kind: 'CiliumNetworkPolicy', specs: [{ endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchPattern: '*' }] } }] }] }, { endpointSelector: {}, ingressDeny: [{}] }] }, 'ingress-deny 1, egress 1, DNS'],
    ['ccnp host', { kind: 'CiliumClusterwideNetworkPolicy', spec: { nodeSelector: {}, ingress: [{}] } }, 'ingress 1, host'],
    ['empty', { kind: 'CiliumNetworkPolicy', spec: { endpointSelector: {} } }, 'no rules'],
  ];
  for (const [name, o, want] of cases) assert.equal(policySummary(o), want, name);
});

test('formatTable pads with three spaces and trims the last column', () => {
  assert.equal(formatTable({ headers: ['NAME', 'IP'], rows: [['a', '10.0.0.1'], ['long-name', '<none>']] }),
    'NAME        IP\na           10.0.0.1\nlong-name   <none>\n');
});
