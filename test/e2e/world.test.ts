/**
 * The lab's outside world at real addresses, end to end (root): an
 * ExternalHost on 1.1.1.1 and 1.0.0.1, as Cilium's connectivity tests name
 * them, reached from a pod by address and by name and answered by the lab's
 * own host (its reply names it), and a toCIDR 1.1.1.1/32 egress policy that
 * allows that address and denies the other. Runs on $PALISADE_E2E_DATAPATH.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fabricNetns } from '../../src/lab/paths.ts';
import { labName, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';

requireRoot();
let lab: TestLab;

const WORLD = `
apiVersion: lab.palisade.dev/v1
kind: ExternalHost
metadata: {name: one}
spec:
  names: [one.one.one.one]
  addresses: [1.1.1.1, 1.0.0.1]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {nodeName: node-1, containers: [{name: c}]}
`;

const TO_ONE = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: to-one, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toCIDR: [1.1.1.1/32]
`;

before(async () => {
  lab = await startLab(labName('e2eworld'));
  lab.apply(WORLD);
});
after(async () => {
  await lab?.down();
});

/** Who answered `url` from the client pod: the replying host's name, or the HTTP code and curl's exit. */
const whoAnswers = async (url: string, timeoutS = 2): Promise<string> => {
  const r = await lab.curl('default', 'client', url, timeoutS);
  return r.http === '200' ? (JSON.parse(r.body) as { pod: string }).pod : `HTTP ${r.http} (curl ${r.exit})`;
};

test('a pod reaches 1.1.1.1 and 1.0.0.1, and the answer comes from the lab\'s host', async () => {
  await within(15_000, 'the ExternalHost answers on 1.1.1.1', async () => (await whoAnswers('http://1.1.1.1/', 1)) === 'one');
  assert.equal(await whoAnswers('http://1.0.0.1/'), 'one');
  // The address is the lab's: the fabric routes it to the host's namespace, and nowhere else.
  const route = spawnSync('ip', ['-n', fabricNetns(lab.name), 'route', 'get', '1.1.1.1'], { encoding: 'utf8' });
  assert.match(route.stdout, /^1\.1\.1\.1 dev br0 /);
  const status = JSON.parse(lab.cli(['get', 'eh', 'one', '-o', 'json']).out) as { status?: { ip?: string } };
  assert.equal(status.status?.ip, '1.1.1.1');
});

test('its name resolves to both addresses through cluster DNS, and HTTPS verifies against them', async () => {
  const a = lab.execIn('default', 'client', ['dig', '+short', 'one.one.one.one']);
  assert.deepEqual(a.out.trim().split('\n').sort(), ['1.0.0.1', '1.1.1.1']);
  assert.equal(await whoAnswers('http://one.one.one.one/'), 'one');
  const https = await lab.curl('default', 'client', 'https://1.1.1.1/secure', 2);
  assert.equal(https.exit, 0, `curl exit ${https.exit}: the certificate names 1.1.1.1 and the pod trusts the lab CA`);
});

test('toCIDR 1.1.1.1/32 allows 1.1.1.1 and denies 1.0.0.1', async () => {
  lab.apply(TO_ONE);
  await within(5000, '1.0.0.1 denied once the policy is in force', async () => (await lab.curl('default', 'client', 'http://1.0.0.1/', 1)).http === '000');
  assert.equal(await whoAnswers('http://1.1.1.1/'), 'one', 'the allowed address still answers');
  for (let i = 0; i < 3; i++) assert.equal((await lab.curl('default', 'client', 'http://1.0.0.1/', 1)).http, '000', 'the other stays denied');
  lab.remove(TO_ONE);
  await within(5000, '1.0.0.1 answers again without the policy', async () => (await whoAnswers('http://1.0.0.1/', 1)) === 'one');
});
