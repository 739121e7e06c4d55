// Incremental recompilation: each change reports exactly the endpoints whose policy changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objects, world } from '../../test/kit/policy-world.ts';
import type { KubeObject } from '../k8s/index.ts';

const one = (yaml: string): KubeObject => {
  const [o] = objects(yaml);
  assert.ok(o);
  return o;
};

const beFromFe = one(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: be, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
`);

test('a new policy reports exactly the endpoints it selects', () => {
  const e = world();
  assert.deepEqual(e.upsert(beFromFe).changed, ['prod/backend']);
});

test('re-applying an identical policy reports nothing', () => {
  const e = world();
  e.upsert(beFromFe);
  assert.deepEqual(e.upsert(structuredClone(beFromFe)).changed, []);
});

test('deleting a policy reports the endpoints it selected and restores traffic', () => {
  const e = world();
  e.upsert(beFromFe);
  const snap = () => e.snapshot().verdict({ src: { endpoint: 'prod/db' }, dst: { endpoint: 'prod/backend' }, protocol: 'TCP', port: 80 });
  assert.equal(snap().allowed, false);
  assert.deepEqual(e.delete('CiliumNetworkPolicy', 'prod', 'be').changed, ['prod/backend']);
  assert.equal(snap().allowed, true);
});

test('a pod joining a peer selector changes the policy of the endpoints that select it as a peer', () => {
  const e = world();
  e.upsert(beFromFe);
  const r = e.upsert(one(`
apiVersion: v1
kind: Pod
metadata: {name: frontend-2, namespace: prod, labels: {app: frontend, version: v2}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.9}
`));
  assert.deepEqual(r.changed, ['prod/backend', 'prod/frontend-2']);
  const v = e.snapshot().verdict({ src: { endpoint: 'prod/frontend-2' }, dst: { endpoint: 'prod/backend' }, protocol: 'TCP', port: 80 });
  assert.equal(v.allowed, true);
});

test('a pod that shares an existing identity changes only itself', () => {
  const e = world();
  e.upsert(beFromFe);
  const r = e.upsert(one(`
apiVersion: v1
kind: Pod
metadata: {name: frontend-b, namespace: prod, labels: {app: frontend}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.10}
`));
  assert.deepEqual(r.changed, ['prod/frontend-b']);
});

test('an unrelated pod changes only itself', () => {
  const e = world();
  e.upsert(beFromFe);
  const r = e.upsert(one(`
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: dev, labels: {app: batch}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.2.9}
`));
  assert.deepEqual(r.changed, ['dev/batch']);
});

test('relabelling a pod moves it between selectors', () => {
  const e = world();
  e.upsert(beFromFe);
  const r = e.upsert(one(`
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: prod, labels: {app: intruder}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.1}
`));
  // frontend's identity changed; backend's peer selector lost it.
  assert.deepEqual(r.changed, ['prod/backend', 'prod/frontend']);
  const v = e.snapshot().verdict({ src: { endpoint: 'prod/frontend' }, dst: { endpoint: 'prod/backend' }, protocol: 'TCP', port: 80 });
  assert.equal(v.allowed, false);
});

test('deleting a pod reports it removed', () => {
  const e = world();
  const r = e.delete('Pod', 'dev', 'tester');
  assert.deepEqual(r, { changed: [], removed: ['dev/tester'] });
  assert.equal(e.snapshot().endpoint('dev/tester'), undefined);
});

test('namespace labels feed identities: relabelling a namespace re-evaluates its pods', () => {
  const e = world(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-team, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
`);
  const ask = () => e.snapshot().verdict({ src: { endpoint: 'dev/tester' }, dst: { endpoint: 'prod/db' }, protocol: 'TCP', port: 5432 }).allowed;
  assert.equal(ask(), false);
  const r = e.upsert(one(`
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev, team: blue}}
`));
  assert.deepEqual(r.changed, ['dev/backend', 'dev/tester', 'prod/db']);
  assert.equal(ask(), true);
});

test('snapshots are immutable: an old snapshot keeps answering as before', () => {
  const e = world();
  const before = e.snapshot();
  e.upsert(beFromFe);
  const q = { src: { endpoint: 'prod/db' }, dst: { endpoint: 'prod/backend' }, protocol: 'TCP' as const, port: 80 };
  assert.equal(before.verdict(q).allowed, true);
  assert.equal(e.snapshot().verdict(q).allowed, false);
});
