// The legacy ruleset's guards that hold whatever the policy: every pod veth
// passes only its pod's own source address (before conntrack, counted, logged
// as INVALID_SOURCE_IP naming the sending pod), a pod veth with no
// endpoint drops everything, and only steered (TPROXY'd) traffic reaches a
// proxy port. Pure rendering; test/e2e/hostile-legacy.test.ts runs it in the kernel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { world } from '../../../test/kit/policy-world.ts';
import { hostIfname } from '../../cni/index.ts';
import type { DatapathState, LocalEndpoint } from '../types.ts';
import { endpointChainId } from './render-policy.ts';
import { PROXY_MARK } from '../constants.ts';
import { diffTransaction, fullTransaction, POD_IFNAME_PREFIX, renderState, type RulesetState } from './ruleset.ts';

// Only prod/backend is selected by a policy: the source check must not depend on it.
const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: backend-in, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
`;
const snapshot = world(POLICY).snapshot();

const FRONTEND: LocalEndpoint = { key: 'prod/frontend', ip: '10.0.1.1', hostIfname: 'lxc111111111111', containerId: 'c1' };
const BACKEND: LocalEndpoint = { key: 'prod/backend', ip: '10.0.1.2', hostIfname: 'lxc222222222222', containerId: 'c2' };

function rendered(locals: LocalEndpoint[], ports: { http?: number; dns?: number } = { http: 15001, dns: 15053 }): RulesetState {
  const s: DatapathState = {
    snapshot,
    services: [],
    ...(ports.http !== undefined ? { httpProxyPort: ports.http } : {}),
    ...(ports.dns !== undefined ? { dnsProxyPort: ports.dns } : {}),
    localEndpoints: locals,
    ownAddresses: ['172.31.0.11'],
    peerAddresses: ['172.31.0.12'],
  };
  return renderState(s);
}

/** The body of one chain as fullTransaction writes it. */
function chain(script: string, name: string): string[] {
  const m = new RegExp(`\\n  chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(script);
  assert.ok(m, `chain ${name} in:\n${script}`);
  return m[1]!.split('\n').map((l) => l.trim());
}

test('every local pod, with or without policy, gets a source check on its veth: own address passes, the rest is counted, logged and dropped', () => {
  const s = rendered([FRONTEND, BACKEND]);
  const script = fullTransaction(s);
  for (const ep of [FRONTEND, BACKEND]) {
    const id = endpointChainId(ep.key);
    assert.deepEqual(chain(script, `${id}_sc`), [
      `ip saddr ${ep.ip} accept`,
      `meta nfproto ipv4 counter name "${id}_spoofed" log group 1 prefix "d:${ep.key}:eg:INVALID_SOURCE_IP" drop`,
      `counter name "${id}_spoofed" drop`,
    ]);
    assert.ok(script.includes(`"${ep.hostIfname}" : jump ${id}_sc`), `${ep.key}: its veth jumps to its check`);
    assert.ok(script.includes(`  counter ${id}_spoofed { }`));
  }
  assert.equal(s.endpoints.has('prod/frontend'), true, 'a pod no policy selects is still an endpoint');
});

test('the source check runs before conntrack, on every pod veth, and fails closed for veths with no endpoint', () => {
  const check = chain(fullTransaction(rendered([FRONTEND])), 'source_check');
  assert.equal(check[0], 'type filter hook prerouting priority raw; policy accept;');
  assert.equal(check.filter((r) => r.startsWith('iifname vmap @source_eps')).length, 1);
  assert.equal(check.at(-1), `iifname "${POD_IFNAME_PREFIX}*" counter name "pod_if_unregistered" drop`);
  assert.ok(hostIfname('any container').startsWith(POD_IFNAME_PREFIX), 'pod wiring names veths with the prefix the ruleset drops');
  // Only the pod kernel's link-local IPv6 housekeeping (ND, MLD) is let through before the per-veth check.
  const early = check.slice(1, check.indexOf('iifname vmap @source_eps'));
  assert.deepEqual(early, [
    'meta nfproto ipv6 ip6 saddr { ::, fe80::/10 } ip6 daddr { fe80::/10, ff02::/16 } icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld-listener-done, mld2-listener-report } accept',
  ]);
});

test('the drop record names the sending pod by its key; a key unfit for an NFLOG prefix falls back to the endpoint id', () => {
  const longest = `${'n'.repeat(44)}/${'p'.repeat(59)}`; // 104 bytes: the prefix is 127
  const long = `${'n'.repeat(44)}/${'p'.repeat(60)}`;
  const cases: [string, string][] = [
    ['prod/frontend', 'prod/frontend'],
    ['kube-system/coredns-7d.x', 'kube-system/coredns-7d.x'],
    [longest, longest],
    [long, endpointChainId(long)],
    ['prod/Front"end', endpointChainId('prod/Front"end')],
    ['a:b/c', endpointChainId('a:b/c')],
  ];
  for (const [key, named] of cases) {
    const script = fullTransaction(rendered([{ ...FRONTEND, key }]));
    assert.ok(script.includes(`prefix "d:${named}:eg:INVALID_SOURCE_IP"`), `${key}:\n${chain(script, `${endpointChainId(key)}_sc`).join('\n')}`);
  }
});

test('registrations nft cannot safely take get no source entry, so their veths drop everything', () => {
  const cases: [string, LocalEndpoint][] = [
    ['an IPv6 address', { ...FRONTEND, ip: 'fd00::1' }],
    ['not an address', { ...FRONTEND, ip: '10.0.1.1 accept' }],
    ['a quote in the name', { ...FRONTEND, hostIfname: 'lxc"x' }],
    ['a space in the name', { ...FRONTEND, hostIfname: 'lxc x' }],
    ['a name over 15 bytes', { ...FRONTEND, hostIfname: 'lxc1234567890abc' }],
    ['an empty name', { ...FRONTEND, hostIfname: '' }],
  ];
  for (const [what, ep] of cases) {
    const s = rendered([ep]);
    assert.equal(s.sources.size, 0, what);
    assert.match(fullTransaction(s), /map source_eps \{ type ifname : verdict; \}/, what);
  }
});

test('only steered traffic reaches a proxy port: listeners are no steering, unmarked packets to proxy ports drop', () => {
  const script = fullTransaction(rendered([FRONTEND]));
  assert.match(script, /set proxy_ports \{ type inet_service; elements = \{ 15001, 15053 \} \}/);
  const pre = chain(script, 'prerouting');
  assert.equal(pre[1], `meta l4proto tcp socket transparent 1 socket wildcard 0 meta mark set ${PROXY_MARK} accept`);
  const input = chain(script, 'input');
  const drop = `meta l4proto { tcp, udp } th dport @proxy_ports meta mark & ${PROXY_MARK} == 0 counter name "proxy_unsteered" drop`;
  assert.deepEqual(input.slice(1), [
    'ct state established,related accept',
    drop,
    `meta mark & ${PROXY_MARK} == ${PROXY_MARK} accept`,
    'ip saddr vmap @egress_eps',
  ]);
  assert.match(fullTransaction(rendered([FRONTEND], {})), /set proxy_ports \{ type inet_service; \}/);
});

const id = (ep: LocalEndpoint): string => endpointChainId(ep.key);

test('diff: source checks and proxy ports follow endpoints and proxies as they come and go', () => {
  const fe = id(FRONTEND);
  const be = id(BACKEND);
  const cases: { name: string; from: RulesetState; to: RulesetState; want: RegExp[]; not?: RegExp[]; order?: [RegExp, RegExp][] }[] = [
    {
      name: 'a pod registers before any policy selects it',
      from: rendered([BACKEND]),
      to: rendered([BACKEND, FRONTEND]),
      want: [
        new RegExp(`^add counter inet palisade ${fe}_spoofed$`, 'm'),
        new RegExp(`^add chain inet palisade ${fe}_sc$`, 'm'),
        new RegExp(`^add rule inet palisade ${fe}_sc ip saddr 10\\.0\\.1\\.1 accept$`, 'm'),
        new RegExp(`^add rule inet palisade ${fe}_sc meta nfproto ipv4 counter name "${fe}_spoofed" log group 1 prefix "d:prod/frontend:eg:INVALID_SOURCE_IP" drop$`, 'm'),
        new RegExp(`^add element inet palisade source_eps \\{ "lxc111111111111" : jump ${fe}_sc \\}$`, 'm'),
      ],
      not: [new RegExp(be)],
      order: [[new RegExp(`add chain inet palisade ${fe}_sc`), /add element inet palisade source_eps/]],
    },
    {
      name: 'a pod goes: its veth leaves the map before its chain and counter go',
      from: rendered([BACKEND, FRONTEND]),
      to: rendered([BACKEND]),
      want: [
        /^delete element inet palisade source_eps \{ "lxc111111111111" \}$/m,
        new RegExp(`^delete chain inet palisade ${fe}_sc$`, 'm'),
        new RegExp(`^delete counter inet palisade ${fe}_spoofed$`, 'm'),
      ],
      not: [new RegExp(`${be}_sc`)],
      order: [
        [/delete element inet palisade source_eps/, new RegExp(`delete chain inet palisade ${fe}_sc`)],
        [new RegExp(`delete chain inet palisade ${fe}_sc`), new RegExp(`delete counter inet palisade ${fe}_spoofed`)],
      ],
    },
    {
      name: 'a pod gets a new address: its chain is refilled, the map stays',
      from: rendered([FRONTEND]),
      to: rendered([{ ...FRONTEND, ip: '10.0.1.9' }]),
      want: [new RegExp(`^flush chain inet palisade ${fe}_sc$`, 'm'), new RegExp(`^add rule inet palisade ${fe}_sc ip saddr 10\\.0\\.1\\.9 accept$`, 'm')],
      not: [/source_eps/, /add counter/],
    },
    {
      name: 'a pod gets a new sandbox (new veth): the old veth leaves the map, the new one joins it, before either is used',
      from: rendered([FRONTEND]),
      to: rendered([{ ...FRONTEND, hostIfname: 'lxc333333333333' }]),
      want: [
        /^delete element inet palisade source_eps \{ "lxc111111111111" \}$/m,
        new RegExp(`^add element inet palisade source_eps \\{ "lxc333333333333" : jump ${fe}_sc \\}$`, 'm'),
      ],
      not: [/add rule/, /delete chain/],
    },
    {
      name: 'a veth name passes from one endpoint to another: deleted before it is added again',
      from: rendered([FRONTEND]),
      to: rendered([{ ...BACKEND, hostIfname: FRONTEND.hostIfname }]),
      want: [/^delete element inet palisade source_eps \{ "lxc111111111111" \}$/m, new RegExp(`^add element inet palisade source_eps \\{ "lxc111111111111" : jump ${be}_sc \\}$`, 'm')],
      order: [[/delete element inet palisade source_eps/, /add element inet palisade source_eps/]],
    },
    {
      name: 'the DNS proxy goes and comes back on another port',
      from: rendered([FRONTEND]),
      to: rendered([FRONTEND], { http: 15001, dns: 15054 }),
      want: [/^delete element inet palisade proxy_ports \{ 15053 \}$/m, /^add element inet palisade proxy_ports \{ 15054 \}$/m],
      not: [/15001/, /source_eps/],
    },
  ];
  for (const c of cases) {
    const diff = diffTransaction(c.from, c.to);
    assert.ok(diff, c.name);
    for (const re of c.want) assert.match(diff.script, re, c.name);
    for (const re of c.not ?? []) assert.doesNotMatch(diff.script, re, c.name);
    for (const [first, then] of c.order ?? []) {
      assert.ok(diff.script.search(first) < diff.script.search(then), `${c.name}: ${first} before ${then}\n${diff.script}`);
    }
  }
  assert.equal(diffTransaction(rendered([FRONTEND, BACKEND]), rendered([FRONTEND, BACKEND])), null, 'nothing changed: no transaction');
});
