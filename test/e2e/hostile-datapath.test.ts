/**
 * A hostile pod against the datapath itself (root; the datapath of
 * $PALISADE_E2E_DATAPATH, both in CI):
 *
 *   - it writes raw packets (IP_HDRINCL) with another pod's address, an
 *     unassigned pod address or an outside address as source, to victims
 *     whose policy admits only that other pod: every pod interface passes
 *     only its own pod's address, so nothing arrives, and each drop is a
 *     flow record DROPPED INVALID_SOURCE_IP naming the real sender;
 *   - it connects straight to the node proxies' ports (<node IP>:15001 and
 *     :15053, TCP and UDP, this node and the other): only traffic the
 *     datapath steered reaches a proxy, so no handshake completes and no
 *     answer comes, with its egress denied or with no policy at all; steered
 *     L7 and DNS traffic still gets its proxy's answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { labName, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { pod, workload, dnsThroughProxy } from '../kit/manifests.ts';
import { containerLogPath } from '../../src/lab/paths.ts';

requireRoot();
const FIXTURE = fileURLToPath(new URL('./fixtures/hostile-pod.ts', import.meta.url));
const NODE = process.execPath;
const NS = 'hostile';
const PORT = 7000;
const PROXY_PORTS = [15001, 15053];
let lab: TestLab;
let ip: Record<string, string> = {};

/** Victims on both nodes record every datagram that reaches them; only `trusted` may send to them. */
const victim = (name: string, node: string): string => pod(NS, name, node, { app: 'victim', containers: [{ name: 'c', command: [NODE, FIXTURE, 'record', String(PORT)] }] });

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
${victim('victim', 'node-1')}
${victim('victim2', 'node-2')}
${pod(NS, 'trusted', 'node-2')}
${pod(NS, 'other', 'node-1')}
${pod(NS, 'walled', 'node-1')}
${pod(NS, 'client', 'node-1')}
${pod(NS, 'backend', 'node-2', { containers: [{ name: 'c', command: workload('http-echo', 80) }] })}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: victims-hear-trusted, namespace: ${NS}}
spec:
  endpointSelector: {matchLabels: {app: victim}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: trusted}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: walled-no-egress, namespace: ${NS}}
spec:
  podSelector: {matchLabels: {app: walled}}
  policyTypes: [Egress]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-through-proxies, namespace: ${NS}}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: backend}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: GET, path: /}]
${dnsThroughProxy('**.cluster.local')}
`;

before(async () => {
  lab = await startLab(labName('e2ehost'));
  lab.apply(APP);
  const pods = JSON.parse(lab.cli(['get', 'pods', '-n', NS, '-o', 'json']).out) as { items: { metadata: { name: string }; status: { podIP: string } }[] };
  ip = Object.fromEntries(pods.items.map((p) => [p.metadata.name, p.status.podIP]));
});
after(async () => {
  await lab?.down();
});

/** Runs the fixture in a pod; its last JSON line. */
async function inPod<T>(pod: string, args: string[]): Promise<T> {
  const r = await lab.execInAsync(NS, pod, [NODE, FIXTURE, ...args]);
  const line = r.out.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('{')) throw new Error(`hostile-pod ${args.join(' ')} in ${pod} (exit ${r.code}): ${r.out}${r.err}`);
  return JSON.parse(line) as T;
}

/** What reached a victim, from its container's log (the file `palisade logs` reads: polled, so no CLI per poll). */
function received(pod: string): { from: string; text: string }[] {
  return readFileSync(containerLogPath(lab.name, NS, pod, 'c'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { from: string; text: string });
}

interface DropRecord {
  flow: {
    verdict: string;
    drop_reason_desc?: string;
    node_name?: string;
    IP?: { source: string; destination: string };
    source?: { pod_name?: string; namespace?: string };
  };
}

function spoofDrops(): DropRecord[] {
  return lab
    .cli(['observe', '--verdict', 'DROPPED', '-o', 'json', '--last', '500'])
    .out.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as DropRecord)
    .filter((r) => r.flow.drop_reason_desc === 'INVALID_SOURCE_IP');
}

test('a pod cannot send as another pod, an unassigned pod address or the world: nothing arrives, each drop is a flow naming the sender', async () => {
  const nonce = randomBytes(4).toString('hex');
  const unassigned = '10.244.1.250';
  const world = '198.18.7.7';
  const sources = [ip['trusted']!, unassigned, world];
  for (const v of ['victim', 'victim2']) {
    const sent = await inPod<{ sent: string[] }>('other', ['spoof', ip[v]!, String(PORT), `spoofed-${nonce}`, ...sources]);
    assert.deepEqual(sent.sent, sources);
  }
  // The genuine sender still gets through, after the spoofed datagrams.
  for (const v of ['victim', 'victim2']) await inPod('trusted', ['send', ip[v]!, String(PORT), `genuine-${nonce}`]);
  for (const v of ['victim', 'victim2']) {
    await within(5000, `${v} hears trusted`, async () => received(v).some((d) => d.text === `genuine-${nonce}`));
    const got = received(v).filter((d) => d.text.includes(nonce));
    assert.deepEqual(got, [{ from: ip['trusted'], text: `genuine-${nonce}` }], `${v} received only the genuine datagram`);
  }
  // One drop record per spoofed datagram, on the sender's node, with the packet's addresses and the real sender.
  const want = ['victim', 'victim2'].flatMap((v) => sources.map((src) => `${src} -> ${ip[v]}`));
  let drops: DropRecord[] = [];
  await within(10_000, 'INVALID_SOURCE_IP records', async () => {
    drops = spoofDrops();
    return want.every((w) => drops.some((d) => `${d.flow.IP?.source} -> ${d.flow.IP?.destination}` === w));
  }).catch((err: Error) => assert.fail(`${err.message}; records: ${JSON.stringify(drops, null, 1)}`));
  for (const w of want) {
    const d = drops.find((r) => `${r.flow.IP?.source} -> ${r.flow.IP?.destination}` === w)!;
    assert.equal(d.flow.verdict, 'DROPPED', w);
    assert.equal(d.flow.node_name, 'node-1', `${w}: dropped where it was sent`);
    assert.deepEqual({ namespace: d.flow.source?.namespace, pod: d.flow.source?.pod_name }, { namespace: NS, pod: 'other' }, `${w}: names the sending pod`);
  }
});

test('proxy ports take only steered traffic: a pod with egress denied or with no policy reaches no proxy on either node, TCP or UDP', async () => {
  const nodes = lab.state.nodes.map((n) => n.underlayIp);
  assert.equal(nodes.length, 2);
  const targets = nodes.flatMap((n) => [...PROXY_PORTS.map((p) => `tcp:${n}:${p}`), `dns:${n}:15053`]);
  // TCP: no handshake may complete (a proxy that accepts and then resets was still reached).
  const unreached = (t: string, r: string | undefined): boolean => (t.startsWith('tcp:') ? r === 'timeout' || r === 'ECONNREFUSED' : r === 'no answer');
  const reached: Record<string, string | undefined> = {};
  for (const from of ['walled', 'other']) {
    const r = await inPod<Record<string, string>>(from, ['probe', ...targets]);
    for (const t of targets) if (!unreached(t, r[t])) reached[`${from} → ${t}`] = r[t];
  }
  assert.deepEqual(reached, {});
});

test('steered traffic still reaches the proxies: an allowed request through an L7 rule and an allowed query through a DNS rule are answered', async () => {
  const url = `http://${ip['backend']}/`;
  assert.equal((await lab.curl(NS, 'client', url, 3)).http, '200');
  assert.equal((await lab.curl(NS, 'client', `${url}admin`, 3)).http, '403', 'the HTTP proxy decided');
  const dig = async (name: string): Promise<string> => {
    const r = await lab.execInAsync(NS, 'client', ['dig', '+time=2', '+tries=2', name]);
    return `${/status: (\w+)/.exec(r.out)?.[1] ?? 'no answer'} ${[...r.out.matchAll(/\sIN\s+A\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]).join(',')}`.trim();
  };
  assert.equal(await dig('kube-dns.kube-system.svc.cluster.local'), 'NOERROR 10.96.0.10');
  assert.equal(await dig('example.com'), 'REFUSED', 'the DNS proxy decided');
});
