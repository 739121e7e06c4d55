// Policy semantics, one named case per rule of shared/DESIGN.md "Compatibility facts"
// and the Kubernetes NetworkPolicy reference. Each check is a real verdict from the engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Ask, ask, world } from '../../test/kit/policy-world.ts';

interface Check extends Ask {
  allowed: boolean;
  match?: string;
  reason?: string;
  /** Policy names expected among allowedBy/deniedBy of the decisive direction. */
  by?: string[];
}

interface Case {
  name: string;
  policies: string;
  /** The agent setting networkPolicy.ipBlockSelectsPods (default true). */
  ipBlockSelectsPods?: boolean;
  checks: Check[];
}

const cnp = (name: string, ns: string, spec: string): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n---\n`;
const ccnp = (name: string, spec: string): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: ${name}}\nspec:\n${spec}\n---\n`;
const knp = (name: string, ns: string, spec: string): string =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n---\n`;

const cases: Case[] = [
  {
    name: 'an endpoint no policy selects allows everything',
    policies: '',
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: true, match: 'all', reason: 'no-policy' },
      { src: '203.0.113.5', dst: 'prod/db', port: 5432, allowed: true, reason: 'no-policy' },
    ],
  },
  {
    name: 'an ingress section makes ingress default-deny and leaves egress open',
    policies: cnp('be', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: true, match: 'l3-only', by: ['be'] },
      { src: 'prod/db', dst: 'prod/backend', port: 80, allowed: false, reason: 'default-deny' },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true, reason: 'no-policy' },
      { src: 'prod/backend', dst: '203.0.113.5', port: 443, allowed: true },
    ],
  },
  {
    name: 'an egress section makes egress default-deny and leaves ingress open',
    policies: cnp('fe', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toEndpoints: [{matchLabels: {app: backend}}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: true, match: 'l3-l4' },
      { src: 'prod/frontend', dst: 'prod/backend', port: 81, allowed: false, reason: 'default-deny' },
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false },
      { src: 'prod/db', dst: 'prod/frontend', port: 80, allowed: true },
    ],
  },
  {
    name: 'allow rules are a union across CNP, CCNP and KNP',
    policies:
      cnp('a', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: backend}}]`) +
      ccnp('b', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: tester}}]`) +
      knp('c', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: frontend}}}]`),
    checks: [
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true, by: ['a'] },
      { src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: true, by: ['b'] },
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: true, by: ['c'] },
      { src: 'dev/backend', dst: 'prod/db', port: 5432, allowed: false, reason: 'default-deny' },
    ],
  },
  {
    name: 'a deny rule overrides any allow',
    policies:
      cnp('allow-all-ns', 'prod', `  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{}]`) +
      cnp('deny-fe', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]\n    toPorts: [{ports: [{port: "5432"}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false, reason: 'denied-by-rule', by: ['deny-fe'] },
      { src: 'prod/frontend', dst: 'prod/db', port: 22, allowed: true },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true, by: ['allow-all-ns'] },
    ],
  },
  {
    name: 'egressDeny to the world overrides an L4-only allow',
    policies: cnp('e', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toPorts: [{ports: [{port: "443"}]}]\n  egressDeny:\n  - toCIDR: [203.0.113.0/24]`),
    checks: [
      { src: 'prod/frontend', dst: '198.51.100.7', port: 443, allowed: true, match: 'l4-only' },
      { src: 'prod/frontend', dst: '203.0.113.5', port: 443, allowed: false, reason: 'denied-by-rule' },
      { src: 'prod/frontend', dst: 'prod/db', port: 443, allowed: true, match: 'l4-only' },
    ],
  },
  {
    name: 'a deny-only section still puts the direction into default-deny',
    policies: cnp('d', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingressDeny:\n  - fromEntities: [world]`),
    checks: [
      { src: '203.0.113.5', dst: 'prod/db', port: 5432, allowed: false, reason: 'denied-by-rule' },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: false, reason: 'default-deny' },
    ],
  },
  {
    name: 'enableDefaultDeny false: the rule allows without denying the rest',
    policies: cnp('soft', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  enableDefaultDeny: {ingress: false}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: backend}}]\n  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]`),
    checks: [
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true, match: 'l3-only', by: ['soft'] },
      { src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: true, reason: 'not-enforced' },
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false, reason: 'denied-by-rule' },
    ],
  },
  {
    name: 'enableDefaultDeny false does not undo another policy’s default-deny',
    policies:
      cnp('soft', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  enableDefaultDeny: {ingress: false}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: backend}}]`) +
      cnp('hard', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]`),
    checks: [{ src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: false, reason: 'default-deny' }],
  },
  {
    name: 'ingress: [{}] denies all ingress',
    policies: cnp('lockdown', 'prod', `  endpointSelector: {}\n  ingress:\n  - {}`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: false, reason: 'default-deny' },
      { src: 'prod/frontend', dst: 'dev/backend', port: 80, allowed: true },
    ],
  },
  {
    name: 'an L4 rule with no L3 peer applies to any peer, the world included',
    policies: cnp('l4', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "8080", protocol: TCP}]}]`),
    checks: [
      { src: '203.0.113.5', dst: 'prod/backend', port: 8080, allowed: true, match: 'l4-only' },
      { src: 'dev/tester', dst: 'prod/backend', port: 8080, allowed: true, match: 'l4-only' },
      { src: 'dev/tester', dst: 'prod/backend', port: 8080, proto: 'UDP', allowed: false },
    ],
  },
  {
    name: 'CNP peer selectors stay in the policy namespace unless they name one',
    policies: cnp('ns', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: tester}}, {matchLabels: {app: frontend}}]\n  - fromEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": dev, app: backend}}]`),
    checks: [
      { src: 'dev/tester', dst: 'prod/backend', port: 80, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: true },
      { src: 'dev/backend', dst: 'prod/backend', port: 80, allowed: true },
    ],
  },
  {
    name: 'a CNP endpointSelector selects only its own namespace',
    policies: cnp('only-prod', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - {}`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: false },
      { src: 'prod/frontend', dst: 'dev/backend', port: 80, allowed: true, reason: 'no-policy' },
    ],
  },
  {
    name: 'CCNP selectors span namespaces; fromEndpoints {} means every pod, not the world',
    policies:
      ccnp('cw', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: tester}}]`) +
      ccnp('pods', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - fromEndpoints: [{}]`),
    checks: [
      { src: 'dev/tester', dst: 'prod/db', port: 1, allowed: true },
      { src: 'host', dst: 'prod/db', port: 1, allowed: false },
      { src: '203.0.113.5', dst: 'prod/db', port: 1, allowed: false },
      { src: 'dev/tester', dst: 'prod/backend', port: 80, allowed: true },
      { src: 'dev/tester', dst: 'dev/backend', port: 80, allowed: true },
      { src: 'prod/frontend', dst: 'dev/backend', port: 80, allowed: false },
    ],
  },
  {
    name: 'namespace labels are selectable as io.cilium.k8s.namespace.labels',
    policies: cnp('nslabels', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {"k8s:io.cilium.k8s.namespace.labels.env": dev}}]`),
    checks: [
      { src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'matchExpressions In, NotIn, Exists, DoesNotExist',
    policies: cnp('expr', 'prod', `  endpointSelector: {matchExpressions: [{key: app, operator: In, values: [db, backend]}]}\n  ingress:\n  - fromEndpoints: [{matchExpressions: [{key: app, operator: NotIn, values: [frontend]}, {key: app, operator: Exists}, {key: tier, operator: DoesNotExist}]}]`),
    checks: [
      { src: 'prod/backend', dst: 'prod/db', port: 1, allowed: true },
      { src: 'prod/frontend', dst: 'prod/db', port: 1, allowed: false },
      { src: 'prod/db', dst: 'prod/backend', port: 1, allowed: true },
      { src: 'prod/db', dst: 'prod/frontend', port: 1, allowed: true, reason: 'no-policy' },
    ],
  },
  {
    name: 'entities: world, cluster, host, all and none',
    policies:
      cnp('world', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  ingress:\n  - fromEntities: [world]`) +
      cnp('cluster', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEntities: [cluster]`) +
      cnp('all', 'prod', `  endpointSelector: {matchLabels: {app: db}}\n  egress:\n  - toEntities: [all]\n  ingress:\n  - fromEntities: [host, none]`),
    checks: [
      { src: '203.0.113.5', dst: 'prod/frontend', port: 443, allowed: true, match: 'l3-only' },
      { src: 'prod/db', dst: 'prod/frontend', port: 443, allowed: false },
      { src: 'dev/tester', dst: 'prod/backend', port: 80, allowed: true },
      { src: 'host', dst: 'prod/backend', port: 80, allowed: true },
      { src: 'remote-node', dst: 'prod/backend', port: 80, allowed: true },
      { src: '203.0.113.5', dst: 'prod/backend', port: 80, allowed: false },
      { src: 'prod/db', dst: '203.0.113.5', port: 80, allowed: true, match: 'all' },
      { src: 'host', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'toCIDRSet except carves holes; CIDR rules never select pods',
    policies: cnp('cidr', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toCIDRSet: [{cidr: 0.0.0.0/0, except: [203.0.113.0/24]}]\n  - toCIDR: [203.0.113.9/32]`),
    checks: [
      { src: 'prod/frontend', dst: '198.51.100.7', port: 443, allowed: true, match: 'l3-only' },
      { src: 'prod/frontend', dst: '203.0.113.5', port: 443, allowed: false },
      { src: 'prod/frontend', dst: '203.0.113.9', port: 443, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: false },
      { src: 'prod/frontend', dst: '10.0.1.2', port: 80, allowed: false },
    ],
  },
  {
    name: 'toFQDNs allows the IPs the allowed names resolved to, on the listed ports only',
    policies: cnp('fqdn', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toFQDNs: [{matchPattern: "*.github.com"}, {matchName: example.org}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]`),
    checks: [
      { src: 'prod/frontend', dst: '140.82.1.1', port: 80, fqdn: { 'api.github.com.': ['140.82.1.1'] }, allowed: true, match: 'l3-l4' },
      { src: 'prod/frontend', dst: '140.82.1.1', port: 443, fqdn: { 'api.github.com.': ['140.82.1.1'] }, allowed: false },
      { src: 'prod/frontend', dst: '93.184.216.34', port: 80, fqdn: { 'EXAMPLE.org': ['93.184.216.34'] }, allowed: true },
      { src: 'prod/frontend', dst: '93.184.216.35', port: 80, fqdn: { 'evil.example.com.': ['93.184.216.35'] }, allowed: false },
      { src: 'prod/frontend', dst: '140.82.1.1', port: 80, allowed: false },
      { src: 'prod/frontend', dst: '140.82.1.2', port: 80, fqdn: { 'github.com.': ['140.82.1.2'] }, allowed: false },
    ],
  },
  {
    name: 'a leading **. pattern reaches multi-label subdomains, not the bare domain',
    policies: cnp('deep', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toFQDNs: [{matchPattern: "**.example.com"}]`),
    checks: [
      { src: 'prod/frontend', dst: '192.0.2.1', port: 80, fqdn: { 'a.b.example.com.': ['192.0.2.1'] }, allowed: true },
      { src: 'prod/frontend', dst: '192.0.2.2', port: 80, fqdn: { 'example.com.': ['192.0.2.2'] }, allowed: false },
    ],
  },
  {
    name: 'rules.dns allows only the listed names through the DNS proxy',
    policies: cnp('dns', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toEndpoints: [{matchLabels: {app: backend}}]\n    toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchName: api.github.com}, {matchPattern: "*.internal"}]}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 53, proto: 'UDP', dns: 'API.github.com', allowed: true, match: 'l7/dns', reason: 'l7-allowed' },
      { src: 'prod/frontend', dst: 'prod/backend', port: 53, proto: 'UDP', dns: 'x.internal.', allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 53, proto: 'UDP', dns: 'docs.github.com', allowed: false, reason: 'l7-denied' },
      { src: 'prod/frontend', dst: 'prod/backend', port: 53, proto: 'UDP', allowed: true, reason: 'l7-redirect' },
    ],
  },
  {
    name: 'HTTP rules: anchored regexes, fields AND, rules OR',
    policies: cnp('l7', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]\n    toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules:\n        http:\n        - {method: GET, path: /}\n        - {method: GET, path: "/public.*"}\n        - {method: "PUT|POST", path: /api/v1/.*, headers: ["X-Token: abc", "X-Trace"]}`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'GET', path: '/' }, allowed: true, match: 'l7/http', reason: 'l7-allowed' },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'GET', path: '/public/x?y=1' }, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'GET', path: '/admin' }, allowed: false, reason: 'l7-denied' },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'POST', path: '/' }, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'GETX', path: '/' }, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'GET', path: '/x/public' }, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'POST', path: '/api/v1/a', headers: { 'x-token': 'abc', 'x-trace': '1' } }, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'POST', path: '/api/v1/a', headers: { 'x-token': 'abd', 'x-trace': '1' } }, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'POST', path: '/api/v1/a', headers: { 'x-token': 'abc' } }, allowed: false },
      { src: 'prod/db', dst: 'prod/backend', port: 80, http: { method: 'GET', path: '/' }, allowed: false, reason: 'default-deny' },
    ],
  },
  {
    name: 'HTTP host rule matches the whole Host value',
    policies: cnp('host', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "80"}], rules: {http: [{host: "api\\\\.example\\\\.com"}]}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'GET', path: '/', host: 'api.example.com' }, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'GET', path: '/', host: 'api.example.com.evil' }, allowed: false },
    ],
  },
  {
    name: 'an L4 allow on a port wins over L7 rules on the same port',
    policies:
      cnp('l7', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]\n    toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]`) +
      cnp('l4', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: frontend}}]\n    toPorts: [{ports: [{port: "80"}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'DELETE', path: '/' }, allowed: true, match: 'l3-l4', by: ['l4'] },
    ],
  },
  {
    name: 'L7 rules of one port from two policies are a union',
    policies:
      cnp('get', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]`) +
      cnp('put', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "80"}], rules: {http: [{method: PUT, path: /upload}]}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'GET', path: '/x' }, allowed: true, by: ['get'] },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'PUT', path: '/upload' }, allowed: true, by: ['put'] },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: { method: 'PUT', path: '/other' }, allowed: false },
    ],
  },
  {
    name: 'port ranges (endPort), protocols and named ports',
    policies: cnp('ports', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "9000", endPort: 9010, protocol: TCP}, {port: http}, {port: dns, protocol: UDP}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 9005, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 9011, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 9005, proto: 'UDP', allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 5353, proto: 'UDP', allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 5353, proto: 'TCP', allowed: false },
    ],
  },
  {
    name: 'egress named ports resolve against the destination pod',
    policies: cnp('egress-named', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toEndpoints: [{matchLabels: {app: backend}, matchExpressions: [{key: "k8s:io.kubernetes.pod.namespace", operator: Exists}]}]\n    toPorts: [{ports: [{port: http, protocol: TCP}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, allowed: true },
      { src: 'prod/frontend', dst: 'dev/backend', port: 9090, allowed: true },
      { src: 'prod/frontend', dst: 'dev/backend', port: 8080, allowed: false },
    ],
  },
  {
    name: 'ICMP rules allow the listed types only',
    policies: cnp('icmp', 'prod', `  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - fromEndpoints: [{}]\n    icmps: [{fields: [{type: 8, family: IPv4}, {type: EchoRequest, family: IPv6}]}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 8, proto: 'ICMP', allowed: true, match: 'l3-l4' },
      { src: 'prod/frontend', dst: 'prod/backend', port: 128, proto: 'ICMPv6', allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 13, proto: 'ICMP', allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: false },
    ],
  },
  // ---------------------------------------------------------------- Kubernetes NetworkPolicy
  {
    name: 'KNP podSelector peer: pods of the policy namespace only',
    policies: knp('pods', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: backend}}}]`),
    checks: [
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'dev/backend', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'KNP namespaceSelector peer: every pod of matching namespaces',
    policies: knp('ns', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {env: dev}}}]`),
    checks: [
      { src: 'dev/backend', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: false },
      { src: 'host', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'KNP namespaceSelector and podSelector in one peer AND',
    policies: knp('and', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {env: dev}}, podSelector: {matchLabels: {app: backend}}}]`),
    checks: [
      { src: 'dev/backend', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: false },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'KNP separate peers OR',
    policies: knp('or', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {env: dev}}}, {podSelector: {matchLabels: {app: backend}}}]`),
    checks: [
      { src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'KNP namespaceSelector {} selects pods of every namespace, not the world',
    policies: knp('allns', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{namespaceSelector: {}}]`),
    checks: [
      { src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: true },
      { src: '203.0.113.5', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'KNP namespaces are selectable by kubernetes.io/metadata.name',
    policies: knp('byname', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}]`),
    checks: [
      { src: 'dev/tester', dst: 'prod/db', port: 5432, allowed: true },
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: false },
    ],
  },
  {
    name: 'KNP ipBlock with except',
    policies: knp('ipb', 'prod', `  podSelector: {matchLabels: {app: frontend}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]`),
    checks: [
      { src: 'prod/frontend', dst: '203.0.113.5', port: 443, allowed: true },
      { src: 'prod/frontend', dst: '203.0.113.200', port: 443, allowed: false },
      { src: 'prod/frontend', dst: '198.51.100.7', port: 443, allowed: false },
    ],
  },
  {
    name: 'KNP ipBlock selects pods by address, after Service translation, with except (Kubernetes e2e "except clause")',
    // 10.0.0.0/8 holds every pod; the except carves out prod/backend's address alone.
    policies: knp('ipb-pods', 'prod', `  podSelector: {matchLabels: {app: frontend}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.1.2/32]}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: true, match: 'l3-only', by: ['ipb-pods'] },
      { src: 'prod/frontend', dst: 'dev/tester', port: 80, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, allowed: false, reason: 'default-deny' },
      { src: 'prod/frontend', dst: '10.9.9.9', port: 80, allowed: true },
      { src: 'prod/frontend', dst: '203.0.113.5', port: 80, allowed: false },
      // Nodes are no pods: an ipBlock never selects them by address.
      { src: 'prod/frontend', dst: 'host', port: 80, allowed: false },
    ],
  },
  {
    name: 'KNP ipBlock of one pod address (/32) allows that pod and not a pod of the same identity elsewhere',
    policies:
      // dev/backend-2 has dev/backend's labels, so its identity, and another address.
      `apiVersion: v1\nkind: Pod\nmetadata: {name: backend-2, namespace: dev, labels: {app: backend}}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.0.2.3}\n---\n` +
      knp('ipb-one', 'prod', `  podSelector: {matchLabels: {app: frontend}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.2.2/32}}]\n    ports: [{port: 9090}]`) +
      knp('ipb-in', 'dev', `  podSelector: {matchLabels: {app: backend}}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.1.0/24}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'dev/backend', port: 9090, allowed: true, match: 'l3-l4', by: ['ipb-one'] },
      { src: 'prod/frontend', dst: 'dev/backend', port: 9091, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 9090, allowed: false },
      { src: 'prod/frontend', dst: 'dev/backend-2', port: 9090, allowed: false, reason: 'default-deny' },
      // Ingress: the source pod's address.
      { src: 'prod/db', dst: 'dev/backend', port: 80, allowed: true, by: ['ipb-in'] },
      { src: 'dev/tester', dst: 'dev/backend', port: 80, allowed: false, reason: 'default-deny' },
    ],
  },
  {
    name: "KNP ipBlock with ipBlockSelectsPods off keeps Cilium's meaning: outside the cluster only",
    ipBlockSelectsPods: false,
    policies:
      knp('ipb-cilium', 'prod', `  podSelector: {matchLabels: {app: frontend}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.1.2/32]}}]`) +
      knp('ipb-in', 'dev', `  podSelector: {matchLabels: {app: backend}}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.1.0/24}}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false, reason: 'default-deny' },
      { src: 'prod/frontend', dst: 'dev/tester', port: 80, allowed: false },
      { src: 'prod/frontend', dst: '10.9.9.9', port: 80, allowed: true },
      { src: 'prod/db', dst: 'dev/backend', port: 80, allowed: false, reason: 'default-deny' },
      { src: '10.0.1.77', dst: 'dev/backend', port: 80, allowed: true },
    ],
  },
  {
    name: 'CNP CIDR rules never select pods, whatever ipBlockSelectsPods says',
    policies: cnp('cidr-pods', 'prod', `  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toCIDRSet: [{cidr: 10.0.0.0/8}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false, reason: 'default-deny' },
      { src: 'prod/frontend', dst: '10.9.9.9', port: 80, allowed: true },
    ],
  },
  {
    name: 'KNP named ports, endPort, protocol default TCP and port-less entries',
    policies: knp('ports', 'prod', `  podSelector: {matchLabels: {app: backend}}\n  ingress:\n  - ports: [{port: http}, {port: 7000, endPort: 7002}, {protocol: UDP}]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 8080, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 7001, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 7003, allowed: false },
      { src: 'prod/frontend', dst: 'prod/backend', port: 7001, proto: 'UDP', allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 12345, proto: 'UDP', allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 9090, allowed: false },
      { src: '203.0.113.5', dst: 'prod/backend', port: 8080, allowed: true },
    ],
  },
  {
    name: 'KNP policyTypes [Egress] with no rules isolates egress and leaves ingress open',
    policies: knp('egress-iso', 'prod', `  podSelector: {}\n  policyTypes: [Egress]`),
    checks: [
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: false, reason: 'default-deny' },
      { src: 'dev/tester', dst: 'prod/backend', port: 80, allowed: true },
    ],
  },
  {
    name: 'KNP policyTypes default: Ingress, plus Egress when egress is present',
    policies:
      knp('ing', 'prod', `  podSelector: {matchLabels: {app: db}}`) +
      knp('eg', 'prod', `  podSelector: {matchLabels: {app: frontend}}\n  egress:\n  - to: [{podSelector: {matchLabels: {app: backend}}}]`),
    checks: [
      { src: 'prod/backend', dst: 'prod/db', port: 5432, allowed: false },
      { src: 'prod/db', dst: 'prod/backend', port: 80, allowed: true },
      { src: 'prod/frontend', dst: 'prod/backend', port: 80, allowed: true },
      { src: 'prod/frontend', dst: 'prod/db', port: 5432, allowed: false },
      { src: 'dev/tester', dst: 'prod/frontend', port: 80, allowed: false },
    ],
  },
  {
    name: 'KNP an empty rule allows everything in its direction',
    policies: knp('open', 'prod', `  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - {}`),
    checks: [
      { src: '203.0.113.5', dst: 'prod/db', port: 1, allowed: true, match: 'all' },
      { src: 'dev/tester', dst: 'prod/db', port: 1, proto: 'UDP', allowed: true },
    ],
  },
];

for (const c of cases) {
  test(c.name, () => {
    const engine = world(c.policies, c.ipBlockSelectsPods === undefined ? {} : { ipBlockSelectsPods: c.ipBlockSelectsPods });
    for (const chk of c.checks) {
      const v = ask(engine, chk);
      const what = `${chk.src} → ${chk.dst} ${chk.proto ?? 'TCP'}/${chk.port}${chk.http ? ` ${chk.http.method} ${chk.http.path}` : ''}${chk.dns ? ` dns ${chk.dns}` : ''}`;
      assert.equal(v.allowed, chk.allowed, `${what}: allowed ${v.allowed}, want ${chk.allowed}\n${JSON.stringify(v, null, 1)}`);
      const decisive = [v.egress, v.ingress].find((d) => d && (chk.allowed ? d.reason !== 'no-policy' : !d.allowed)) ?? v.ingress ?? v.egress;
      if (chk.match) assert.equal(decisive?.match, chk.match, `${what}: match`);
      if (chk.reason) assert.equal(decisive?.reason, chk.reason, `${what}: reason`);
      if (chk.by) {
        const names = [...(decisive?.allowedBy ?? []), ...(decisive?.deniedBy ?? [])].map((o) => o.name);
        for (const n of chk.by) assert.ok(names.includes(n), `${what}: expected ${n} among ${names.join(', ')}`);
      }
    }
  });
}
