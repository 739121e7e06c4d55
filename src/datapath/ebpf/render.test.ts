// The eBPF policy maps agree with the policy engine: each case renders the
// maps for a small cluster (src/policy/test-world.ts), then replays the BPF
// lookup (bpf/palisade.bpf.c policy_decide, ipcache LPM) in TypeScript and
// compares it with the engine's verdict. Unprivileged: no kernel involved.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ask, world } from '../../policy/test-world.ts';
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
  policyKey,
  POLICY_ALLOW,
  POLICY_DENY,
  PROTO,
} from './maps.ts';
import { PORT_RANGE_CAP, renderEbpfState, type RenderedState } from './render.ts';

const cnp = (name: string, ns: string, spec: string): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n---\n`;

const LOCAL: LocalEndpoint[] = [
  { key: 'prod/frontend', ip: '10.0.1.1', hostIfname: 'lxcfe', containerId: 'fe' },
  { key: 'prod/backend', ip: '10.0.1.2', hostIfname: 'lxcbe', containerId: 'be' },
  { key: 'prod/db', ip: '10.0.1.3', hostIfname: 'lxcdb', containerId: 'db' },
  { key: 'dev/backend', ip: '10.0.2.2', hostIfname: 'lxcdv', containerId: 'dv' },
];

function render(policies: string): { r: RenderedState; engine: ReturnType<typeof world> } {
  const engine = world(policies);
  const state: DatapathState = { snapshot: engine.snapshot(), services: [], localEndpoints: LOCAL, ownAddresses: ['172.31.0.11'], peerAddresses: ['172.31.0.12'] };
  let next = 1;
  const ids = new Map<string, number>();
  const id = (k: string) => ids.get(k) ?? (ids.set(k, next++), next - 1);
  const r = renderEbpfState(state, { endpointId: id, serviceId: id, backendId: (ip, p) => id(`${ip}:${p}`) }, (name) => 10 + LOCAL.findIndex((l) => l.hostIfname === name));
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

/** policy_decide() of palisade.bpf.c: true = pass. */
function bpfAllows(r: RenderedState, epIp: string, dir: number, peer: number, proto: number, port: number): boolean {
  const v = r.maps.endpoints.get(endpointKey(epIp));
  if (!v) return true;
  const ep = decodeEndpointValue(v);
  const sel = dir === DIR_INGRESS ? EP_F_INGRESS_POLICY : EP_F_EGRESS_POLICY;
  const enf = dir === DIR_INGRESS ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED;
  if (!(ep.flags & sel)) return true;
  const probes: [number, number, number][] = [
    [peer, proto, port],
    [peer, proto, 0],
    [0, proto, port],
    [0, proto, 0],
    [peer, 0, 0],
    [0, 0, 0],
  ];
  let allow = false;
  for (const [p, pr, po] of probes) {
    const a = r.maps.policy.get(policyKey({ peer: p, epId: ep.epId, port: po, proto: pr, dir }));
    if (a === undefined) continue;
    const action = fromHex(a)[0];
    if (action === POLICY_DENY) return false;
    if (action === POLICY_ALLOW) allow = true;
  }
  return allow || !(ep.flags & enf);
}

const ipOf = (key: string) => LOCAL.find((l) => l.key === key)?.ip;

function bpfVerdict(r: RenderedState, src: string, dst: string, port: number, proto: 'TCP' | 'UDP' = 'TCP'): boolean {
  const srcIp = ipOf(src) ?? src;
  const dstIp = ipOf(dst) ?? dst;
  const p = PROTO[proto];
  const egress = ipOf(src) ? bpfAllows(r, srcIp, DIR_EGRESS, identityOf(r, dstIp), p, port) : true;
  const ingress = ipOf(dst) ? bpfAllows(r, dstIp, DIR_INGRESS, identityOf(r, srcIp), p, port) : true;
  return egress && ingress;
}

interface Case {
  name: string;
  policies: string;
  checks: { src: string; dst: string; port: number; proto?: 'TCP' | 'UDP'; allowed: boolean }[];
  unenforceable?: RegExp;
}

const cases: Case[] = [
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
    name: 'L7 rules are not enforceable yet: dropped and reported',
    policies: cnp('l7', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}]}}]`),
    checks: [{ src: 'prod/frontend', dst: 'prod/backend', port: 8081, allowed: false }],
    unenforceable: /L7 http rules/,
  },
];

for (const c of cases) {
  test(`eBPF policy maps: ${c.name}`, () => {
    const { r, engine } = render(c.policies);
    for (const ch of c.checks) {
      const got = bpfVerdict(r, ch.src, ch.dst, ch.port, ch.proto);
      assert.equal(got, ch.allowed, `${ch.src} → ${ch.dst}:${ch.port}/${ch.proto ?? 'TCP'}`);
      const engineSays = ask(engine, { src: ch.src, dst: ch.dst, port: ch.port, proto: ch.proto ?? 'TCP' }).allowed;
      assert.equal(got, engineSays, `datapath and engine disagree on ${ch.src} → ${ch.dst}:${ch.port}`);
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
  const r = renderEbpfState(state, { endpointId: () => n++, serviceId: () => 7, backendId: () => n++ }, () => 0);
  assert.equal(r.services, 1);
  assert.equal(r.maps.services.size, 1);
  assert.equal(r.maps.svc_slots.size, 2);
  assert.equal(r.maps.backends.size, 2);
  assert.match(r.serviceProblems.join(), /SCTP/);
});
