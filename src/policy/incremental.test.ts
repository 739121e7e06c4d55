// Incremental recompilation: a change alters exactly the endpoints it can affect. Read from
// snapshots: an unaffected endpoint keeps its very EndpointPolicy object and the same description.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objects, world } from '../../test/kit/policy-world.ts';
import type { KubeObject } from '../k8s/index.ts';
import type { PolicyEngine } from './engine.ts';

/** The endpoints `change` made new or altered (identity, addresses, named ports, compiled policy), and those it removed. */
function effectOf(e: PolicyEngine, change: () => void): { changed: string[]; removed: string[] } {
  const before = e.snapshot();
  change();
  const after = e.snapshot();
  const changed: string[] = [];
  for (const ep of after.endpoints()) {
    const old = before.endpoint(ep.key);
    if (!old || JSON.stringify(old) !== JSON.stringify(ep) || before.policyOf(ep.key) !== after.policyOf(ep.key)) changed.push(ep.key);
  }
  const removed = [...before.endpoints()].filter((ep) => !after.endpoint(ep.key)).map((ep) => ep.key);
  return { changed: changed.sort(), removed: removed.sort() };
}

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

test('a new policy alters exactly the endpoints it selects', () => {
  const e = world();
  assert.deepEqual(effectOf(e, () => e.upsert(beFromFe)).changed, ['prod/backend']);
});

test('re-applying an identical policy alters nothing', () => {
  const e = world();
  e.upsert(beFromFe);
  assert.deepEqual(effectOf(e, () => e.upsert(structuredClone(beFromFe))).changed, []);
});

test('deleting a policy alters the endpoints it selected and restores traffic', () => {
  const e = world();
  e.upsert(beFromFe);
  const snap = () => e.snapshot().verdict({ src: { endpoint: 'prod/db' }, dst: { endpoint: 'prod/backend' }, protocol: 'TCP', port: 80 });
  assert.equal(snap().allowed, false);
  assert.deepEqual(effectOf(e, () => e.delete('CiliumNetworkPolicy', 'prod', 'be')).changed, ['prod/backend']);
  assert.equal(snap().allowed, true);
});

test('a pod joining a peer selector changes the policy of the endpoints that select it as a peer', () => {
  const e = world();
  e.upsert(beFromFe);
  const r = effectOf(e, () => e.upsert(one(`
apiVersion: v1
kind: Pod
metadata: {name: frontend-2, namespace: prod, labels: {app: frontend, version: v2}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.9}
`)));
  assert.deepEqual(r.changed, ['prod/backend', 'prod/frontend-2']);
  const v = e.snapshot().verdict({ src: { endpoint: 'prod/frontend-2' }, dst: { endpoint: 'prod/backend' }, protocol: 'TCP', port: 80 });
  assert.equal(v.allowed, true);
});

test('a pod that shares an existing identity changes only itself', () => {
  const e = world();
  e.upsert(beFromFe);
  const r = effectOf(e, () => e.upsert(one(`
apiVersion: v1
kind: Pod
metadata: {name: frontend-b, namespace: prod, labels: {app: frontend}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.10}
`)));
  assert.deepEqual(r.changed, ['prod/frontend-b']);
});

test('an unrelated pod changes only itself', () => {
  const e = world();
  e.upsert(beFromFe);
  const r = effectOf(e, () => e.upsert(one(`
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: dev, labels: {app: batch}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.2.9}
`)));
  assert.deepEqual(r.changed, ['dev/batch']);
});

test('relabelling a pod moves it between selectors', () => {
  const e = world();
  e.upsert(beFromFe);
  const r = effectOf(e, () => e.upsert(one(`
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: prod, labels: {app: intruder}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.1}
`)));
  // frontend's identity changed; backend's peer selector lost it.
  assert.deepEqual(r.changed, ['prod/backend', 'prod/frontend']);
  const v = e.snapshot().verdict({ src: { endpoint: 'prod/frontend' }, dst: { endpoint: 'prod/backend' }, protocol: 'TCP', port: 80 });
  assert.equal(v.allowed, false);
});

test('deleting a pod removes it and alters nothing else', () => {
  const e = world();
  const r = effectOf(e, () => e.delete('Pod', 'dev', 'tester'));
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
  const r = effectOf(e, () => e.upsert(one(`
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev, team: blue}}
`)));
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
