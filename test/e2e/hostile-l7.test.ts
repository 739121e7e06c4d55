/**
 * A hostile pod against the node's L7 proxy (issue #21 item 2; root, one
 * node, the datapath of $PALISADE_E2E_DATAPATH). The pod is allowed at L3 to
 * a backend with HTTP rules and opens 20,000 connections, each a denied
 * `POST /admin` announcing a 1,000,000-byte body it never sends. Before, each
 * got its 403 and was kept open waiting for the body, until the node proxy
 * ran out of descriptors and L7 and DNS failed for every pod of the node.
 *
 * Now each is answered 403 with `connection: close` and closed, or refused at
 * once past the per-pod limit; meanwhile and after, another pod's allowed
 * request gets 200 through the same proxy, a DNS query through the node's DNS
 * proxy (same process) is answered, the agent's API answers, and the proxy
 * process keeps well under its descriptor limit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DATAPATH, labName, podScriptJson, requireRoot, startLab, type TestLab } from './lab-kit.ts';
import { pod, workload, dnsThroughProxy } from '../kit/manifests.ts';
import { agentSocketPath } from '../../src/lab/paths.ts';
import { nodePid } from '../../src/lab/node-processes.ts';
import { unixRequest } from '../../src/lab/unix-http.ts';

requireRoot();
const FLOOD = fileURLToPath(new URL('./fixtures/l7-flood.ts', import.meta.url));
const CONNECTIONS = 20_000;
/** Connections the flood has in flight at once: more than the per-pod limit (512). */
const BATCH = 1000;
/**
 * Connection i comes from source port FIRST_PORT + i: none is reused within
 * the run. A reused port would meet the proxy's TIME_WAIT socket of the
 * previous connection with that tuple, and on the eBPF datapath (kernel 6.x)
 * such a SYN, handed to the listener by bpf_sk_assign, is dropped: the
 * kernel will not add a request socket beside the TIME_WAIT one (nftables'
 * TPROXY kills the TIME_WAIT socket first). That is a datapath matter of its
 * own, not what this test is about.
 */
const FIRST_PORT = 32768;
let lab: TestLab;
let ip: Record<string, string> = {};

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
${pod('shop', 'backend', 'node-1', { containers: [{ name: 'c', command: workload('http-echo', 80) }] })}---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: shop}
spec: {selector: {app: backend}, ports: [{port: 80, targetPort: 80}]}
${pod('shop', 'attacker', 'node-1')}${pod('shop', 'friend', 'node-1')}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: backend-reads, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: attacker}}, {matchLabels: {app: friend}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: GET, path: /}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: friend-out, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: friend}}
  egress:
${dnsThroughProxy('*')}
  - toEndpoints: [{matchLabels: {app: backend}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
`;

before(async () => {
  lab = await startLab(labName('e2eh7'), 1);
  lab.apply(APP);
  const pods = JSON.parse(lab.cli(['get', 'pods', '-A', '-o', 'json']).out) as { items: { metadata: { namespace: string; name: string }; status: { podIP: string } }[] };
  ip = Object.fromEntries(pods.items.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p.status.podIP]));
});
after(async () => {
  await lab?.down();
});

interface Flood {
  opened: number;
  answered403: number;
  answeredClose: number;
  answeredKeepAlive: number;
  otherAnswers: number;
  refused: number;
  closedAfterAnswer: number;
  connectErrors: number;
  unsettled: number;
  stillOpen: number;
  seconds: number;
  errors: Record<string, number>;
}

/** The flood from the attacker pod (a host process in its namespace, with our descriptor limit). */
function flood(): Promise<Flood> {
  return podScriptJson<Flood>(lab.name, 'shop', 'attacker', FLOOD, [ip['shop/backend'] ?? '', '80', String(CONNECTIONS), String(BATCH), '75', String(FIRST_PORT)]);
}

interface Probe {
  /** The friend pod's allowed GET /: its HTTP status ('000': no answer). */
  l7: string;
  /** dig through the node's DNS proxy: the status, and the backend Service's address when answered. */
  dns: string;
  /** The agent's /healthz: its status, or why it did not answer. */
  api: number | string;
}

/** The slowest probe so far (ms): reported with the figures, asserted nowhere. */
let slowestProbeMs = 0;

/** What the node still does for everyone else. */
async function probe(): Promise<Probe> {
  const t0 = performance.now();
  const [l7, dns, api] = await Promise.all([
    lab.curl('shop', 'friend', `http://${ip['shop/backend']}/`, 5),
    lab.execInAsync('shop', 'friend', ['dig', '+time=3', '+tries=1', 'backend.shop.svc.cluster.local']),
    agentHealth(),
  ]);
  const status = /status: (\w+)/.exec(dns.out)?.[1] ?? 'no answer';
  const answered = /\sIN\s+A\s+(\d+\.\d+\.\d+\.\d+)/.exec(dns.out)?.[1];
  slowestProbeMs = Math.max(slowestProbeMs, Math.round(performance.now() - t0));
  return { l7: l7.http, dns: answered ? `${status} ${answered}` : status, api };
}

/**
 * The agent's /healthz status, or why it did not answer. Asked twice when the
 * first try fails on a kept-alive connection the agent had already closed (its
 * FIN unread while lab.apply's spawnSync held our event loop): EPIPE, ECONNRESET.
 */
async function agentHealth(): Promise<number | string> {
  const ask = () => unixRequest(agentSocketPath(lab.name, 'node-1'), 'GET', '/healthz', undefined, 5000).then((r) => r.status);
  return ask()
    .catch((err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? ask() : Promise.reject(err)))
    .catch((err: unknown) => String(err));
}

/** The node proxy's descriptors now (its pid read again: the supervisor restarts a proxy that died). */
function proxyFds(): number {
  try {
    return readdirSync(`/proc/${nodePid(lab.name, 'node-1', 'proxy')}/fd`).length;
  } catch {
    return 0;
  }
}

test(`${CONNECTIONS.toLocaleString('en')} stalled denied requests from one pod (${DATAPATH}): each is closed or refused, the node proxy keeps its descriptors, other pods' L7 and DNS and the agent's API go on`, async () => {
  const proxyPid = nodePid(lab.name, 'node-1', 'proxy');
  const limitLine = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${proxyPid}/limits`, 'utf8'));
  assert.ok(limitLine?.[1], 'the node proxy has a descriptor limit');
  const limit = Number(limitLine[1]);
  const baseline = await probe();
  const serviceIp = baseline.dns.split(' ')[1];
  assert.deepEqual(baseline, { l7: '200', dns: `NOERROR ${serviceIp}`, api: 200 }, 'everything works before the flood');
  assert.ok(serviceIp, 'the Service name resolves');
  const idleFds = proxyFds();

  let maxFds = idleFds;
  const sampler = setInterval(() => (maxFds = Math.max(maxFds, proxyFds())), 100);
  let flooding = true;
  const t0 = performance.now();
  const attack = flood().finally(() => (flooding = false));
  const during: Probe[] = [];
  try {
    while (flooding) {
      during.push(await probe());
      await new Promise((r) => setTimeout(r, 300));
    }
    const seen = await attack;
    const afterwards = await probe();
    clearInterval(sampler);
    maxFds = Math.max(maxFds, proxyFds());
    const figures = JSON.stringify({ ...seen, floodWallSeconds: Math.round((performance.now() - t0) / 1000), slowestProbeMs, limit, idleFds, maxFds, probes: during.length });
    console.log(`hostile-l7 (${DATAPATH}): ${figures}`);

    // Every connection was answered 403 and closed, or refused with no answer at all.
    assert.equal(seen.opened, CONNECTIONS, figures);
    assert.equal(seen.answeredKeepAlive, 0, `no 403 leaves the connection waiting for the body: ${figures}`);
    assert.equal(seen.otherAnswers, 0, figures);
    assert.equal(seen.answered403, seen.answeredClose, figures);
    assert.equal(seen.answered403 + seen.refused, CONNECTIONS, `each answered or refused: ${figures}`);
    assert.ok(seen.answered403 > 0, `some were admitted and answered: ${figures}`);
    assert.ok(seen.refused > 0, `the per-pod limit refused the rest: ${figures}`);
    assert.equal(seen.stillOpen, 0, `the proxy holds none of them open: ${figures}`);
    // The proxy process, which serves DNS too, stayed far from its limit.
    assert.ok(maxFds < limit / 2, `node proxy descriptors peaked at ${maxFds} of ${limit}`);
    // Everyone else was served all along.
    assert.ok(during.length >= 1, 'probed while the flood ran');
    const good: Probe = { l7: '200', dns: `NOERROR ${serviceIp}`, api: 200 };
    assert.deepEqual(during.filter((p) => JSON.stringify(p) !== JSON.stringify(good)), [], `probes during the flood: ${JSON.stringify(during)}`);
    assert.deepEqual(afterwards, good, 'and after it');
  } finally {
    clearInterval(sampler);
    await attack.catch(() => undefined);
  }
});
