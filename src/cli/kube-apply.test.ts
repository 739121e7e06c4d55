/** `palisade apply` against a real lab API server: create, unchanged, configured, faults, --wait. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startKubeTestLab, SHOP_MANIFEST, type KubeTestLab } from '../../test/kit/kube.ts';
import { parseDuration } from './kube-wait.ts';
import { threeWayMergePatch } from './kube-merge.ts';

let lab: KubeTestLab;
before(async () => { lab = await startKubeTestLab(); });
after(() => lab.close());

test('apply of a multi-kind file creates every object, Namespace first, one line each', async () => {
  const file = await lab.file('shop.yaml', SHOP_MANIFEST);
  const r = await lab.run(['apply', '-f', file, '--no-wait']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    'namespace/shop created',
    'pod/frontend created',
    'pod/backend created',
    'service/backend created',
    'ciliumnetworkpolicy.cilium.io/allow-fe created',
    'networkpolicy.networking.k8s.io/default-deny created',
  ]);
  const cnp = await lab.call('GET', '/apis/cilium.io/v2/namespaces/shop/ciliumnetworkpolicies/allow-fe');
  assert.equal(cnp.status, 200);
  assert.equal(cnp.body.spec.egress[0].toFQDNs[0].matchName, 'api.example.com');

  const again = await lab.run(['apply', '-f', file, '--no-wait']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(again.stdout.trimEnd().split('\n').map((l) => l.split(' ')[1]), Array(6).fill('unchanged'));
});

test('apply of a changed manifest reports configured, and removes what the last apply set and the manifest dropped', async () => {
  const v1 = 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: evolve, labels: {team: net, tier: web}, annotations: {note: old}}\n' +
    'spec:\n  endpointSelector: {}\n  egress: [{toEntities: [world]}]\n  ingress: [{fromEntities: [cluster]}]\n';
  const v2 = 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: evolve, labels: {team: net}}\n' +
    'spec:\n  endpointSelector: {}\n  egress: [{toEntities: [cluster]}]\n';
  assert.equal((await lab.run(['apply', '-f', await lab.file('v1.yaml', v1), '--no-wait'])).stdout, 'ciliumnetworkpolicy.cilium.io/evolve created\n');
  // A label someone else added is not the manifest's to remove.
  await lab.call('PATCH', '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/evolve',
    { metadata: { labels: { owner: 'ops' } } }, 'application/merge-patch+json');
  const r = await lab.run(['apply', '-f', await lab.file('v2.yaml', v2), '--no-wait']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ciliumnetworkpolicy.cilium.io/evolve configured\n');
  const live = (await lab.call('GET', '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/evolve')).body;
  assert.deepEqual(live.spec, { endpointSelector: {}, egress: [{ toEntities: ['cluster'] }] });
  assert.deepEqual(live.metadata.labels, { team: 'net', owner: 'ops' });
  assert.deepEqual(Object.keys(live.metadata.annotations), ['kubectl.kubernetes.io/last-applied-configuration'], 'the dropped annotation is gone');
});

test('a file with one invalid object applies nothing, lists the field path and exits 1', async () => {
  const bad = SHOP_MANIFEST.replaceAll('shop', 'bad-shop').replace('clusterIP: 10.96.0.20', 'clusterIP: 10.96.0.20\n  sessionAffinity: Sticky');
  const file = await lab.file('bad.yaml', bad);
  const r = await lab.run(['apply', '-f', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /nothing was applied/);
  assert.match(r.stderr, new RegExp(`${file.replaceAll('/', '\\/')}#4 spec\\.sessionAffinity: `));
  assert.equal((await lab.call('GET', '/api/v1/namespaces/bad-shop')).status, 404, 'not even the valid Namespace was created');
});

test('an ExternalHost address another host holds (in the cluster or the same files) applies nothing, naming the field', async () => {
  const host = (name: string, addresses: string[]): string =>
    `apiVersion: lab.palisade.dev/v1\nkind: ExternalHost\nmetadata: {name: ${name}}\nspec: {names: [${name}.example.com], addresses: [${addresses.join(', ')}]}\n`;
  assert.equal((await lab.run(['apply', '-f', await lab.file('one.yaml', host('one', ['1.1.1.1', '1.0.0.1'])), '--no-wait'])).code, 0);
  const taken = await lab.file('two.yaml', `${host('two', ['9.9.9.9', '1.0.0.1'])}---\n${host('three', ['8.8.8.8'])}---\n${host('four', ['8.8.8.8'])}`);
  const r = await lab.run(['apply', '-f', taken, '--no-wait']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /2 faults in the manifests; nothing was applied/);
  assert.match(r.stderr, new RegExp(`${taken.replaceAll('/', '\\/')}#1 spec\\.addresses\\[1\\]: 1\\.0\\.0\\.1 is already ExternalHost one's \\(in the cluster\\)`));
  assert.match(r.stderr, new RegExp(`#3 spec\\.addresses\\[0\\]: 8\\.8\\.8\\.8 is already ExternalHost three's \\(${taken.replaceAll('/', '\\/')}#2\\)`));
  assert.equal((await lab.call('GET', '/apis/lab.palisade.dev/v1/externalhosts/three')).status, 404, 'not even the host without a conflict');
  // The host itself may change its addresses.
  assert.equal((await lab.run(['apply', '-f', await lab.file('one-b.yaml', host('one', ['1.0.0.1'])), '--no-wait'])).stdout, 'externalhost.lab.palisade.dev/one configured\n');
});

test('apply -f - reads standard input', async () => {
  const r = await lab.run(['apply', '-f', '-', '--no-wait'], {
    stdin: 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: from-stdin}\nspec: {endpointSelector: {}}\n',
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ciliumclusterwidenetworkpolicy.cilium.io/from-stdin created\n');
});

test('an object the server refuses is reported, the others are applied, exit 1', async () => {
  const text = 'apiVersion: v1\nkind: Pod\nmetadata: {name: orphan, namespace: nowhere}\nspec: {containers: [{name: c}]}\n---\n' +
    'apiVersion: v1\nkind: Pod\nmetadata: {name: fine}\nspec: {containers: [{name: c}]}\n';
  const r = await lab.run(['apply', '-f', await lab.file('partial.yaml', text), '--no-wait']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, 'pod/fine created\n');
  assert.match(r.stderr, /pod\/orphan .*NotFound.*nowhere/);
  assert.match(r.stderr, /1 of 2 objects were not applied/);
});

test('--wait times out with the pods not ready and their phase when nothing sets podIP', async () => {
  const text = 'apiVersion: v1\nkind: Pod\nmetadata: {name: stuck, namespace: default}\nspec: {containers: [{name: c}]}\n';
  const started = Date.now();
  const r = await lab.run(['apply', '-f', await lab.file('stuck.yaml', text), '--timeout', '1s']);
  assert.equal(r.code, 1);
  assert.ok(Date.now() - started < 5000, 'the timeout is honoured');
  assert.match(r.stdout, /^pod\/stuck created\nwaiting for 1 pod: 0\/1 running\n$/);
  assert.match(r.stderr, /timed out after 1s waiting for 1 of 1 pod to run with an IP/);
  assert.match(r.stderr, /default\/stuck: Pending, no IP yet/);
});

test('--wait succeeds once a controller sets phase Running and podIP; a TTY gets one rewritten line', async () => {
  const text = 'apiVersion: v1\nkind: Pod\nmetadata: {name: w1}\nspec: {containers: [{name: c}]}\n---\n' +
    'apiVersion: v1\nkind: Pod\nmetadata: {name: w2}\nspec: {containers: [{name: c}]}\n';
  const file = await lab.file('wait.yaml', text);
  const setRunning = async (name: string, ip: string): Promise<void> => {
    // What the lab controller does: write status through the status subresource.
    for (let i = 0; i < 50; i++) {
      const res = await lab.call('PATCH', `/api/v1/namespaces/default/pods/${name}/status`,
        { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } }, 'application/merge-patch+json');
      if (res.status === 200) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`could not set the status of ${name}`);
  };
  const controller = (async () => {
    // Both pods first (the CLI is a new process, slow to start on a loaded machine):
    // only then does the wait with "0/2 running" begin, and w1 turns Running 300 ms later.
    for (let i = 0; ; i++) {
      const [a, b] = [await lab.call('GET', '/api/v1/namespaces/default/pods/w1'), await lab.call('GET', '/api/v1/namespaces/default/pods/w2')];
      if (a.status === 200 && b.status === 200) break;
      if (i > 400) throw new Error('the CLI never created w1 and w2');
      await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 300));
    await setRunning('w1', '10.200.0.11');
    await new Promise((r) => setTimeout(r, 300));
    await setRunning('w2', '10.200.0.12');
  })();
  const r = await lab.run(['apply', '-f', file, '--timeout', '10s'], { tty: true });
  await controller;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^pod\/w1 created\npod\/w2 created\n/);
  assert.match(r.stdout, /\r\x1b\[2Kwaiting for 2 pods: 0\/2 running/);
  assert.match(r.stdout, /\r\x1b\[2Kwaiting for 2 pods: 1\/2 running/);
  assert.match(r.stdout, /\r\x1b\[2K✓ 2 pods running\n$/);

  const get = await lab.run(['get', 'pods', 'w1']);
  assert.match(get.stdout, /^w1\s+1\/1\s+Running\s+10\.200\.0\.11\s/m);
});

test('unreachable API server: the message names the URL and says what to check', async () => {
  const dead = await startKubeTestLab();
  await dead.server.close();
  try {
    const r = await dead.run(['get', 'pods']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach the lab API server at ${dead.server.url.replaceAll('.', '\\.')} \\(is it running\\?\\)`));
  } finally {
    await dead.close();
  }
});

test('no kubeconfig for the lab: "is the lab up?"', async () => {
  const { runKube } = await import('../../test/kit/kube.ts');
  const r = await runKube(['get', 'pods', '--lab', 'ktmissinglab']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /lab 'ktmissinglab' has no kubeconfig at \/run\/palisade\/ktmissinglab\/kubeconfig: is the lab up\?/);
});

test('durations', () => {
  const cases: [string, number][] = [['60s', 60_000], ['1s', 1000], ['500ms', 500], ['2m', 120_000], ['1m30s', 90_000], ['1h', 3_600_000], ['5', 5000]];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  for (const text of ['', 's', '10x', '1m-']) assert.throws(() => parseDuration(text), /duration/, text);
});

test('three-way merge patch', () => {
  const cases: { name: string; last: Record<string, unknown> | undefined; desired: Record<string, unknown>; live: Record<string, unknown>; patch: Record<string, unknown> }[] = [
    { name: 'same', last: undefined, desired: { a: 1, b: { c: [1] } }, live: { a: 1, b: { c: [1] }, x: 9 }, patch: {} },
    { name: 'changed scalar', last: undefined, desired: { a: 2 }, live: { a: 1 }, patch: { a: 2 } },
    { name: 'lists replaced whole', last: undefined, desired: { l: [1, 2] }, live: { l: [1] }, patch: { l: [1, 2] } },
    { name: 'dropped since last apply', last: { a: 1, m: { k: 1, j: 2 } }, desired: { m: { k: 1 } }, live: { a: 1, m: { k: 1, j: 2, other: 3 } }, patch: { a: null, m: { j: null } } },
    { name: 'not applied before: kept', last: undefined, desired: {}, live: { server: 'default' }, patch: {} },
    { name: 'already gone', last: { a: 1 }, desired: {}, live: {}, patch: {} },
  ];
  for (const c of cases) assert.deepEqual(threeWayMergePatch(c.last, c.desired, c.live), c.patch, c.name);
});
