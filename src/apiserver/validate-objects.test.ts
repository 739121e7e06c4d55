/**
 * The validation hook as the lab's API server runs it: objects arrive as a
 * client sent them — with the nulls YAML gives a key left empty — and are
 * judged as `palisade apply` judges them. kubectl is required (never skipped).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { writeKubeconfig } from './index.ts';
import { startTestServer, type TestServer } from '../../test/kit/apiserver-fixtures.ts';
import { validateKnownKinds } from './validate-objects.ts';

const KUBECTL = process.env.PALISADE_KUBECTL ?? '/usr/bin/kubectl';
const CILIUM_KNP = new URL('../../test/fixtures/cilium/client-egress-to-echo-knp.yaml', import.meta.url);
const KNP_PATH = '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies';
const CNP_PATH = '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies';

let t: TestServer;
before(async () => { t = await startTestServer({ validate: validateKnownKinds }); });
after(async () => { await t?.close(); });

function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(KUBECTL, ['--kubeconfig', join(t.dir, 'kubeconfig'), '--cache-dir', join(t.dir, 'kcache'), ...args],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: t.dir }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

test('objects with null fields are created, replaced and kept as sent', async () => {
  const knp = parse(await readFile(CILIUM_KNP, 'utf8'));
  assert.equal(knp.spec.egress[2].to, null, 'the fixture has `- to:` with no value');
  const created = await t.call('POST', KNP_PATH, knp);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.spec.egress[2].to, null);

  const cnp = {
    apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy',
    metadata: { name: 'nulls', labels: null, annotations: null },
    spec: { endpointSelector: { matchLabels: null }, ingress: [{ fromEndpoints: null, toPorts: null }], egress: [{ toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }], rules: null }] }] },
  };
  assert.equal((await t.call('POST', CNP_PATH, cnp)).status, 201);
  const replaced = await t.call('PUT', `${CNP_PATH}/nulls`, { ...cnp, spec: { ...cnp.spec, egress: null } });
  assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
});

test('a null where a rule or a label value is due is refused with its field', async () => {
  const bad = {
    apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'bad' },
    spec: { endpointSelector: { matchLabels: { app: null } }, egress: [null] },
  };
  const r = await t.call('POST', CNP_PATH, bad);
  assert.equal(r.status, 422);
  const fields = (r.body.details.causes as { field: string }[]).map((c) => c.field).sort();
  assert.deepEqual(fields, ['spec.egress[0]', 'spec.endpointSelector.matchLabels.app']);
});

test("kubectl creates and applies Cilium's manifest with `- to:`", async () => {
  await writeKubeconfig(join(t.dir, 'kubeconfig'), t.server.url, { name: 'lab' });
  const created = await kubectl('create', '-n', 'kube-system', '-f', CILIUM_KNP.pathname);
  assert.equal(created.code, 0, created.stderr);
  assert.equal(created.stdout, 'networkpolicy.networking.k8s.io/client-egress-to-echo created\n');
  const applied = await kubectl('apply', '-n', 'kube-system', '-f', CILIUM_KNP.pathname);
  assert.equal(applied.code, 0, applied.stderr);
  assert.equal(applied.stdout, 'networkpolicy.networking.k8s.io/client-egress-to-echo configured\n');
});
