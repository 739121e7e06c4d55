/**
 * Agent restarts and crashes under traffic (root; the datapath of
 * $PALISADE_E2E_DATAPATH). Loops of allowed and denied L4, L7 (HTTP rules)
 * and FQDN requests, and of single-try DNS queries, run while each node's agent is restarted
 * (`lab restart-agent`) and killed with SIGKILL: the kernel keeps the
 * policy, the node proxy (its own process) keeps deciding L7 and DNS, so
 * no allowed request fails and no denied one gets through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { labName, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { restartAgent } from '../../src/lab/lifecycle.ts';
import { agentPid } from '../../src/lab/node-processes.ts';
import { pod, workload, dnsThroughProxy } from '../kit/manifests.ts';

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
${dnsThroughProxy('*.example.test')}
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

/** One kind of request, repeated until stopped: what each got (an HTTP code, a DNS status). */
interface Loop {
  name: string;
  /** Seconds one request may take: one that gets an answer (200, the proxy's 403) may wait out a restart; one that is dropped gives up sooner. */
  timeoutS: number;
  request(timeoutS: number): Promise<{ code: string; exit: number }>;
  allowed: (code: string) => boolean;
}

const http = (pod: string, url: () => string) => async (timeoutS: number) => {
  const r = await lab.curl('shop', pod, url(), timeoutS);
  return { code: r.http, exit: r.exit };
};
/**
 * One UDP query, one try: a query lost anywhere on the way (datapath, proxy)
 * shows here, where curl's resolver would hide it behind a 5 s retry.
 */
const dns = (name: string) => async (timeoutS: number) => {
  const r = await lab.execInAsync('shop', 'client', ['dig', '+tries=1', `+timeout=${timeoutS}`, '+noall', '+comments', '+answer', `${name}.`]);
  const status = /status: (\w+)/.exec(r.out)?.[1] ?? 'no-answer';
  return { code: status === 'NOERROR' && !/\sIN\s+A\s/.test(r.out) ? 'NOERROR-empty' : status, exit: r.code ?? -1 };
};

const LOOPS: Loop[] = [
  { name: 'L4 allowed (client → backend:8080)', timeoutS: 5, request: http('client', () => `http://${backend}:8080/`), allowed: (c) => c === '200' },
  { name: 'L4 denied (stranger → backend:8080)', timeoutS: 1, request: http('stranger', () => `http://${backend}:8080/`), allowed: (c) => c !== '200' },
  { name: 'L7 allowed (GET /public)', timeoutS: 5, request: http('client', () => `http://${backend}/public/x`), allowed: (c) => c === '200' },
  { name: 'L7 denied (GET /admin → 403)', timeoutS: 5, request: http('client', () => `http://${backend}/admin`), allowed: (c) => c === '403' },
  { name: 'FQDN allowed (web.example.test)', timeoutS: 5, request: http('client', () => 'http://web.example.test/'), allowed: (c) => c === '200' },
  { name: 'FQDN denied (other.example.test)', timeoutS: 1, request: http('client', () => 'http://other.example.test/'), allowed: (c) => c !== '200' },
  { name: 'DNS allowed (dig web.example.test, one try)', timeoutS: 2, request: dns('web.example.test'), allowed: (c) => c === 'NOERROR' },
  { name: 'DNS denied (dig example.org → REFUSED)', timeoutS: 2, request: dns('example.org'), allowed: (c) => c === 'REFUSED' },
];

test('allowed L4, L7 and FQDN requests never fail and denied ones never pass, through restart-agent and kill -9 on both nodes', async () => {
  let stop = false;
  const t0 = performance.now();
  const since = (): string => `+${((performance.now() - t0) / 1000).toFixed(1)} s`;
  /** What each request got; a wrong one also says the tool's exit code and when it was sent, to match against the events. */
  const results = new Map<string, { code: string; detail: string }[]>(LOOPS.map((l) => [l.name, []]));
  const loops = LOOPS.map(async (l) => {
    while (!stop) {
      const started = since();
      const r = await l.request(l.timeoutS);
      results.get(l.name)!.push({ code: r.code, detail: `${r.code} (exit ${r.exit}, sent at ${started})` });
    }
  });
  const events: string[] = [];
  const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  try {
    await settle(1500);
    for (const node of ['node-1', 'node-2']) {
      events.push(`restart-agent ${node} ${since()}`);
      await restartAgent(lab.name, node);
      await settle(1500);
      events.push(`kill -9 agent ${node} ${since()}`);
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
    const bad = codes.filter((c) => !l.allowed(c.code));
    return `${l.name}: ${codes.length} requests, ${bad.length} wrong${bad.length ? `: ${bad.map((c) => c.detail).join(', ')}` : ''}`;
  });
  console.log(`# events: ${events.join(', ')}\n# ${report.join('\n# ')}`);
  for (const l of LOOPS) {
    const codes = results.get(l.name)!;
    assert.ok(codes.length >= 10, `${l.name}: only ${codes.length} requests ran`);
    assert.deepEqual(codes.filter((c) => !l.allowed(c.code)).map((c) => c.code), [], `${l.name}\n${report.join('\n')}\nevents: ${events.join(', ')}`);
  }
});
