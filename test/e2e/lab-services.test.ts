/**
 * Lab services and cluster DNS end to end (root): ClusterIP Services load-
 * balanced per connection over every backend, a deleted backend out of
 * rotation within 1 s, policy judged on the backend pod rather than the
 * Service address, and cluster DNS (short, namespaced and full names, SRV,
 * NXDOMAIN) answered by the kube-dns pod, and the outside world: ExternalHosts
 * reached by name over HTTP and verified HTTPS, their names resolved through
 * the lab's upstream DNS via cluster DNS.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { labName, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';

requireRoot();
let lab: TestLab;

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
${[1, 2, 3]
  .map(
    (i) => `apiVersion: v1
kind: Pod
metadata: {name: web-${i}, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-${(i % 2) + 1}
  containers: [{name: c, command: [palisade, workload, http-echo, --port, "8080"], ports: [{name: http, containerPort: 8080}]}]
---`,
  )
  .join('\n')}
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {nodeName: node-2, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: default, labels: {app: other}}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: lab.palisade.dev/v1
kind: ExternalHost
metadata: {name: github}
spec:
  names: [api.github.com, www.github.com]
---
apiVersion: lab.palisade.dev/v1
kind: ExternalHost
metadata: {name: plain}
spec:
  names: [plain.example.com]
  ports: [80]
`;

before(async () => {
  lab = await startLab(labName('e2esvc'));
  lab.apply(APP);
});
after(async () => {
  await lab?.down();
});

const whoAnswers = async (from: [string, string], url: string): Promise<string> => {
  const r = await lab.curl(from[0], from[1], url, 2);
  return r.http === '200' ? (JSON.parse(r.body) as { pod: string }).pod : `HTTP ${r.http} (curl ${r.exit})`;
};

test('a pod reaches a Service by short name, by <svc>.<ns> and by full name', async () => {
  for (const url of ['http://web/', 'http://web.shop/', 'http://web.shop.svc.cluster.local/']) {
    assert.match(await whoAnswers(['shop', 'client'], url), /^web-\d$/, url);
  }
  assert.match(await whoAnswers(['default', 'other'], 'http://web.shop/'), /^web-\d$/, 'from another namespace');
});

test('connections spread over every backend, and a deleted backend stops getting new ones within 1 s', async () => {
  const seen = new Set<string>();
  for (let i = 0; i < 40 && seen.size < 3; i++) seen.add(await whoAnswers(['shop', 'client'], 'http://web.shop/'));
  assert.deepEqual([...seen].sort(), ['web-1', 'web-2', 'web-3']);
  lab.cli(['delete', 'pod', 'web-3', '-n', 'shop']);
  const ms = await within(1000, 'web-3 out of the Service', async () => {
    const answers = new Set<string>();
    for (let i = 0; i < 10; i++) answers.add(await whoAnswers(['shop', 'client'], 'http://web.shop/'));
    return !answers.has('web-3');
  });
  assert.ok(ms <= 1000);
  const after = new Set<string>();
  for (let i = 0; i < 20; i++) after.add(await whoAnswers(['shop', 'client'], 'http://web.shop/'));
  assert.deepEqual([...after].sort(), ['web-1', 'web-2']);
});

test('policy sees the backend pod behind a Service address', async () => {
  const allow = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-to-web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
  - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns}}]
    toPorts: [{ports: [{port: "53", protocol: ANY}]}]
`;
  lab.apply(allow);
  assert.match(await whoAnswers(['shop', 'client'], 'http://web.shop/'), /^web-\d$/, 'allowed: toEndpoints of the backends');
  const deny = allow.replace('{app: web}', '{app: nothing}');
  lab.apply(deny);
  await within(1000, 'blocked once the rule no longer names the backends', async () => (await lab.curl('shop', 'client', 'http://web.shop/', 1)).http === '000');
  lab.remove(deny);
});

test('cluster DNS answers Services (A and SRV) and NXDOMAIN for unknown names', () => {
  const a = lab.execIn('shop', 'client', ['dig', '+short', 'web.shop.svc.cluster.local']);
  assert.match(a.out.trim(), /^10\.96\.\d+\.\d+$/);
  const srv = lab.execIn('shop', 'client', ['dig', '+short', 'SRV', '_http._tcp.web.shop.svc.cluster.local']);
  assert.match(srv.out, /\b80 web\.shop\.svc\.cluster\.local\./);
  const search = lab.execIn('shop', 'client', ['dig', '+short', '+search', 'web']);
  assert.equal(search.out.trim(), a.out.trim(), 'search domains from the pod resolv.conf');
  const nx = lab.execIn('shop', 'client', ['dig', 'nothere.shop.svc.cluster.local']);
  assert.match(nx.out, /status: NXDOMAIN/);
});

test('a pod reaches ExternalHosts by name over HTTP and HTTPS, certificate verified', async () => {
  await within(5000, 'external names resolve', async () => (await lab.curl('shop', 'client', 'http://api.github.com/', 1)).http === '200');
  const http = JSON.parse((await lab.curl('shop', 'client', 'http://api.github.com/repos')).body) as { pod: string; path: string };
  assert.deepEqual([http.pod, http.path], ['github', '/repos']);
  // curl verifies certificates by default: the pod trusts the lab CA.
  const https = await lab.curl('default', 'other', 'https://www.github.com/secure', 2);
  assert.equal(https.exit, 0, `curl exit ${https.exit}`);
  assert.equal((JSON.parse(https.body) as { pod: string }).pod, 'github');
  assert.equal((await lab.curl('shop', 'client', 'http://plain.example.com/')).http, '200');
});

test('dig in a pod resolves external names through cluster DNS; unknown names get NXDOMAIN', () => {
  const a = lab.execIn('shop', 'client', ['dig', '+short', 'api.github.com']);
  assert.match(a.out.trim(), /^198\.18\.\d+\.\d+$/);
  const nx = lab.execIn('shop', 'client', ['dig', 'unknown.example.org']);
  assert.match(nx.out, /status: NXDOMAIN/);
});

test('deleting an ExternalHost removes the host and its names', async () => {
  lab.cli(['delete', 'externalhost', 'plain']);
  await within(8000, 'plain.example.com gone', async () => /NXDOMAIN/.test(lab.execIn('shop', 'client', ['dig', 'plain.example.com']).out));
});
