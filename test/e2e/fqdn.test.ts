/**
 * FQDN egress end to end (root; the datapath of $PALISADE_E2E_DATAPATH):
 * pods' DNS is steered to the node's DNS proxy, which refuses names no DNS
 * rule allows, learns the addresses of allowed answers and puts them into
 * the datapath before the pod gets the answer, so that toFQDNs rules let
 * exactly those addresses (and ports) through. Real ExternalHosts, real
 * dnsmasq upstream, real curl and dig.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { labName, podScriptJson, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { restartAgent } from '../../src/lab/lifecycle.ts';
import { nodePid } from '../../src/lab/node-processes.ts';
import { agentSocketPath, fabricNetns, podNetns } from '../../src/lab/paths.ts';
import { unixRequest } from '../../src/lab/unix-http.ts';
import { dnsHostsDir, externalHostNetns, hostsJsonPath } from '../../src/lab/world/world-paths.ts';
import { ipBatch } from '../../src/kernel/index.ts';

requireRoot();
const CLIENT = fileURLToPath(new URL('./fixtures/dns-client.ts', import.meta.url));
const KUBE_DNS = '10.96.0.10';
/** Learned addresses live at least this long here: long enough to outlive an agent restart, short enough to watch expire. */
const MIN_TTL = 15;
let lab: TestLab;

/**
 * A policy letting pods `app` ask kube-dns (port 53, UDP and TCP) for the
 * names `dns` selects, and reach port 80 of the addresses of names `fqdn` selects.
 */
const fqdnPolicy = (name: string, app: string, dns: string, fqdn: string): string => `---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: ${app}}}
  egress:
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [${dns}]
  - toFQDNs: [${fqdn}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]`;

/** ExternalHost name → its DNS names (race.test serves port 80 only: the race adds addresses to it). */
const HOSTS: Record<string, string> = {
  'api-github': 'api.github.com',
  'www-github': 'www.github.com',
  'docs-github': 'docs.github.com',
  'short-github': 'short.github.com',
  evil: 'evil.example.com',
  corp: 'corp.test',
  'corp-deep': 'x.y.corp.test',
  race: 'race.test',
};
const externalHosts = Object.entries(HOSTS)
  .map(([host, name]) => `---\napiVersion: lab.palisade.dev/v1\nkind: ExternalHost\nmetadata: {name: ${host}}\nspec: {names: [${name}]${host === 'race' ? ', ports: [80]' : ''}}`)
  .join('\n');

/** Pod → [node, app label]: deep1 and deep2 share a policy on different nodes. */
const PODS: Record<string, [string, string]> = {
  client: ['node-1', 'client'],
  strict: ['node-1', 'strict'],
  free: ['node-2', 'free'],
  deep1: ['node-1', 'deep'],
  deep2: ['node-2', 'deep'],
  racer: ['node-2', 'racer'],
};
const pods = Object.entries(PODS)
  .map(([pod, [node, app]]) => `---\napiVersion: v1\nkind: Pod\nmetadata: {name: ${pod}, namespace: shop, labels: {app: ${app}}}\nspec: {nodeName: ${node}, containers: [{name: c}]}`)
  .join('\n');

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
${externalHosts}
${pods}
${fqdnPolicy('github-web', 'client', '{matchPattern: "*"}', '{matchPattern: "*.github.com"}')}
${fqdnPolicy('api-only', 'strict', '{matchName: api.github.com}', '{matchName: api.github.com}')}
${fqdnPolicy('corp-subdomains', 'deep', '{matchPattern: "*"}', '{matchPattern: "**.corp.test"}')}
${fqdnPolicy('race', 'racer', '{matchPattern: "*"}', '{matchPattern: "*.race.test"}')}
`;

before(async () => {
  lab = await startLab(labName('e2efq'), 2, { fqdn: { minTtl: MIN_TTL } });
  lab.apply(APP);
  // ExternalHosts come up after the apply returns: wait until each name resolves.
  for (const name of Object.values(HOSTS)) {
    await within(10_000, `${name} resolves`, async () => (await dig('free', name)).ips.length === 1);
  }
});
after(async () => {
  await lab?.down();
});

const curl = (pod: string, url: string, timeoutS = 2) => lab.curl('shop', pod, url, timeoutS);

async function dig(pod: string, name: string, extra: string[] = []): Promise<{ status: string; server: string; ips: string[] }> {
  const r = await lab.execInAsync('shop', pod, ['dig', '+time=2', '+tries=2', ...extra, name]);
  return {
    status: /status: (\w+)/.exec(r.out)?.[1] ?? `no answer (${r.code}): ${r.out}${r.err}`,
    server: /;; SERVER: ([^\s(]+)/.exec(r.out)?.[1] ?? '',
    ips: [...r.out.matchAll(/\sIN\s+A\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!),
  };
}

const podClient = (pod: string, args: string[]): Promise<Record<string, unknown>> => podScriptJson(lab.name, 'shop', pod, CLIENT, args);

async function agentJson<T>(node: string, path: string): Promise<T> {
  const r = await unixRequest(agentSocketPath(lab.name, node), 'GET', path, undefined, 5000);
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

test('*.github.com on port 80: allowed names connect, others and other ports do not', async () => {
  assert.equal((await curl('client', 'http://api.github.com')).http, '200');
  assert.equal((await curl('client', 'http://www.github.com')).http, '200');
  assert.equal((await curl('client', 'http://evil.example.com')).http, '000', 'evil.example.com is not in *.github.com');
  const evil = await dig('client', 'evil.example.com');
  assert.equal(evil.status, 'NOERROR', 'DNS allows every name (matchPattern "*")');
  assert.equal(evil.ips.length, 1);
  assert.equal((await curl('client', `http://${evil.ips[0]}`)).http, '000', "straight to evil.example.com's address");
  assert.notEqual((await lab.execInAsync('shop', 'client', ['curl', '-s', '-m', '2', '-k', 'https://api.github.com'])).code, 0, 'port 443 is not allowed');
  // The pod still talks to the server it was configured with, and gets its answer from it.
  assert.equal((await dig('client', 'api.github.com')).server, `${KUBE_DNS}#53`);
});

test('a DNS rule naming api.github.com only: other names are REFUSED, over UDP and TCP', async () => {
  assert.equal((await dig('strict', 'docs.github.com')).status, 'REFUSED');
  assert.equal((await dig('strict', 'docs.github.com', ['+tcp'])).status, 'REFUSED');
  const api = await dig('strict', 'api.github.com', ['+tcp']);
  assert.equal(api.status, 'NOERROR');
  assert.equal(api.ips.length, 1);
  assert.equal((await curl('strict', 'http://api.github.com')).http, '200');
  // The refusal is a flow record naming the policy.
  await within(3000, 'a DROPPED DNS record for docs.github.com', async () => {
    const r = lab.cli(['observe', '--protocol', 'dns', '--verdict', 'DROPPED', '--dns-query', 'docs.github.com', '--from-pod', 'shop/strict', '-o', 'json', '--last', '5']);
    return r.out.split('\n').some((l) => l.includes('"api-only"') && l.includes('"rcode":5'));
  });
});

test('a pod with no policy reaches everything', async () => {
  assert.equal((await curl('free', 'http://evil.example.com')).http, '200');
  assert.equal((await curl('free', 'http://docs.github.com')).http, '200');
  assert.equal((await lab.execInAsync('shop', 'free', ['curl', '-s', '-m', '2', '-k', '-o', '/dev/null', '-w', '%{http_code}', 'https://api.github.com'])).out, '200');
});

test('**.corp.test reaches multi-label subdomains, not the bare domain; an address is open only on the node that resolved it', async () => {
  assert.equal((await curl('deep2', 'http://x.y.corp.test')).http, '200');
  assert.equal((await curl('deep2', 'http://corp.test')).http, '000', 'the bare domain is not a subdomain');
  const deepIp = (await dig('deep2', 'x.y.corp.test')).ips[0]!;
  // deep1 (node-1) has the same policy but has not looked the name up: node-1 has not learned it.
  assert.equal((await curl('deep1', `http://${deepIp}`)).http, '000', 'node-1 never resolved x.y.corp.test');
  assert.equal((await dig('deep1', 'x.y.corp.test')).status, 'NOERROR');
  assert.equal((await curl('deep1', `http://${deepIp}`)).http, '200', 'once resolved on node-1');
});

test('DNS records carry the query and the answer addresses; hubble_dns_* count them; fqdn cache lists them', async () => {
  const api = (await dig('client', 'api.github.com')).ips[0]!;
  await within(3000, 'a DNS response record with the answer address', async () => {
    // A response travels from the server to the pod: --pod matches either side.
    const r = lab.cli(['observe', '--protocol', 'dns', '--dns-query', 'api.github.com', '--pod', 'shop/client', '-o', 'json', '--last', '20']);
    return r.out.split('\n').some((l) => l.includes('"RESPONSE"') && l.includes(`"${api}"`) && l.includes('"github-web"'));
  });
  const metrics = (await unixRequest(agentSocketPath(lab.name, 'node-1'), 'GET', '/metrics', undefined, 5000)).body;
  const sum = (family: string): number =>
    metrics
      .split('\n')
      .filter((l) => l.startsWith(`${family}{`))
      .reduce((t, l) => t + Number(l.split(' ').pop()), 0);
  assert.ok(sum('hubble_dns_queries_total') > 0, 'hubble_dns_queries_total');
  assert.ok(sum('hubble_dns_responses_total') > 0, 'hubble_dns_responses_total');
  const cache = JSON.parse(lab.cli(['fqdn', 'cache', '-n', 'shop', '--pod', 'client', '-o', 'json']).out) as { node: string; name: string; ip: string; ttlLeft: number; resolvedBy: { pod?: string }[] }[];
  const row = cache.find((r) => r.name === 'api.github.com.');
  assert.ok(row, JSON.stringify(cache));
  assert.equal(row.ip, api);
  assert.equal(row.node, 'node-1');
  assert.ok(row.ttlLeft > 0 && row.ttlLeft <= MIN_TTL, `ttl left ${row.ttlLeft}`);
  assert.ok(row.resolvedBy.some((b) => b.pod === 'client'));
  assert.match(lab.cli(['fqdn', 'cache']).out, /api\.github\.com\.\s+\S+\s+\d+s\s+.*shop\/client/);
});

test('race: 1,000 fresh names, each resolved and connected to at once: no connect fails', async () => {
  // 1,000 names of the race host, each with an address of its own that no
  // one has resolved yet: every answer needs a learn. The addresses sit on
  // the host's loopback behind one route in the fabric, so the fabric keeps
  // one neighbour entry for them, not 1,000 (neighbour tables are bounded machine-wide).
  const hosts = (JSON.parse(readFileSync(hostsJsonPath(lab.name), 'utf8')) as { hosts: Record<string, { ip: string }> }).hosts;
  const raceIp = hosts['race']!.ip;
  // A /22 of the world no ExternalHost has an address in (they are spread by a hash).
  const third = (ip: string): number => Number(ip.split('.')[2]);
  const block = [...Array(63).keys()].map((k) => 4 * (k + 1)).find((b) => !Object.values(hosts).some((h) => third(h.ip) >> 2 === b >> 2))!;
  const addrs = Array.from({ length: 1000 }, (_, n) => `198.18.${block + (n >> 8)}.${n & 255}`);
  await ipBatch(addrs.map((a) => `addr add ${a}/32 dev lo`), externalHostNetns(lab.name, 'race'));
  await ipBatch([`route add 198.18.${block}.0/22 via ${raceIp}`], fabricNetns(lab.name));
  writeFileSync(`${dnsHostsDir(lab.name)}/race-names`, addrs.map((a, i) => `${a} r${i}.race.test`).join('\n') + '\n');
  await within(5000, 'dnsmasq serves the race names', async () => (await dig('racer', 'r999.race.test')).ips[0] === addrs[999]);
  const r = await podClient('racer', ['race', KUBE_DNS, '1000', 'race.test', '80']);
  assert.deepEqual({ ok: r['ok'], failed: r['failed'], failures: r['failures'] }, { ok: 1000, failed: 0, failures: [] });
  const status = await agentJson<{ dnsProxy: { holdTimeouts: number; learnedAnswers: number } }>('node-2', '/v1/status');
  assert.ok(status.dnsProxy.learnedAnswers >= 1000, `learned ${status.dnsProxy.learnedAnswers}`);
});

test('the name cache survives an agent restart: a pod that resolved before still connects after', async () => {
  const ip = (await dig('client', 'www.github.com')).ips[0]!;
  assert.equal((await curl('client', `http://${ip}`)).http, '200');
  await restartAgent(lab.name, 'node-1');
  assert.equal((await curl('client', `http://${ip}`)).http, '200', 'no new lookup after the restart');
  const cache = JSON.parse(lab.cli(['fqdn', 'cache', '--name', 'www.github', '-o', 'json']).out) as { ip: string }[];
  assert.ok(cache.some((r) => r.ip === ip), JSON.stringify(cache));
});

test('TTL expiry revokes the address for new connections while an open one keeps working', async () => {
  const ip = (await dig('client', 'short.github.com')).ips[0]!;
  const child = spawn('ip', ['netns', 'exec', podNetns(lab.name, 'shop', 'client'), process.execPath, CLIENT, 'hold', ip, '80']);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  try {
    assert.deepEqual(JSON.parse((await lines.next()).value as string), { open: true });
    const ask = async (): Promise<boolean> => {
      child.stdin.write('go\n');
      return (JSON.parse((await lines.next()).value as string) as { answered: boolean }).answered;
    };
    assert.equal(await ask(), true, 'the open connection works');
    // Expiry: at least MIN_TTL, plus the upstream TTL and a sweep.
    const waited = await within((MIN_TTL + 10) * 1000, 'new connections refused after expiry', async () => (await curl('client', `http://${ip}`, 1)).http === '000');
    assert.ok(waited > 0);
    assert.equal(await ask(), true, 'the connection opened before expiry still works');
    // Resolving again opens it again.
    assert.equal((await curl('client', 'http://short.github.com')).http, '200');
  } finally {
    child.kill();
  }
});

test('fuzz: 100,000 random and mutated DNS packets at the proxy; valid queries answered throughout, the node proxy keeps running', async () => {
  const before = await agentJson<{ pid: number; dnsProxy: { malformed: Record<string, number> } }>('node-1', '/v1/status');
  const proxyPid = nodePid(lab.name, 'node-1', 'proxy');
  const t0 = Date.now();
  const r = await podClient('client', ['fuzz', KUBE_DNS, '100000', '4242']);
  console.log(`# fuzz: ${r['sent']} packets, ${r['validAnswered']}/${r['validSent']} valid queries answered (${r['retries']} retries), ${r['tcpStreams']} TCP streams, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.equal(r['sent'], 100_000);
  assert.equal(r['validAnswered'], r['validSent'], `valid queries answered: ${r['validAnswered']}/${r['validSent']}`);
  const after = await agentJson<{ pid: number; ready: boolean; dnsProxy: { malformed: Record<string, number>; queries: number } }>('node-1', '/v1/status');
  assert.equal(after.ready, true);
  assert.equal(after.pid, before.pid, 'the same agent process');
  assert.equal(nodePid(lab.name, 'node-1', 'proxy'), proxyPid, 'the same node proxy process (where the DNS proxy runs)');
  const malformed = (s: { dnsProxy: { malformed: Record<string, number> } }): number => Object.values(s.dnsProxy.malformed).reduce((t, n) => t + n, 0);
  assert.ok(malformed(after) - malformed(before) > 30_000, `malformed counted: ${malformed(after) - malformed(before)}`);
  assert.equal((await curl('client', 'http://api.github.com')).http, '200', 'still answering and learning');
});
