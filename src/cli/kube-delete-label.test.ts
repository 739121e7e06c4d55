/** `palisade delete` (by manifest and by name) and `palisade label`. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startKubeTestLab, SHOP_MANIFEST, type KubeTestLab } from '../../test/kit/kube.ts';
import { labelPatch, parseLabelChanges } from './kube-label.ts';

let lab: KubeTestLab;
before(async () => { lab = await startKubeTestLab(); });
after(() => lab.close());

test('delete -f deletes every object of the file, Namespace last; a second run reports each as kubectl does', async () => {
  const file = await lab.file('shop.yaml', SHOP_MANIFEST);
  assert.equal((await lab.run(['apply', '-f', file, '--no-wait'])).code, 0);
  const r = await lab.run(['delete', '-f', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    'pod "frontend" deleted',
    'pod "backend" deleted',
    'service "backend" deleted',
    'ciliumnetworkpolicy.cilium.io "allow-fe" deleted',
    'networkpolicy.networking.k8s.io "default-deny" deleted',
    'namespace "shop" deleted',
  ]);
  assert.equal((await lab.call('GET', '/api/v1/namespaces/shop')).status, 404);

  const again = await lab.run(['delete', '-f', file]);
  assert.equal(again.code, 1, 'kubectl exits 1 when an object was not found');
  assert.equal(again.stdout, '');
  const when = `error when deleting ${JSON.stringify(file)}`;
  assert.deepEqual(again.stderr.trimEnd().split('\n'), [
    `Error from server (NotFound): ${when}: pods "frontend" not found`,
    `Error from server (NotFound): ${when}: pods "backend" not found`,
    `Error from server (NotFound): ${when}: services "backend" not found`,
    `Error from server (NotFound): ${when}: ciliumnetworkpolicies.cilium.io "allow-fe" not found`,
    `Error from server (NotFound): ${when}: networkpolicies.networking.k8s.io "default-deny" not found`,
    `Error from server (NotFound): ${when}: namespaces "shop" not found`,
  ]);

  const quiet = await lab.run(['delete', '-f', file, '--ignore-not-found']);
  assert.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [0, '', '']);
});

test('delete -f of a file that does not say which objects it names deletes nothing', async () => {
  await lab.run(['apply', '-f', await lab.file('keep.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: keep}\nspec: {containers: [{name: c}]}\n'), '--no-wait']);
  const bad = await lab.file('bad.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: keep}\n---\napiVersion: v1\nkind: Pod\nmetadata: {namespace: default}\n' +
    '---\napiVersion: v1\nkind: Frob\nmetadata: {name: x}\n---\napiVersion: v1\nkind: NetworkPolicy\nmetadata: {name: np}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: ..}\n');
  const r = await lab.run(['delete', '-f', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /4 faults in the manifests; nothing was deleted/);
  assert.match(r.stderr, /bad\.yaml#2 metadata\.name: resource name may not be empty/);
  assert.match(r.stderr, /bad\.yaml#3 kind: the lab does not serve kind Frob \(apiVersion v1\)/);
  assert.match(r.stderr, /bad\.yaml#4 kind: no kind NetworkPolicy in apiVersion v1: it is served by networking\.k8s\.io\/v1/);
  assert.match(r.stderr, /bad\.yaml#5 metadata\.name: invalid resource name "\.\.": \[may not be '\.\.'\]/);
  assert.equal((await lab.call('GET', '/api/v1/namespaces/default/pods/keep')).status, 200);
});

test('delete KIND NAME, KIND/NAME; NotFound is an error unless --ignore-not-found', async () => {
  await lab.run(['apply', '--no-wait', '-f', await lab.file('two.yaml',
    'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p1}\nspec: {endpointSelector: {}}\n---\n' +
    'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: c1}\nspec: {endpointSelector: {}}\n')]);
  const r = await lab.run(['delete', 'cnp', 'p1']);
  assert.deepEqual([r.code, r.stdout], [0, 'ciliumnetworkpolicy.cilium.io "p1" deleted\n']);
  const slash = await lab.run(['delete', 'ccnp/c1']);
  assert.deepEqual([slash.code, slash.stdout], [0, 'ciliumclusterwidenetworkpolicy.cilium.io "c1" deleted\n']);
  const missing = await lab.run(['delete', 'pod', 'ghost']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Error from server \(NotFound\): pods "ghost" not found/);
  assert.equal((await lab.run(['delete', 'pod', 'ghost', '--ignore-not-found'])).code, 0);
  assert.equal((await lab.run(['delete', 'pol', 'x'])).code, 2, '"policies" is three kinds: ambiguous');
  assert.equal((await lab.run(['delete', 'pod'])).code, 2);
});

test('label: set, refuse to change without --overwrite, change with it, remove', async () => {
  await lab.run(['apply', '--no-wait', '-f', await lab.file('ns.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: mesh, labels: {team: a}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: mesh, labels: {app: web}}\nspec: {containers: [{name: c}]}\n')]);
  const labels = async (path: string): Promise<Record<string, string>> => (await lab.call('GET', path)).body.metadata.labels;

  const set = await lab.run(['label', 'ns', 'mesh', 'io.cilium/mtls-enabled=true']);
  assert.deepEqual([set.code, set.stdout], [0, 'namespace/mesh labeled\n']);
  assert.deepEqual(await labels('/api/v1/namespaces/mesh'), { team: 'a', 'kubernetes.io/metadata.name': 'mesh', 'io.cilium/mtls-enabled': 'true' });

  const refused = await lab.run(['label', 'pod', 'web', '-n', 'mesh', 'app=api']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /'app' already has a value \(web\), and --overwrite is false/);
  assert.deepEqual(await labels('/api/v1/namespaces/mesh/pods/web'), { app: 'web' });

  const same = await lab.run(['label', 'pod', 'web', '-n', 'mesh', 'app=web']);
  assert.deepEqual([same.code, same.stdout], [0, 'pod/web not labeled\n']);

  const overwritten = await lab.run(['label', 'pod', 'web', '-n', 'mesh', 'app=api', 'tier=back', '--overwrite']);
  assert.deepEqual([overwritten.code, overwritten.stdout], [0, 'pod/web labeled\n']);
  assert.deepEqual(await labels('/api/v1/namespaces/mesh/pods/web'), { app: 'api', tier: 'back' });

  const removed = await lab.run(['label', 'pod', 'web', '-n', 'mesh', 'tier-', 'nothere-']);
  assert.equal(removed.code, 0);
  assert.match(removed.stderr, /label "nothere" not found on pod\/web/);
  assert.deepEqual(await labels('/api/v1/namespaces/mesh/pods/web'), { app: 'api' });

  const missingPod = await lab.run(['label', 'pod', 'ghost', '-n', 'mesh', 'a=b']);
  assert.equal(missingPod.code, 1);
  assert.match(missingPod.stderr, /pod\/ghost not found in namespace "mesh"/);
});

test('label arguments are checked before anything is sent', () => {
  assert.throws(() => parseLabelChanges(['app']), /neither key=value .* nor key-/);
  assert.throws(() => parseLabelChanges(['bad key=x']), /label key/);
  assert.throws(() => parseLabelChanges(['app=-x-']), /label value/);
  assert.throws(() => parseLabelChanges(['a=1', 'a-']), /more than once/);
  const changes = parseLabelChanges(['a=1', 'b-', 'c=']);
  assert.deepEqual([...changes.set], [['a', '1'], ['c', '']]);
  assert.deepEqual(labelPatch({ b: 'x', a: '1' }, changes, false), { patch: { c: '', b: null }, missing: [] });
});
