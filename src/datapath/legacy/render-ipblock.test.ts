// The legacy ruleset for CIDR peers: a Kubernetes ipBlock matches pod
// addresses as well as the world's (networkPolicy.ipBlockSelectsPods), by
// address; with the setting off, and for CiliumNetworkPolicy CIDR rules, only
// the world's. Pure rendering; test/e2e/netpol-upstream.test.ts runs it in the kernel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { world } from '../../../test/kit/policy-world.ts';
import type { DatapathState } from '../types.ts';
import { renderState } from './ruleset.ts';

const KNP = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ipb, namespace: prod}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.1.2/32]}}]
  - to: [{ipBlock: {cidr: 10.0.2.0/24}}]
    ports: [{port: http}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cidr, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  egress:
  - toCIDR: [192.0.2.0/24]
`;

function egressRules(ipBlockSelectsPods: boolean): string[] {
  const s: DatapathState = {
    snapshot: world(KNP, { ipBlockSelectsPods }).snapshot(),
    services: [],
    localEndpoints: [{ key: 'prod/frontend', ip: '10.0.1.1', hostIfname: 'lxc1', containerId: 'c1' }],
    ownAddresses: ['172.31.0.11'],
    peerAddresses: [],
  };
  return renderState(s).endpoints.get('prod/frontend')!.egress!;
}

test('a KNP ipBlock matches the world and pods by address, never nodes; CNP CIDRs only the world', () => {
  const rules = egressRules(true);
  const allow = rules.filter((r) => r.startsWith('meta mark { 2, 256-65535 } ip daddr 10.0.0.0/8 ip daddr != { 10.0.1.2/32 } log group 1 '));
  assert.equal(allow.length, 1, rules.join('\n'));
  assert.match(allow[0]!, / return$/);
  assert.ok(rules.some((r) => r.startsWith('meta mark 2 ip daddr 192.0.2.0/24 ')), 'CNP toCIDR: the world only');
});

test("egress named ports of an ipBlock resolve on the pods inside it (dev/backend's http is 9090)", () => {
  const rules = egressRules(true);
  assert.ok(rules.some((r) => r.startsWith('meta mark { 2, 256-65535 } ip daddr 10.0.2.0/24 tcp dport { 9090 } ')), rules.join('\n'));
});

test("with ipBlockSelectsPods off an ipBlock keeps Cilium's meaning: the world only", () => {
  const rules = egressRules(false);
  assert.ok(rules.some((r) => r.startsWith('meta mark 2 ip daddr 10.0.0.0/8 ip daddr != { 10.0.1.2/32 } ')), rules.join('\n'));
  assert.ok(!rules.some((r) => r.includes('256-65535')));
});
