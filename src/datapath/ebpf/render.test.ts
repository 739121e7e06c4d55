// The eBPF policy maps agree with the policy engine: each case renders the
// maps for a small cluster (test/kit/policy-world.ts), then replays the BPF
// lookup (bpf/palisade.bpf.c policy_decide, ipcache LPM) in TypeScript and
// compares it with the engine's verdict. Unprivileged: no kernel involved.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ask, world } from '../../../test/kit/policy-world.ts';
import type { DatapathState, LocalEndpoint } from '../types.ts';
import {
  decodeEndpointValue,
  decodeIpcacheKey,
  DIR_EGRESS,
  DIR_INGRESS,
  endpointKey,
  EP_F_EGRESS_ENFORCED,
  EP_F_EGRESS_POLICY,
  EP_F_INGRESS_ENFORCED,
  EP_F_INGRESS_POLICY,
  fromHex,
  decodePolicyValue,
  decodeU32,
  policyKey,
  POLICY_ALLOW,
  POLICY_DENY,
  POLICY_REDIRECT,
  PROTO,
} from './maps.ts';
import { compileFqdnSelector, fqdnSelectorKey, type NameMatcher } from '../../fqdn/index.ts';
import { PORT_RANGE_CAP, renderEbpfState, type RenderedState } from './render.ts';

const cnp = (name: string, ns: string, spec: string): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n---\n`;

const LOCAL: LocalEndpoint[] = [
  { key: 'prod/frontend', ip: '10.0.1.1', hostIfname: 'lxcfe', containerId: 'fe' },
  { key: 'prod/backend', ip: '10.0.1.2', hostIfname: 'lxcbe', containerId: 'be' },
  { key: 'prod/db', ip: '10.0.1.3', hostIfname: 'lxcdb', containerId: 'db' },
  { key: 'dev/backend', ip: '10.0.2.2', hostIfname: 'lxcdv', containerId: 'dv' },
];

const HTTP_PROXY = 15001;
const DNS_PROXY = 15053;

/** name (as toFQDNs writes it) → the addresses the DNS proxy learned for it. */
type Learned = Record<string, string[]>;

function fqdnIpsOf(learned: Learned): (sel: readonly NameMatcher[]) => ReadonlySet<string> {
  return (sel) => {
    const out = new Set<string>();
    for (const [name, ips] of Object.entries(learned)) {
      const n = name.endsWith('.') ? name : `${name}.`;
      if (sel.some((m) => m.matches(n))) for (const ip of ips) out.add(ip);
    }
    return out;
  };
}

function stateOf(engine: ReturnType<typeof world>, opts: { proxies?: boolean; learned?: Learned } = {}): DatapathState {
  return {
    snapshot: engine.snapshot(),
    services: [],
    localEndpoints: LOCAL,
    ownAddresses: ['172.31.0.11'],
    peerAddresses: ['172.31.0.12'],
    ...(opts.proxies !== false ? { httpProxyPort: HTTP_PROXY, dnsProxyPort: DNS_PROXY } : {}),
    ...(opts.learned ? { fqdnIps: fqdnIpsOf(opts.learned) } : {}),
  };
}

function idSource(): Parameters<typeof renderEbpfState>[1] {
  let next = 1;
  const ids = new Map<string, number>();
  const id = (k: string) => ids.get(k) ?? (ids.set(k, next++), next - 1);
  return { endpointId: id, serviceId: id, backendId: (ip, p) => id(`${ip}:${p}`), fqdnIdentity: id };
}

const ifindexOf = (name: string): number => 10 + LOCAL.findIndex((l) => l.hostIfname === name);

function render(policies: string, opts: { proxies?: boolean; learned?: Learned; ipBlockSelectsPods?: boolean } = {}): { r: RenderedState; engine: ReturnType<typeof world> } {
  const engine = world(policies, opts.ipBlockSelectsPods === undefined ? {} : { ipBlockSelectsPods: opts.ipBlockSelectsPods });
  const r = renderEbpfState(stateOf(engine, opts), idSource(), ifindexOf);
  return { r, engine };
}

/** The ipcache's longest-prefix match; world when nothing matches. */
function identityOf(r: RenderedState, ip: string): number {
  const n = (a: string) => a.split('.').reduce((acc, x) => acc * 256 + Number(x), 0);
  let best = -1;
  let id = 2;
  for (const [k, v] of r.maps.ipcache) {
    const { addr, prefixlen } = decodeIpcacheKey(k);
    const size = 2 ** (32 - prefixlen);
    if (n(ip) >= n(addr) && n(ip) < n(addr) + size && prefixlen > best) {
      best = prefixlen;
      id = new DataView(fromHex(v).buffer).getUint32(0, true);
    }
  }
  return id;
}

type Outcome = 'pass' | 'drop' | `redirect:${number}`;

/** policy_decide() of palisade.bpf.c: deny over allow over redirect over the default; the peer's address finds its ipBlock identity. */
function bpfDecide(r: RenderedState, epIp: string, dir: number, peer: number, peerIp: string, proto: number, port: number): Outcome {
  const v = r.maps.endpoints.get(endpointKey(epIp));
  if (!v) return 'pass';
  const ep = decodeEndpointValue(v);
  const sel = dir === DIR_INGRESS ? EP_F_INGRESS_POLICY : EP_F_EGRESS_POLICY;
  const enf = dir === DIR_INGRESS ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED;
  if (!(ep.flags & sel)) return 'pass';
  const blockHex = r.maps.ipblock_pods.get(endpointKey(peerIp));
  const block = blockHex === undefined ? 0 : decodeU32(blockHex);
  const probes: [number, number, number][] = [
    [peer, proto, port],
    [peer, proto, 0],
    ...(block ? ([[block, proto, port], [block, proto, 0]] as [number, number, number][]) : []),
    [0, proto, port],
    [0, proto, 0],
    [peer, 0, 0],
    ...(block ? ([[block, 0, 0]] as [number, number, number][]) : []),
    [0, 0, 0],
  ];
  let allow = false;
  let proxy = 0;
  for (const [p, pr, po] of probes) {
    const a = r.maps.policy.get(policyKey({ peer: p, epId: ep.epId, port: po, proto: pr, dir }));
    if (a === undefined) continue;
    const { action, proxyPort } = decodePolicyValue(a);
    if (action === POLICY_DENY) return 'drop';
    if (action === POLICY_ALLOW) allow = true;
    if (action === POLICY_REDIRECT && proxy === 0) proxy = proxyPort;
  }
  if (allow) return 'pass';
  if (proxy) return `redirect:${proxy}`;
  return ep.flags & enf ? 'drop' : 'pass';
}

const ipOf = (key: string) => LOCAL.find((l) => l.key === key)?.ip;

/** from_container's combination: a drop on either side drops; else a redirect on either side redirects. */
function bpfOutcome(r: RenderedState, src: string, dst: string, port: number, proto: 'TCP' | 'UDP' = 'TCP'): Outcome {
  const srcIp = ipOf(src) ?? src;
  const dstIp = ipOf(dst) ?? dst;
  const p = PROTO[proto];
  const egress = ipOf(src) ? bpfDecide(r, srcIp, DIR_EGRESS, identityOf(r, dstIp), dstIp, p, port) : 'pass';
  const ingress = ipOf(dst) ? bpfDecide(r, dstIp, DIR_INGRESS, identityOf(r, srcIp), srcIp, p, port) : 'pass';
  if (egress === 'drop' || ingress === 'drop') return 'drop';
  if (egress !== 'pass') return egress;
  return ingress;
}

/** The engine's word on a connection's first packet: L7 matches go to the proxy. */
function engineOutcome(engine: ReturnType<typeof world>, c: { src: string; dst: string; port: number; proto?: 'TCP' | 'UDP' }, learned?: Learned): Outcome {
  const v = ask(engine, { src: c.src, dst: c.dst, port: c.port, proto: c.proto ?? 'TCP', ...(learned ? { fqdn: learned } : {}) });
  if (v.dropReason !== null) return 'drop';
  const l7 = [v.egress, v.ingress].find((d) => d?.match.startsWith('l7/'));
  if (l7) return `redirect:${l7.match === 'l7/http' ? HTTP_PROXY : DNS_PROXY}`;
  return v.allowed ? 'pass' : 'drop';
}

function bpfVerdict(r: RenderedState, src: string, dst: string, port: number, proto: 'TCP' | 'UDP' = 'TCP'): boolean {
  return bpfOutcome(r, src, dst, port, proto) === 'pass';
}

interface Case {
  name: string;
  policies: string;
  /** `allowed` for L3/L4 outcomes, `outcome` where a proxy is involved. */
  checks: { src: string; dst: string; port: number; proto?: 'TCP' | 'UDP'; allowed?: boolean; outcome?: Outcome }[];
  unenforceable?: RegExp;
  proxies?: boolean;
  learned?: Learned;
  ipBlockSelectsPods?: boolean;
}

const knp = (name: string, ns: string, spec: string): string =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n---\n`;
/** dev/backend-2: dev/backend's labels (so its identity) at another address, 10.0.2.3. */
const BACKEND_2 = `apiVersion: v1\nkind: Pod\nmetadata: {name: backend-2, namespace: dev, labels: {app: backend}}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.0.2.3}\n---\n`;
const IPBLOCK_PODS =
  BACKEND_2 +
  knp('eg', 'prod', `  podSelector: {matchLabels: {app: frontend}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.2.3/32, 10.0.1.2/32]}}]\n    ports: [{port: 80}]\n  - to: [{ipBlock: {cidr: 10.0.2.3/32}}]\n    ports: [{port: 81}]`) +
  knp('in', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.2.0/24, except: [10.0.2.3/32]}}]`);

const cases: Case[] = [
  {
    name: 'KNP ipBlock selects pods by address: two pods of one identity on either side of an except',
    policies: IPBLOCK_PODS,
    checks: [
      { src: 'prod/frontend', dst: 'dev/backend', port: 80, allowed: true },
      { src: 'prod/frontend', dst: '10.0.2.3', port: 80, allowed: false },
      { src: 'prod/frontend', dst: '10.0.2.3', port: 81, allowed: true },
      { src: 'prod/frontend', dst: 'dev/backend', port: 81, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: false },
      { src: 'prod/frontend', dst: '10.0.2.1', port: 80, allowed: true },
      { src: 'prod/frontend', dst: 'prod/db', port: 80, allowed: false },
      { src: 'prod/frontend', dst: '10.9.0.1', port: 80, allowed: true },
      { src: 'prod/frontend', dst: '172.31.0.12', port: 80, allowed: false },
      { src: 'dev/backend', dst: 'prod/db', port: 5432, allowed: true },
      { src: '10.0.2.3', dst: 'prod/db', port: 5432, allowed: false },
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: "KNP ipBlock with ipBlockSelectsPods off: Cilium's meaning, no ipBlock identities",
    policies: IPBLOCK_PODS,
    ipBlockSelectsPods: false,
    checks: [
      { src: 'prod/frontend', dst: 'dev/backend', port: 80, allowed: false },
      { src: 'prod/frontend', dst: '10.0.2.3', port: 81, allowed: false },
      { src: 'prod/frontend', dst: '10.9.0.1', port: 80, allowed: true },
      { src: 'dev/backend', dst: 'prod/db', port: 5432, allowed: false },
      { src: '10.0.2.77', dst: 'prod/db', port: 5432, allowed: true },
    ],
  },
  {
    name: 'no policy: everything passes',
    policies: '',
    checks: [{ src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: true }],
  },
  {
    name: 'ingress from one peer: the other is denied, egress stays open',
    policies: cnp('be', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]\n    toPorts: [{ports: [{port: "8080"}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, proto: 'UDP', allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 8081, allowed: false },
      { src: 'prod/db', dst: 'prod/backend', port: 8080, allowed: false },
      { src: '172.31.0.12', dst: 'prod/backend', port: 8080, allowed: false },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true },
    ],
  },
  {
    name: 'a deny entry wins over any allow',
    policies: cnp('all', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - fromEntities: [all]\n  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]\n    toPorts: [{ports: [{port: "5432"}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false },
      { src: 'prod/frontend', dst: 'prod/db', port: 5433, allowed: true },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true },
    ],
  },
  {
    name: 'CIDR with except, and world covering CIDR identities',
    policies:
      cnp('fe', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toCIDRSet: [{cidr: 203.0.113.0/24, except: [203.0.113.128/25]}]`) +
      cnp('be', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  egress:\n  - toEntities: [world]`),
    checks: [
      { src: 'prod/frontend', dst: '203.0.113.5', port: 443, allowed: true },
      { src: 'prod/frontend', dst: '203.0.113.200', port: 443, allowed: false },
      { src: 'prod/frontend', dst: '198.51.100.1', port: 443, allowed: false },
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false },
      { src: 'prod/backend', dst: '203.0.113.5', port: 443, allowed: true },
      { src: 'prod/backend', dst: '203.0.113.200', port: 443, allowed: true },
      { src: 'prod/backend', dst: '8.8.8.8', port: 53, proto: 'UDP', allowed: true },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'named ports resolve on the destination pod (per peer identity on egress)',
    policies:
      cnp('fe', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toEndpoints: [{matchLabels: {app: backend}}]\n    toPorts: [{ports: [{port: http}]}]`) +
      cnp('db', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - toPorts: [{ports: [{port: pg}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 9090, allowed: false },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'prod/backend', dst: 'prod/db', port: 8080, allowed: false },
    ],
  },
  {
    name: `port ranges are expanded up to ${PORT_RANGE_CAP} ports; beyond, fail closed and reported`,
    policies: cnp('r', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - toPorts: [{ports: [{port: "1000", endPort: 3000, protocol: TCP}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/db', port: 1000, allowed: true },
      { src: 'prod/frontend', dst: 'prod/db', port: 1000 + PORT_RANGE_CAP - 1, allowed: true },
      { src: 'prod/frontend', dst: 'prod/db', port: 999, allowed: false },
    ],
    unenforceable: /ports 2024-3000/,
  },
  {
    name: 'without the proxy for them, L7 rules are dropped and reported',
    policies: cnp('l7', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}]}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 8081, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, outcome: 'drop' },
    ],
    unenforceable: /L7 http rules/,
    proxies: false,
  },
  {
    name: 'L7 HTTP rules send their TCP port to the HTTP proxy, nothing else',
    policies: cnp('l7', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}]}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, outcome: `redirect:${HTTP_PROXY}` },
      { src: 'dev/backend', dst: 'prod/backend', port: 8080, outcome: `redirect:${HTTP_PROXY}` },
      { src: 'prod/frontend', dst: 'prod/backend', port: 8081, outcome: 'drop' },
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, proto: 'UDP', outcome: 'drop' },
    ],
  },
  {
    name: 'an L3/L4 allow of the same packet wins over L7; a deny wins over both',
    policies:
      cnp('l7', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}]}}]`) +
      cnp('l4', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]\n    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]\n  - fromEndpoints: [{matchLabels: {app: tester}}]`) +
      cnp('deny', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: db}}]\n    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, outcome: 'pass' },
      { src: 'dev/backend', dst: 'prod/backend', port: 8080, outcome: `redirect:${HTTP_PROXY}` },
      { src: 'prod/db', dst: 'prod/backend', port: 8080, outcome: 'drop' },
    ],
  },
  {
    name: 'L7 DNS rules send UDP and TCP of their port to the DNS proxy (egress)',
    policies: cnp('dns', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toEndpoints: [{matchLabels: {app: backend}}]\n    toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 53, proto: 'UDP', outcome: `redirect:${DNS_PROXY}` },
      { src: 'prod/frontend', dst: 'prod/backend', port: 53, proto: 'TCP', outcome: `redirect:${DNS_PROXY}` },
      { src: 'prod/frontend', dst: 'prod/backend', port: 54, proto: 'UDP', outcome: 'drop' },
      { src: 'prod/frontend', dst: 'prod/db', port: 53, proto: 'UDP', outcome: 'drop' },
    ],
  },
  {
    name: 'toFQDNs allows the learned addresses on its ports only; world and CIDR rules still cover them',
    policies:
      cnp('fe', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toFQDNs: [{matchName: api.example.com}]\n    toPorts: [{ports: [{port: "443", protocol: TCP}]}]`) +
      cnp('be', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  egress:\n  - toEntities: [world]\n  - toFQDNs: [{matchPattern: "*.example.com"}]`) +
      cnp('db', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  egress:\n  - toCIDRSet: [{cidr: 198.51.100.0/24, except: [198.51.100.128/25]}]`),
    learned: { 'api.example.com': ['198.51.100.7', '198.51.100.200'], 'www.example.com': ['198.51.100.7', '203.0.113.9'] },
    checks: [
      { src: 'prod/frontend', dst: '198.51.100.7', port: 443, allowed: true },
      { src: 'prod/frontend', dst: '198.51.100.200', port: 443, allowed: true },
      { src: 'prod/frontend', dst: '198.51.100.7', port: 80, allowed: false },
      { src: 'prod/frontend', dst: '203.0.113.9', port: 443, allowed: false },
      { src: 'prod/frontend', dst: '198.51.100.8', port: 443, allowed: false },
      { src: 'prod/backend', dst: '203.0.113.9', port: 80, allowed: true },
      { src: 'prod/backend', dst: '8.8.8.8', port: 53, proto: 'UDP', allowed: true },
      { src: 'prod/db', dst: '198.51.100.7', port: 5432, allowed: true },
      { src: 'prod/db', dst: '198.51.100.200', port: 5432, allowed: false },
      { src: 'prod/db', dst: '203.0.113.9', port: 5432, allowed: false },
    ],
  },
  {
    name: 'toFQDNs with L7 HTTP rules redirects the learned addresses only',
    policies: cnp('fe', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toFQDNs: [{matchPattern: "*.example.com"}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET}]}}]`),
    learned: { 'www.example.com': ['198.51.100.7'] },
    checks: [
      { src: 'prod/frontend', dst: '198.51.100.7', port: 80, outcome: `redirect:${HTTP_PROXY}` },
      { src: 'prod/frontend', dst: '198.51.100.8', port: 80, outcome: 'drop' },
      { src: 'prod/frontend', dst: '198.51.100.7', port: 443, outcome: 'drop' },
    ],
  },
];

for (const c of cases) {
  test(`eBPF policy maps: ${c.name}`, () => {
    const { r, engine } = render(c.policies, {
      ...(c.proxies === false ? { proxies: false } : {}),
      ...(c.learned ? { learned: c.learned } : {}),
      ...(c.ipBlockSelectsPods !== undefined ? { ipBlockSelectsPods: c.ipBlockSelectsPods } : {}),
    });
    for (const ch of c.checks) {
      const got = bpfOutcome(r, ch.src, ch.dst, ch.port, ch.proto);
      const what = `${ch.src} → ${ch.dst}:${ch.port}/${ch.proto ?? 'TCP'}`;
      if (ch.outcome !== undefined) assert.equal(got, ch.outcome, what);
      else assert.equal(got === 'pass', ch.allowed, what);
      // Without a proxy the engine still answers "redirect": the datapath fails closed instead.
      if (c.proxies === false && got === 'drop') continue;
      assert.equal(got, engineOutcome(engine, ch, c.learned), `datapath and engine disagree on ${what}`);
    }
    if (c.unenforceable) {
      const all = r.endpoints.flatMap((e) => e.unenforceable);
      assert.ok(all.some((u) => c.unenforceable!.test(u)), all.join('\n'));
    }
  });
}

test('eBPF policy maps: a capped range stays closed where the engine would allow', () => {
  const { r, engine } = render(cnp('r', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - toPorts: [{ports: [{port: "1000", endPort: 3000, protocol: TCP}]}]`));
  assert.equal(ask(engine, { src: 'prod/frontend', dst: 'prod/db', port: 2500 }).allowed, true);
  assert.equal(bpfVerdict(r, 'prod/frontend', 'prod/db', 2500), false);
});

test('eBPF maps: services get slots 1..n of stable ids, SCTP is reported', () => {
  const engine = world('');
  const state: DatapathState = {
    snapshot: engine.snapshot(),
    services: [
      { key: 'prod/web:80/TCP', clusterIP: '10.96.0.10', port: 80, protocol: 'TCP', backends: [{ ip: '10.0.1.2', port: 8080 }, { ip: '10.0.2.2', port: 9090 }] },
      { key: 'prod/s:9/SCTP', clusterIP: '10.96.0.11', port: 9, protocol: 'SCTP', backends: [] },
    ],
    localEndpoints: [],
    ownAddresses: [],
    peerAddresses: [],
  };
  let n = 1;
  const r = renderEbpfState(state, { endpointId: () => n++, serviceId: () => 7, backendId: () => n++, fqdnIdentity: () => 0 }, () => 0);
  assert.equal(r.services, 1);
  assert.equal(r.maps.services.size, 1);
  assert.equal(r.maps.svc_slots.size, 2);
  assert.equal(r.maps.backends.size, 2);
  assert.match(r.serviceProblems.join(), /SCTP/);
});

test('eBPF maps: a newly learned or forgotten FQDN address changes one ipcache entry and no policy key', () => {
  const engine = world(cnp('fe', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toFQDNs: [{matchName: api.example.com}]\n    toPorts: [{ports: [{port: "443", protocol: TCP}]}]`));
  const ids = idSource();
  const asked: string[] = [];
  const snapshot = engine.snapshot();
  let last: RenderedState | null = null;
  const renderWith = (ips: string[]): RenderedState => {
    const state = { ...stateOf(engine, { learned: { 'api.example.com': ips } }), snapshot };
    const inner = state.fqdnIps!;
    last = renderEbpfState({ ...state, fqdnIps: (sel) => (asked.push(fqdnSelectorKey(sel)), inner(sel)) }, ids, ifindexOf, last);
    return last;
  };
  const diff = (a: RenderedState, b: RenderedState, name: 'ipcache' | 'policy'): number => {
    let n = 0;
    for (const [k, v] of b.maps[name]) if (a.maps[name].get(k) !== v) n++;
    for (const k of a.maps[name].keys()) if (!b.maps[name].has(k)) n++;
    return n;
  };
  const one = renderWith(['198.51.100.7']);
  const two = renderWith(['198.51.100.7', '198.51.100.9']);
  assert.equal(diff(one, two, 'ipcache'), 1);
  assert.equal(diff(one, two, 'policy'), 0);
  assert.equal(two.maps.policy, one.maps.policy, 'no policy rendered again: the previous render stands');
  const back = renderWith(['198.51.100.9']);
  assert.equal(diff(two, back, 'ipcache'), 1);
  assert.equal(diff(two, back, 'policy'), 0);
  assert.equal(bpfOutcome(back, 'prod/frontend', '198.51.100.7', 443), 'drop', 'a forgotten address is world again');
  assert.equal(bpfOutcome(back, 'prod/frontend', '198.51.100.9', 443), 'pass');
  // One question per selector set and apply, keyed as the agent keys it.
  assert.deepEqual([...new Set(asked)], [fqdnSelectorKey([compileFqdnSelector({ matchName: 'api.example.com' })])]);
  assert.equal(asked.length, 3);
  assert.deepEqual(one.endpoints.flatMap((e) => e.unenforceable), []);
});

test('eBPF maps: learned addresses never override pods or nodes', () => {
  const engine = world(cnp('fe', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toFQDNs: [{matchName: api.example.com}]`));
  const { r } = { r: renderEbpfState(stateOf(engine, { learned: { 'api.example.com': ['10.0.1.3', '172.31.0.12'] } }), idSource(), ifindexOf) };
  assert.equal(bpfOutcome(r, 'prod/frontend', 'prod/db', 5432), 'drop');
  assert.equal(bpfOutcome(r, 'prod/frontend', '172.31.0.12', 22), 'drop');
});

test('eBPF maps: learned addresses that make a new identity, or any other change, render everything again', () => {
  const engine = world(
    cnp('fe', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toFQDNs: [{matchName: api.example.com}]\n  - toFQDNs: [{matchName: www.example.com}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]`),
  );
  const ids = idSource();
  const first = renderEbpfState(stateOf(engine, { learned: { 'api.example.com': ['198.51.100.7'] } }), ids, ifindexOf);
  // The same address for a second name: a membership of its own, so a new identity and policy keys.
  const both = renderEbpfState(stateOf(engine, { learned: { 'api.example.com': ['198.51.100.7'], 'www.example.com': ['198.51.100.7'] } }), ids, ifindexOf, first);
  assert.notEqual(both.maps.policy, first.maps.policy);
  assert.equal(bpfOutcome(both, 'prod/frontend', '198.51.100.7', 80), 'pass');
  assert.equal(bpfOutcome(both, 'prod/frontend', '198.51.100.7', 22), 'pass');
  // Another apply with a changed input (a proxy port) is a full render too.
  const moved = renderEbpfState({ ...stateOf(engine, { learned: { 'api.example.com': ['198.51.100.7'], 'www.example.com': ['198.51.100.7'] } }), httpProxyPort: 15002 }, ids, ifindexOf, both);
  assert.notEqual(moved.maps.policy, both.maps.policy);
});
