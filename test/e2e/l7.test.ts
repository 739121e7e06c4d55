/**
 * L7 HTTP policy end to end (root, legacy datapath): the datapath steers
 * ports with HTTP rules to the node's transparent proxy, which answers a
 * denied request with 403 "Access denied", forwards allowed ones from the
 * client's own address, refuses ambiguous or tricky requests, fails closed
 * while the agent restarts, and reports every request as an L7 flow.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { labName, requireRoot, ROOT, startLab, within, type TestLab } from './lab-kit.ts';
import { restartAgent } from '../../src/lab/lifecycle.ts';

requireRoot();
let lab: TestLab;
let ip: Record<string, string> = {};

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: shop, labels: {app: backend}}
spec:
  nodeName: node-1
  containers: [{name: c, command: [palisade, workload, http-echo, --port, "80"], ports: [{name: http, containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: shop, labels: {app: frontend}}
spec: {nodeName: node-2, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: shop, labels: {app: other}}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend-reads, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: /}
        - {method: GET, path: "/public.*"}
`;

before(async () => {
  lab = await startLab(labName('e2el7'));
  lab.apply(APP);
  const pods = JSON.parse(lab.cli(['get', 'pods', '-A', '-o', 'json']).out) as { items: { metadata: { namespace: string; name: string }; status: { podIP: string } }[] };
  ip = Object.fromEntries(pods.items.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p.status.podIP]));
});
after(async () => {
  await lab?.down();
});

/** An HTTP request from a pod: status, body. `extra` are more curl arguments. */
async function http(from: string, method: string, path: string, extra: string[] = []): Promise<{ code: string; body: string }> {
  const [ns = '', pod = ''] = from.split('/');
  const r = await lab.execInAsync(ns, pod, ['curl', '-s', '-m', '2', '--path-as-is', '-X', method, ...extra, '-o', '-', '-w', '\n%{http_code}', `http://${ip['shop/backend']}${path}`]);
  const i = r.out.lastIndexOf('\n');
  return { code: r.out.slice(i + 1), body: r.out.slice(0, Math.max(0, i)) };
}

test('frontend may GET / and /public.*; POST / and GET /admin get 403 with exactly "Access denied"', async () => {
  const root = await http('shop/frontend', 'GET', '/');
  assert.equal(root.code, '200');
  const echo = JSON.parse(root.body) as { client: { address: string }; path: string };
  assert.equal(echo.client.address, ip['shop/frontend'], 'the backend sees the client pod’s own address');
  assert.equal((await http('shop/frontend', 'GET', '/public/docs?page=2')).code, '200');
  for (const [method, path] of [['POST', '/'], ['GET', '/admin']] as const) {
    const r = lab.execIn('shop', 'frontend', ['curl', '-s', '-m', '2', '-i', '-X', method, `http://${ip['shop/backend']}${path}`]);
    assert.match(r.out, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(r.out, /\r\ncontent-type: text\/plain\r\n/i);
    assert.ok(r.out.endsWith('\r\n\r\nAccess denied\r\n'), JSON.stringify(r.out.slice(-40)));
  }
});

test('a pod no rule names gets nothing at all: dropped at L3/L4', async () => {
  const r = await http('shop/other', 'GET', '/');
  assert.equal(r.code, '000');
});

test('no path trick passes a rule it should fail, and the backend never sees /admin', async () => {
  const tricks = ['/public/../admin', '/public/%2e%2e/admin', '/public/%2E%2E/admin', '//admin', '/ADMIN', '/admin;x', '/admin%00', '/public/..%2fadmin', '/./admin'];
  for (const t of tricks) {
    const r = await http('shop/frontend', 'GET', t);
    assert.ok(r.code === '403' || r.code === '400', `${t}: got ${r.code} ${r.body}`);
  }
  // Ambiguous framing: refused before policy.
  const both = lab.execIn('shop', 'frontend', ['bash', '-c', `exec 3<>/dev/tcp/${ip['shop/backend']}/80; printf 'GET /public/x HTTP/1.1\\r\\nHost: b\\r\\nContent-Length: 1\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n' >&3; timeout 2 head -1 <&3`]);
  assert.match(both.out, /^HTTP\/1\.1 400/);
});

const example = (file: string): string => readFileSync(`${ROOT}examples/lab/${file}`, 'utf8');

test('Cilium’s star wars demo: L3/L4 drops the X-wing; L7 lets the TIE fighter land and denies the exhaust port', async () => {
  // The shipped examples, as scripts/demo.sh applies them.
  lab.apply(example('star-wars.yaml'));
  const land = async (pod: string, method = 'POST', path = '/v1/request-landing'): Promise<string> =>
    (await lab.execInAsync('default', pod, ['curl', '-s', '-m', '2', '-X', method, '-w', '\n%{http_code}', `http://deathstar.default.svc.cluster.local${path}`])).out;
  lab.apply(example('star-wars-l4.yaml'));
  await within(2000, 'xwing dropped', async () => (await land('xwing')).endsWith('\n000'));
  assert.ok((await land('tiefighter')).endsWith('\n200'));
  lab.apply(example('star-wars-l7.yaml'));
  let last = '';
  await within(3000, 'exhaust port denied', async () => (last = await land('tiefighter', 'PUT', '/v1/exhaust-port')) === 'Access denied\r\n\n403').catch((err: unknown) => {
    throw new Error(`${String(err)}; last answer ${JSON.stringify(last)}`);
  });
  assert.ok((await land('tiefighter')).endsWith('\n200'), 'landing still allowed');
  assert.ok((await land('xwing')).endsWith('\n000'), 'xwing still dropped');
});

test('each request is an L7 flow with method, URL, status and the policy', () => {
  const out = lab.cli(['observe', '--type', 'l7', '--http-method', 'POST', '--to-pod', 'shop/backend', '-o', 'json', '--last', '10']).out;
  const flows = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { flow: { verdict: string; l7: { type: string; http: { method: string; url: string; code?: number } }; ingress_denied_by?: { name: string }[] } });
  const denied = flows.find((f) => f.flow.l7.type === 'RESPONSE' && f.flow.l7.http.code === 403);
  assert.ok(denied, out);
  assert.equal(denied.flow.verdict, 'DROPPED');
  assert.match(denied.flow.l7.http.url, /\/$/);
  assert.equal(denied.flow.ingress_denied_by?.[0]?.name, 'frontend-reads');
});

test('restarting the agent lets no denied request through (the proxy port fails closed)', async () => {
  let stop = false;
  const codes: string[] = [];
  const loop = (async () => {
    while (!stop) codes.push((await http('shop/frontend', 'GET', '/admin')).code);
  })();
  await restartAgent(lab.name, 'node-1');
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await loop;
  assert.ok(codes.length >= 3, `${codes.length} requests during the restart`);
  assert.deepEqual(codes.filter((c) => c !== '403' && c !== '000'), [], `codes seen: ${[...new Set(codes)].join(', ')}`);
  assert.equal((await http('shop/frontend', 'GET', '/')).code, '200', 'allowed again after the restart');
});
