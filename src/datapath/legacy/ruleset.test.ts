// The legacy ruleset for DNS rules and toFQDNs: what is steered to the DNS
// proxy, what the filter chains allow, and how learned addresses move the
// kernel (set elements only). Pure rendering on a small cluster
// (test/kit/policy-world.ts); test/e2e/fqdn.test.ts runs it in the kernel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { world } from '../../../test/kit/policy-world.ts';
import type { DatapathState } from '../types.ts';
import type { NameMatcher } from '../../fqdn/index.ts';
import { diffTransaction, fqdnSetName, fullTransaction, renderState } from './ruleset.ts';

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: github, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  egress:
  - toEndpoints: [{matchLabels: {app: db}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.github.com"}]
  - toFQDNs: [{matchPattern: "*.github.com"}, {matchName: example.org}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
`;

function state(learned: Record<string, string[]>, dnsProxyPort: number | null = 15053): DatapathState {
  return {
    snapshot: world(POLICY).snapshot(),
    services: [],
    ...(dnsProxyPort !== null ? { dnsProxyPort } : {}),
    fqdnIps: (sel: readonly NameMatcher[]) => new Set(Object.entries(learned).filter(([n]) => sel.some((m) => m.matches(n))).flatMap(([, ips]) => ips)),
    localEndpoints: [{ key: 'prod/frontend', ip: '10.0.1.1', hostIfname: 'lxc1', containerId: 'c1' }],
    ownAddresses: ['172.31.0.11'],
    peerAddresses: [],
  };
}

test('rules.dns: UDP and TCP to the server are steered to the DNS proxy; the filter chain allows none of it itself', () => {
  const fe = renderState(state({})).endpoints.get('prod/frontend')!;
  const steer = fe.proxyEgress!.filter((r) => r.includes('tproxy'));
  assert.equal(steer.length, 2, steer.join('\n'));
  assert.ok(steer.some((r) => /udp dport \{ 53 \} tproxy ip to :15053 /.test(r)));
  assert.ok(steer.some((r) => /tcp dport \{ 53 \} tproxy ip to :15053 /.test(r)));
  assert.ok(!fe.egress!.some((r) => r.includes('dport { 53 }')), 'port 53 is decided by the proxy, not allowed outright');
  assert.deepEqual(fe.unenforceable, []);
});

test('without a DNS proxy the DNS rule is reported unenforceable and dropped', () => {
  const fe = renderState(state({}, null)).endpoints.get('prod/frontend')!;
  assert.equal(fe.proxyEgress, null);
  assert.match(fe.unenforceable.join('\n'), /L7 dns rules \(no proxy for it\): dropped/);
});

test('toFQDNs: one set per selector, holding what was learned for the names it matches, on the given ports only', () => {
  const s = renderState(state({ 'api.github.com.': ['198.18.0.5'], 'example.org.': ['198.18.0.6'], 'evil.com.': ['198.18.0.7'] }));
  assert.equal(s.fqdnSets.size, 1);
  const [name, ips] = [...s.fqdnSets][0]!;
  assert.deepEqual([...ips!].sort(), ['198.18.0.5', '198.18.0.6']);
  const fe = s.endpoints.get('prod/frontend')!;
  assert.ok(fe.egress!.some((r) => r.includes(`ip daddr @${name} tcp dport { 443 } `)), fe.egress!.join('\n'));
  assert.match(fullTransaction(s), new RegExp(`set ${name} \\{ type ipv4_addr; elements = \\{ 198\\.18\\.0\\.5, 198\\.18\\.0\\.6 \\} \\}`));
});

test('the set name depends on the selectors only, not their order or case', () => {
  const sel = (...texts: string[]): NameMatcher[] => texts.map((t) => ({ text: t, kind: 'matchPattern', matches: () => false }));
  assert.equal(fqdnSetName(sel('*.GitHub.com', 'a.b')), fqdnSetName(sel('a.b.', '*.github.com')));
  assert.notEqual(fqdnSetName(sel('*.github.com')), fqdnSetName(sel('**.github.com')));
});

test('learning an address changes set elements only: no chain is rewritten', () => {
  const before = renderState(state({ 'api.github.com.': ['198.18.0.5'] }));
  const after = renderState(state({ 'api.github.com.': ['198.18.0.5'], 'www.github.com.': ['198.18.0.9'] }));
  const diff = diffTransaction(before, after)!;
  const [name] = [...after.fqdnSets.keys()];
  assert.equal(diff.script, `add element inet palisade ${name} { 198.18.0.9 }\n`);
  assert.equal(diff.endpoints, 0);
  const expired = diffTransaction(after, before)!;
  assert.equal(expired.script, `delete element inet palisade ${name} { 198.18.0.9 }\n`);
  assert.equal(diffTransaction(after, renderState(state({ 'api.github.com.': ['198.18.0.5'], 'www.github.com.': ['198.18.0.9'] }))), null);
});
