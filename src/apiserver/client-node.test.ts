/**
 * The contract that matters most: Palisade agents consume this server through
 * @kubernetes/client-node informers exactly as they would a real cluster.
 */

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { writeKubeconfig } from './index.ts';
import { startTestServer, eventually, pod, type TestServer } from '../../test/kit/apiserver-fixtures.ts';

let t: TestServer;
let kc: k8s.KubeConfig;
before(async () => {
  t = await startTestServer();
  const file = join(t.dir, 'kubeconfig');
  await writeKubeconfig(file, t.server.url, { namespace: 'default' });
  kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
});
after(() => t.close());

interface Seen { type: string; name: string; rv: string }

function record(informer: k8s.Informer<k8s.KubernetesObject>, seen: Seen[]): void {
  for (const type of [k8s.ADD, k8s.UPDATE, k8s.DELETE] as const) {
    informer.on(type, (obj) => seen.push({ type, name: obj.metadata?.name ?? '', rv: obj.metadata?.resourceVersion ?? '' }));
  }
}

test('a pod informer sees adds, updates and deletes', async () => {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedPod({ namespace: 'default', body: pod('before-start') as k8s.V1Pod });
  const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/pods',
    () => core.listNamespacedPod({ namespace: 'default' }));
  const seen: Seen[] = [];
  record(informer as k8s.Informer<k8s.KubernetesObject>, seen);
  const errors: unknown[] = [];
  informer.on(k8s.ERROR, (e) => errors.push(e));
  await informer.start();
  try {
    await eventually(() => seen.some((s) => s.type === 'add' && s.name === 'before-start'), 5000, 'initial list');
    await core.createNamespacedPod({ namespace: 'default', body: pod('live', { app: 'x' }) as k8s.V1Pod });
    await eventually(() => seen.some((s) => s.type === 'add' && s.name === 'live'), 5000, 'add');
    await core.patchNamespacedPod({ namespace: 'default', name: 'live', body: { metadata: { labels: { app: 'y' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await eventually(() => seen.some((s) => s.type === 'update' && s.name === 'live'), 5000, 'update');
    assert.equal(informer.get('live', 'default')?.metadata?.labels?.app, 'y', 'the cache holds the new object');
    await core.deleteNamespacedPod({ namespace: 'default', name: 'live' });
    await eventually(() => seen.some((s) => s.type === 'delete' && s.name === 'live'), 5000, 'delete');
    assert.deepEqual(seen.filter((s) => s.name === 'live').map((s) => s.type), ['add', 'update', 'delete']);
    assert.equal(informer.list('default').length, 1);
    assert.deepEqual(errors, []);
  } finally {
    await informer.stop();
  }
});

test('a CiliumNetworkPolicy informer (CustomObjectsApi list, KubernetesObjectApi writes)', async () => {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const informer = k8s.makeInformer(kc, '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies',
    async () => (await custom.listNamespacedCustomObject({
      group: 'cilium.io', version: 'v2', namespace: 'default', plural: 'ciliumnetworkpolicies',
    })) as k8s.KubernetesListObject<k8s.KubernetesObject>);
  const seen: Seen[] = [];
  record(informer, seen);
  await informer.start();
  try {
    const spec = {
      apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy',
      metadata: { name: 'allow-dns', namespace: 'default' },
      spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }] },
    };
    const created = await objects.create(spec);
    assert.equal(created.metadata?.namespace, 'default');
    await eventually(() => seen.some((s) => s.type === 'add' && s.name === 'allow-dns'), 5000, 'add');

    await objects.patch({ ...spec, metadata: { ...spec.metadata, labels: { team: 'net' } } }, undefined, undefined, undefined, undefined,
      k8s.PatchStrategy.MergePatch);
    await eventually(() => seen.some((s) => s.type === 'update' && s.name === 'allow-dns'), 5000, 'update');

    const read = await objects.read({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'allow-dns', namespace: 'default' } });
    assert.equal(read.metadata?.labels?.team, 'net');

    await objects.delete({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'allow-dns', namespace: 'default' } });
    await eventually(() => seen.some((s) => s.type === 'delete' && s.name === 'allow-dns'), 5000, 'delete');
    assert.deepEqual(seen.map((s) => s.type), ['add', 'update', 'delete']);
  } finally {
    await informer.stop();
  }
});

test('a cluster-scoped CCNP list through KubernetesObjectApi', async () => {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  await objects.create({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw' }, spec: {} });
  const list = await objects.list('cilium.io/v2', 'CiliumClusterwideNetworkPolicy');
  assert.deepEqual(list.items.map((i) => i.metadata?.name), ['cw']);
});

test('an informer relists after its resourceVersion expires (410) and converges', async () => {
  const small = await startTestServer({ watchHistory: 2 });
  try {
    const file = join(small.dir, 'kubeconfig');
    await writeKubeconfig(file, small.server.url);
    const kc2 = new k8s.KubeConfig();
    kc2.loadFromFile(file);
    const core = kc2.makeApiClient(k8s.CoreV1Api);
    let lists = 0;
    const informer = k8s.makeInformer(kc2, '/api/v1/namespaces', () => { lists++; return core.listNamespace(); });
    await informer.start();
    try {
      await eventually(() => informer.list().length === 4, 5000, 'initial namespaces');
      // While the informer is away, more changes happen than the history keeps…
      await informer.stop();
      for (let i = 0; i < 10; i++) await core.createNamespace({ body: { metadata: { name: `n${i}` } } });
      await core.deleteNamespace({ name: 'kube-node-lease' });
      // …so its resume gets 410 Expired, and it must relist to converge.
      await informer.start();
      await eventually(() => informer.list().length === 13 && !informer.get('kube-node-lease'), 5000, 'converged cache');
      assert.equal(lists, 2, 'the 410 caused exactly one relist');
    } finally {
      await informer.stop();
    }
  } finally { await small.close(); }
});
