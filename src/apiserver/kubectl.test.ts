/**
 * Drives the machine's real kubectl against the server. kubectl is a hard
 * requirement of this suite: if it is missing the test fails with a message
 * saying so, it is never skipped.
 */

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, constants, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeKubeconfig } from './index.ts';
import { startTestServer, type TestServer } from '../../test/kit/apiserver-fixtures.ts';

/** The machine's kubectl; PALISADE_KUBECTL overrides it (e.g. to check the missing-kubectl failure). */
const KUBECTL = process.env.PALISADE_KUBECTL ?? '/usr/bin/kubectl';

const MANIFEST = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels:
    app: web
spec:
  containers:
  - name: nginx
    image: nginx:1.27
    ports:
    - containerPort: 80
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
`;

let t: TestServer;
let kubeconfig: string;
let manifest: string;

interface Run { code: number; stdout: string; stderr: string }

function kubectl(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(KUBECTL, ['--kubeconfig', kubeconfig, '--cache-dir', join(t.dir, 'kcache'), '--request-timeout', '10s', ...args],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: t.dir }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await kubectl(...args);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

before(async () => {
  try {
    await access(KUBECTL, constants.X_OK);
  } catch {
    throw new Error(`kubectl is required for this test and was not found at ${KUBECTL}; install kubectl (this test is never skipped)`);
  }
  t = await startTestServer();
  kubeconfig = join(t.dir, 'kubeconfig');
  await writeKubeconfig(kubeconfig, t.server.url, { name: 'lab' });
  manifest = join(t.dir, 'shop.yaml');
  await writeFile(manifest, MANIFEST);
});
after(async () => { await t?.close(); });

test('kubectl: get, create -f, label, annotate, patch, apply, delete -f', async () => {
  // The namespaces exist from the start; no pods yet.
  assert.match(await ok('get', 'namespaces'), /default\s+Active/);
  const empty = await kubectl('get', 'pods', '-A');
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stderr + empty.stdout, /No resources found/);

  const created = await ok('create', '-f', manifest);
  assert.match(created, /namespace\/shop created/);
  assert.match(created, /pod\/web created/);
  assert.match(created, /ciliumnetworkpolicy.cilium.io\/allow-client created/);

  const pods = await ok('get', 'pods', '-A');
  assert.match(pods, /NAMESPACE\s+NAME\s+READY\s+STATUS/);
  assert.match(pods, /shop\s+web\s+0\/1\s+Pending/);
  assert.match(await ok('get', 'cnp', '-n', 'shop'), /allow-client/);

  assert.match(await ok('label', 'pod', 'web', '-n', 'shop', 'a=b'), /pod\/web labeled/);
  assert.match(await ok('annotate', 'cnp', 'allow-client', '-n', 'shop', 'note=hi'), /annotated/);
  assert.match(await ok('patch', 'pod', 'web', '-n', 'shop', '--type=merge', '-p', '{"metadata":{"labels":{"c":"d"}}}'), /patched/);
  const labels = JSON.parse(await ok('get', 'pod', 'web', '-n', 'shop', '-o', 'json')).metadata.labels;
  assert.deepEqual(labels, { app: 'web', a: 'b', c: 'd' });
  assert.equal(JSON.parse(await ok('get', 'cnp', 'allow-client', '-n', 'shop', '-o', 'json')).metadata.annotations.note, 'hi');
  assert.match(await ok('get', 'pods', '-n', 'shop', '-l', 'a in (b,x)', '-o', 'name'), /^pod\/web$/m);

  // apply over objects created by create: kubectl computes a strategic merge patch for the pod.
  await writeFile(manifest, MANIFEST.replace('nginx:1.27', 'nginx:1.28'));
  const applied = await ok('apply', '-f', manifest);
  assert.match(applied, /pod\/web configured/);
  const podAfter = JSON.parse(await ok('get', 'pod', 'web', '-n', 'shop', '-o', 'json'));
  assert.equal(podAfter.spec.containers[0].image, 'nginx:1.28');
  assert.deepEqual(podAfter.spec.containers[0].ports, [{ containerPort: 80 }]);
  assert.match(await ok('apply', '-f', manifest), /pod\/web unchanged/);

  // Cluster-scoped kinds by short name.
  await writeFile(join(t.dir, 'cw.yaml'), 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: cw\nspec: {}\n---\napiVersion: lab.palisade.dev/v1\nkind: ExternalHost\nmetadata:\n  name: api.example.com\n');
  await ok('apply', '-f', join(t.dir, 'cw.yaml'));
  assert.match(await ok('get', 'ccnp,eh'), /cw[\s\S]*api\.example\.com/);
  await ok('delete', '-f', join(t.dir, 'cw.yaml'));

  const deleted = await ok('delete', '-f', manifest);
  assert.match(deleted, /namespace "shop" deleted/);
  assert.match(deleted, /pod "web" deleted/);
  assert.match(deleted, /ciliumnetworkpolicy.cilium.io "allow-client" deleted/);
  const after = await kubectl('get', 'pods', '-A');
  assert.match(after.stderr + after.stdout, /No resources found/);
  const ns = await kubectl('get', 'namespace', 'shop');
  assert.notEqual(ns.code, 0);
  assert.match(ns.stderr, /NotFound|not found/);
});
