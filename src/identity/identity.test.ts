import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  endpointLabels,
  IDENTITY_HOST,
  IDENTITY_INGRESS,
  IDENTITY_KUBE_APISERVER,
  IDENTITY_REMOTE_NODE,
  IDENTITY_WORLD,
  IdentityAllocator,
  MIN_ALLOCATED_IDENTITY,
  RESERVED_LABELS,
} from './index.ts';

test('reserved identities carry Cilium’s numbers and reserved: labels', () => {
  const a = new IdentityAllocator();
  assert.equal(IDENTITY_HOST, 1);
  assert.equal(IDENTITY_WORLD, 2);
  assert.equal(IDENTITY_REMOTE_NODE, 6);
  assert.equal(IDENTITY_KUBE_APISERVER, 7);
  assert.equal(IDENTITY_INGRESS, 8);
  assert.deepEqual(a.labelsOf(IDENTITY_WORLD)?.toStrings(), ['reserved:world=']);
  for (const [id, labels] of RESERVED_LABELS) assert.equal(a.acquire(labels), id);
});

test('equal label sets get equal identities, in any order and across allocators', () => {
  const l1 = endpointLabels({ namespace: 'prod', podLabels: { app: 'web', tier: 'fe' } });
  const l2 = endpointLabels({ namespace: 'prod', podLabels: { tier: 'fe', app: 'web' } });
  const a = new IdentityAllocator();
  const b = new IdentityAllocator();
  b.acquire(endpointLabels({ namespace: 'x', podLabels: { other: '1' } }));
  const id = a.acquire(l1);
  assert.ok(id >= MIN_ALLOCATED_IDENTITY);
  assert.equal(a.acquire(l2), id);
  assert.equal(b.acquire(l2), id);
});

test('namespace, namespace labels, service account and pod labels all shape the identity', () => {
  const a = new IdentityAllocator();
  const base = { namespace: 'prod', podLabels: { app: 'web' } };
  const ids = new Set([
    a.acquire(endpointLabels(base)),
    a.acquire(endpointLabels({ ...base, namespace: 'dev' })),
    a.acquire(endpointLabels({ ...base, namespaceLabels: { team: 'a' } })),
    a.acquire(endpointLabels({ ...base, serviceAccount: 'api' })),
    a.acquire(endpointLabels({ ...base, podLabels: { app: 'db' } })),
  ]);
  assert.equal(ids.size, 5);
});

test('rollout labels (pod-template-hash) do not change the identity', () => {
  const a = new IdentityAllocator();
  const x = a.acquire(endpointLabels({ namespace: 'p', podLabels: { app: 'w', 'pod-template-hash': 'abc' } }));
  const y = a.acquire(endpointLabels({ namespace: 'p', podLabels: { app: 'w', 'pod-template-hash': 'def' } }));
  assert.equal(x, y);
});

test('identity labels follow Cilium’s names', () => {
  const l = endpointLabels({ namespace: 'prod', podLabels: { app: 'web' }, namespaceLabels: { env: 'p' }, serviceAccount: 'sa1' });
  assert.deepEqual(l.toStrings(), [
    'k8s:app=web',
    'k8s:io.cilium.k8s.namespace.labels.env=p',
    'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=prod',
    'k8s:io.cilium.k8s.policy.cluster=default',
    'k8s:io.cilium.k8s.policy.serviceaccount=sa1',
    'k8s:io.kubernetes.pod.namespace=prod',
  ]);
});

test('an identity is freed with its last reference and collisions probe to the next number', () => {
  const a = new IdentityAllocator();
  const l = endpointLabels({ namespace: 'p', podLabels: { app: 'x' } });
  const id = a.acquire(l);
  a.acquire(l);
  assert.equal(a.release(id), false);
  assert.equal(a.release(id), true);
  assert.equal(a.labelsOf(id), undefined);
  // 5,000 distinct label sets: all distinct numbers, all in range.
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) seen.add(a.acquire(endpointLabels({ namespace: 'n', podLabels: { i: String(i) } })));
  assert.equal(seen.size, 5000);
  for (const n of seen) assert.ok(n >= 256 && n <= 65535);
});
