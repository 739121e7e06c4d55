/**
 * Agent restarts and crashes under traffic (root; the datapath of
 * $PALISADE_E2E_DATAPATH). Loops of allowed and denied L4, L7 (HTTP rules)
 * and FQDN requests run while each node's agent is restarted
 * (`lab restart-agent`) and killed with SIGKILL: the kernel keeps the
 * policy, the node proxy (its own process) keeps deciding L7 and DNS, so
 * no allowed request fails and no denied one gets through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { labName, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { restartAgent } from '../../src/lab/lifecycle.ts';
import { agentPid } from '../../src/lab/node-processes.ts';
import { pod, workload } from '../kit/manifests.ts';

requireRoot();
let lab: TestLab;
let backend = '';

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: lab.palisade.dev/v1
kind: ExternalHost
metadata: {name: web}
spec: {names: [web.example.test]}
---
apiVersion: lab.palisade.dev/v1
kind: ExternalHost
metadata: {name: other}
spec: {names: [other.example.test]}
${pod('shop', 'backend', 'node-1', { containers: [{ name: 'web', command: workload('http-echo', 80) }, { name: 'plain', command: workload('http-echo', 8080) }] })}${pod('shop', 'client', 'node-2')}${pod('shop', 'stranger', 'node-2')}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: backend-in, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: GET, path: "/public.*"}]
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-out, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: backend}}]
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.example.test"}]
  - toFQDNs: [{matchName: web.example.test}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;

before(async () => {
  lab = await startLab(labName('e2erst'));
  lab.apply(APP);
  const pods = JSON.parse(lab.cli(['get', 'pods', '-n', 'shop', '-o', 'json']).out) as { items: { metadata: { name: string }; status: { podIP: string } }[] };
  backend = pods.items.find((p) => p.metadata.name === 'backend')!.status.podIP;
  await within(15_000, 'web.example.test answers the client', async () => (await lab.curl('shop', 'client', 'http://web.example.test/', 2)).http === '200');
});
after(async () => {
  await lab?.down();
});

/** One kind of request, repeated until stopped: the HTTP codes it got. */
interface Loop {
  name: string;
  pod: string;
  url(): string;
  allowed: (code: string) => boolean;
}

const LOOPS: Loop[] = [
  { name: 'L4 allowed (client → backend:8080)', pod: 'client', url: () => `http://${backend}:8080/`, allowed: (c) => c === '200' },
  { name: 'L4 denied (stranger → backend:8080)', pod: 'stranger', url: () => `http://${backend}:8080/`, allowed: (c) => c !== '200' },
  { name: 'L7 allowed (GET /public)', pod: 'client', url: () => `http://${backend}/public/x`, allowed: (c) => c === '200' },
  { name: 'L7 denied (GET /admin → 403)', pod: 'client', url: () => `http://${backend}/admin`, allowed: (c) => c === '403' },
  { name: 'FQDN allowed (web.example.test)', pod: 'client', url: () => 'http://web.example.test/', allowed: (c) => c === '200' },
  { name: 'FQDN denied (other.example.test)', pod: 'client', url: () => 'http://other.example.test/', allowed: (c) => c !== '200' },
];

test('allowed L4, L7 and FQDN requests never fail and denied ones never pass, through restart-agent and kill -9 on both nodes', async () => {
  let stop = false;
  const results = new Map<string, string[]>(LOOPS.map((l) => [l.name, []]));
  const loops = LOOPS.map(async (l) => {
    // A request that gets an answer (200, or the proxy's 403) may wait out a restart; one that is dropped gives up sooner.
    const timeoutS = l.allowed('000') ? 1 : 5;
    while (!stop) results.get(l.name)!.push((await lab.curl('shop', l.pod, l.url(), timeoutS)).http);
  });
  const events: string[] = [];
  const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  try {
    await settle(1500);
    for (const node of ['node-1', 'node-2']) {
      events.push(`restart-agent ${node}`);
      await restartAgent(lab.name, node);
      await settle(1500);
      events.push(`kill -9 agent ${node}`);
      const old = agentPid(lab.name, node);
      process.kill(old, 'SIGKILL');
      await within(1000, `${node}: a new agent`, async () => agentPid(lab.name, node) !== old);
      await within(30_000, `${node}: ready again`, async () => lab.cli(['lab', 'status']).code === 0);
      await settle(1500);
    }
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  const report = LOOPS.map((l) => {
    const codes = results.get(l.name)!;
    const bad = codes.filter((c) => !l.allowed(c));
    return `${l.name}: ${codes.length} requests, ${bad.length} wrong${bad.length ? ` (${[...new Set(bad)].join(', ')})` : ''}`;
  });
  console.log(`# events: ${events.join(', ')}\n# ${report.join('\n# ')}`);
  for (const l of LOOPS) {
    const codes = results.get(l.name)!;
    assert.ok(codes.length >= 10, `${l.name}: only ${codes.length} requests ran`);
    assert.deepEqual(codes.filter((c) => !l.allowed(c)), [], `${l.name}\n${report.join('\n')}`);
  }
});
