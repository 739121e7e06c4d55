/** Text → documents → faults: numbering, Lists, syntax errors, every fault at once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatFault, parseManifestRefs, parseManifestText } from './index.ts';

const lines = (text: string, source = 'policy.yaml'): string[] => parseManifestText(text, source).faults.map(formatFault);

test('formatFault: with a path, without one, and for a whole file', () => {
  assert.equal(
    formatFault({ source: 'policy.yaml', doc: 2, path: 'spec.egress[0].toFQDNs[1].matchPattern', message: "'%' is not allowed in a DNS pattern" }),
    "policy.yaml#2 spec.egress[0].toFQDNs[1].matchPattern: '%' is not allowed in a DNS pattern",
  );
  assert.equal(formatFault({ source: 'a.yaml', doc: 1, path: '', message: 'm' }), 'a.yaml#1: m');
  assert.equal(formatFault({ source: 'dir', doc: 0, path: '', message: 'm' }), 'dir: m');
});

test('a file with three faults reports all three, and no entries', () => {
  const file = parseManifestText(
    `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: Bad_Name}
spec:
  endpointSelector: {}
  egress:
  - toFQDNs: [{matchPattern: "a%.com"}]
  - toCIDR: [10.0.0.0/99]
`,
    'three.yaml',
  );
  assert.deepEqual(
    file.faults.map((f) => f.path),
    ['metadata.name', 'spec.egress[0].toFQDNs[0].matchPattern', 'spec.egress[1].toCIDR[0]'],
  );
  assert.deepEqual(file.entries, []);
});

test('a bad second document is reported as #2; the good ones still parse', () => {
  const text = `apiVersion: v1
kind: Namespace
metadata: {name: a}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: a}
spec:
  endpointSelector: {}
  egress: [{toFQDNs: [{matchName: "a.com"}, {matchPattern: "x%"}]}]
---
apiVersion: v1
kind: Namespace
metadata: {name: b}
`;
  const file = parseManifestText(text, 'policy.yaml');
  assert.deepEqual(file.faults.map(formatFault), [
    "policy.yaml#2 spec.egress[0].toFQDNs[1].matchPattern: '%' is not allowed in a DNS pattern: use letters, digits, '-', '_', '.' and '*'",
  ]);
  assert.deepEqual(
    file.entries.map((e) => e.doc),
    [1, 3],
  );
});

test('List item faults carry items[i] paths; typed Lists hold one kind', () => {
  const text = `
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: ok}}
- {apiVersion: v1, kind: Namespace, metadata: {name: ok2}}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: np}
  spec: {podSelector: {matchExpressions: [{key: a, operator: In}]}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicyList
items:
- metadata: {name: fine}
  spec: {podSelector: {}}
- kind: Pod
  metadata: {name: wrong}
---
apiVersion: v1
kind: CiliumNetworkPolicyList
items: []
`;
  assert.deepEqual(lines(text, 'l.yaml'), [
    'l.yaml#1 items[2].spec.podSelector.matchExpressions[0].values: operator In needs a non-empty values list',
    'l.yaml#2 items[1].kind: a NetworkPolicyList holds NetworkPolicy objects, not "Pod"',
    'l.yaml#3 apiVersion: CiliumNetworkPolicyList is served by apiVersion cilium.io/v2, not "v1"',
  ]);
});

test('List shell: items required, unknown fields refused, nested Lists refused', () => {
  assert.deepEqual(lines('apiVersion: v1\nkind: List\n', 'l.yaml'), ['l.yaml#1 items: required field is missing: a List needs items']);
  assert.deepEqual(lines('apiVersion: v1\nkind: List\nitems: []\nextra: 1\n', 'l.yaml'), ['l.yaml#1 extra: unknown field "extra"']);
  assert.deepEqual(lines('apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: List, items: []}]\n', 'l.yaml'), [
    'l.yaml#1 items[0].kind: a List is a whole manifest document, not an object inside one',
  ]);
});

test('unknown and unsupported fields, one fault per field', () => {
  const text = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p}
spec:
  endpointSelector: {}
  egress:
  - toFQDN: [{matchName: a.com}]
    toServices: [{k8sService: {serviceName: x}}]
    colour: blue
`;
  assert.deepEqual(lines(text, 'u.yaml'), [
    'u.yaml#1 spec.egress[0].colour: unknown field "colour"',
    'u.yaml#1 spec.egress[0].toFQDN: unknown field "toFQDN" (did you mean toFQDNs?)',
    'u.yaml#1 spec.egress[0].toServices: toServices is not supported by Palisade: select the backends with toEndpoints instead',
  ]);
});

test('YAML syntax errors name the line and column; other documents are still checked', () => {
  const text = `apiVersion: v1
kind: Namespace
metadata: {name: BAD}
---
apiVersion: v1
kind: Namespace
metadata:
  name: a
 labels: {}
`;
  const faults = lines(text, 's.yaml');
  assert.equal(faults[0], 's.yaml#1 metadata.name: "BAD" is not a DNS-1123 label: use lowercase letters, digits and \'-\', starting and ending with a letter or digit');
  assert.ok(faults.length >= 2);
  assert.match(faults[1]!, /^s\.yaml#2: YAML syntax error at line 9, column \d+: All mapping items must start at the same column/);
});

test('unclosed flow sequence: syntax error with its line', () => {
  const [fault] = parseManifestText('apiVersion: v1\nkind: Namespace\nmetadata: {name: [a}\n', 'f.yaml').faults;
  assert.equal(fault?.doc, 1);
  assert.match(fault!.message, /^YAML syntax error at line 3, column \d+: /);
});

test('duplicate keys are a syntax error (as in strict Kubernetes decoding)', () => {
  const faults = lines('apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nkind: Pod\n', 'd.yaml');
  assert.equal(faults.length, 1);
  assert.match(faults[0]!, /^d\.yaml#1: YAML syntax error at line 4, column 1: .*unique/i);
});

test('a document that is not a mapping', () => {
  assert.deepEqual(lines('- a\n- b\n', 'x.yaml'), [
    'x.yaml#1: a manifest document must be a mapping with apiVersion, kind and metadata, not a list (to give several objects, use --- between documents or a kind: List)',
  ]);
});

test('YAML anchors and merge keys resolve before validation', () => {
  const text = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: &web {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {<<: *web}}]
`;
  const file = parseManifestText(text, 'a.yaml');
  assert.deepEqual(file.faults, []);
  const object = file.entries[0]!.object;
  assert.equal(object.kind, 'NetworkPolicy');
  if (object.kind === 'NetworkPolicy') assert.deepEqual(object.spec.ingress?.[0]?.from?.[0]?.podSelector, { matchLabels: { app: 'web' } });
});

test('an empty file has no entries and no faults', () => {
  assert.deepEqual(parseManifestText('', 'e.yaml'), { source: 'e.yaml', entries: [], faults: [] });
  assert.deepEqual(parseManifestText('# only a comment\n', 'e.yaml').faults, []);
});

test('parseManifestRefs reads which object each document names, and nothing else', () => {
  const file = parseManifestRefs(
    `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: name-only}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: broken-rest, namespace: shop}
spec: {egress: [{toCIDR: [10.0.0.0/99]}], bogus: 1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicyList
items:
- metadata: {name: from-list, namespace: null}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop}
---
kind: Pod
metadata: {name: ..}
`,
    'refs.yaml',
  );
  assert.deepEqual(file.refs.map((r) => [r.doc, r.path, r.ref]), [
    [1, '', { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', name: 'name-only' }],
    [2, '', { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', name: 'broken-rest', namespace: 'shop' }],
    [3, 'items[0]', { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', name: 'from-list' }],
  ]);
  assert.deepEqual(file.faults.map(formatFault), [
    'refs.yaml#4 metadata.name: resource name may not be empty',
    'refs.yaml#5 apiVersion: required field is missing: every object needs an apiVersion',
    `refs.yaml#5 metadata.name: invalid resource name "..": [may not be '..']`,
  ]);
});
