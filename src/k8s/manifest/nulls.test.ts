/**
 * A field set to null means the field left out, as the API server reads it
 * (Go's JSON decoding leaves a null field at its zero value; null fields of
 * custom resources are pruned before validation).
 *
 * The table is generated: the policy kinds' schemas are walked for every field
 * of every object they define, and each field is found in one of the "every
 * field" manifests below. Each row applies two real manifests through the
 * validator — the field set to null, and the field left out — and checks that
 * they mean the same: the same faults, or the same object and the same
 * compiled policy rules. A test fails when a schema gains a field that no
 * manifest here reaches.
 *
 * Where null is not the same as a missing field (none of them a field):
 *
 * | YAML                              | Palisade                     | upstream                                                        |
 * |-----------------------------------|------------------------------|-----------------------------------------------------------------|
 * | a list item left empty (`- `)      | refused, names the item      | KNP: a zero-value rule/peer (allows all); CRDs: refused          |
 * | a label value left empty (`app:`) | refused, names the label     | KNP: the value ""; CRDs: the key dropped — they disagree         |
 * | an unknown field set to null      | refused as an unknown field  | kubectl --validate=strict: unknown field                         |
 *
 * And one field whose absence Palisade refuses where upstream does not:
 * NetworkPolicy `podSelector` (null or left out) is refused as missing;
 * upstream reads both as `{}`, all pods of the namespace.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import type * as z from 'zod';
import { parseAllDocuments } from 'yaml';
import type { CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, KubeObject, NetworkPolicy } from '../objects.ts';
import { PolicyEngine, translateCiliumPolicy, translateNetworkPolicy } from '../../policy/index.ts';
import { ask, objects, world } from '../../../test/kit/policy-world.ts';
import { parseManifestText, validateObject } from './index.ts';
import { KINDS } from './validate.ts';

// ---------------------------------------------------------------- manifests with every field

const KNP_EVERY_FIELD = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: every-field
  namespace: shop
  generateName: every-
  labels: {team: a}
  annotations: {note: x}
  uid: 6f1c1d2e-0000-4000-8000-000000000001
  resourceVersion: "7"
  generation: 2
  creationTimestamp: "2024-05-01T00:00:00Z"
  deletionTimestamp: "2024-05-02T00:00:00Z"
  finalizers: [example.com/keep]
  ownerReferences: []
  managedFields: []
spec:
  podSelector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [front]}]
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {matchLabels: {app: client}}
      namespaceSelector: {matchLabels: {team: a}}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
    - {protocol: TCP, port: 80, endPort: 90}
  egress:
  - to:
    - namespaceSelector: {matchExpressions: [{key: team, operator: Exists}]}
    ports:
    - {protocol: UDP, port: 53}
`;

const CNP_EVERY_FIELD = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: every-field, namespace: shop, labels: {team: a}}
spec:
  description: every field of a rule
  endpointSelector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: NotIn, values: [db]}]
  enableDefaultDeny: {ingress: true, egress: true}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - method: GET
          path: /api/.*
          host: shop\\.example\\.com
          headers: ["X-Team: a"]
          headerMatches: [{name: X-Id, value: "1", mismatch: LOG}]
  - fromCIDR: [192.0.2.0/24]
    icmps: [{fields: [{type: 8, family: IPv4}]}]
  - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
    toPorts: [{ports: [{port: "8000", endPort: 8100, protocol: TCP}]}]
  - fromEntities: [world]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: bad}}]
    toPorts: [{ports: [{port: "22", protocol: TCP}]}]
  - fromCIDR: [198.51.100.0/24]
    icmps: [{fields: [{type: EchoRequest}]}]
  egress:
  - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules: {dns: [{matchPattern: "*.example.com"}, {matchName: example.com}]}
  - toFQDNs: [{matchName: api.example.com}]
    toPorts: [{ports: [{port: "443"}]}]
  - toCIDR: [203.0.113.0/24]
    icmps: [{fields: [{type: 8}]}]
  - toCIDRSet: [{cidr: 0.0.0.0/0, except: [169.254.0.0/16]}]
  - toEntities: [cluster]
  egressDeny:
  - toEndpoints: [{matchLabels: {app: secrets}}]
    toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
  - toCIDRSet: [{cidr: 192.168.0.0/16, except: [192.168.1.0/24]}]
    icmps: [{fields: [{type: 128, family: IPv6}]}]
specs:
- endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEntities: [cluster]
`;

const CCNP_EVERY_FIELD = `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: every-field, labels: {team: a}}
spec:
  description: every field of a clusterwide rule
  endpointSelector: {matchLabels: {app: web}, matchExpressions: [{key: tier, operator: DoesNotExist}]}
  enableDefaultDeny: {ingress: false, egress: true}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules:
        http: [{method: POST, path: /orders, host: shop, headers: [X-Trace], headerMatches: [{name: X-Id, value: "2", mismatch: REPLACE}]}]
  - fromCIDR: [192.0.2.0/24]
    icmps: [{fields: [{type: 0, family: IPv4}]}]
  - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.2.0.0/16]}]
    toPorts: [{ports: [{port: "9000", endPort: 9010, protocol: UDP}]}]
  - fromEntities: [host]
  ingressDeny:
  - fromCIDRSet: [{cidr: 172.16.0.0/12, except: [172.16.1.0/24]}]
    toPorts: [{ports: [{port: "23"}]}]
    icmps: []
  - fromEntities: [world]
    icmps: [{fields: [{type: 8}]}]
  egress:
  - toEndpoints: [{}]
    toPorts:
    - ports: [{port: "53", protocol: UDP}]
      rules: {dns: [{matchName: shop.example.com}]}
  - toFQDNs: [{matchPattern: "*.example.com"}]
  - toCIDR: [203.0.113.7]
    icmps: [{fields: [{type: 8, family: IPv4}]}]
  - toCIDRSet: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]
  - toEntities: [world]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  egressDeny:
  - toEndpoints: [{matchLabels: {app: secrets}}]
    icmps: [{fields: [{type: 8}]}]
  - toCIDR: [198.51.100.1]
    toPorts: [{ports: [{port: "25", protocol: TCP}]}]
  - toCIDRSet: [{cidr: 192.168.0.0/16, except: [192.168.3.0/24]}]
  - toEntities: [world]
specs:
- nodeSelector: {matchLabels: {role: worker}, matchExpressions: [{key: zone, operator: In, values: [a]}]}
  ingress:
  - fromEntities: [remote-node]
    toPorts: [{ports: [{port: "22", protocol: TCP}]}]
  egress:
  - toEntities: [cluster]
`;

/** Every kind's "every field" manifests. The policy kinds are the subject; Pods and Services come along cheaply. */
const EVERY_FIELD: Readonly<Record<string, readonly string[]>> = {
  NetworkPolicy: [KNP_EVERY_FIELD],
  CiliumNetworkPolicy: [CNP_EVERY_FIELD],
  CiliumClusterwideNetworkPolicy: [CCNP_EVERY_FIELD],
};

// ---------------------------------------------------------------- walking the schemas

interface SchemaDef {
  type: string;
  innerType?: z.ZodType;
  out?: z.ZodType;
  shape?: Readonly<Record<string, z.ZodType>>;
  element?: z.ZodType;
}

function defOf(schema: z.ZodType): SchemaDef {
  return (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
}

/** The schema under optional() and strictObject's null-dropping pipe. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const d = defOf(s);
    if (d.type === 'optional' && d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.out) s = d.out;
    else return s;
  }
}

function shapeOf(schema: z.ZodType): Readonly<Record<string, z.ZodType>> | undefined {
  const d = defOf(unwrap(schema));
  return d.type === 'object' ? d.shape : undefined;
}

function elementOf(schema: z.ZodType): z.ZodType | undefined {
  const d = defOf(unwrap(schema));
  return d.type === 'array' ? d.element : undefined;
}

/** A field of an object schema: the object (by identity) and the key. */
type FieldKey = `${number}.${string}`;

function schemaIds(): (s: z.ZodType) => number {
  const ids = new Map<z.ZodType, number>();
  return (s) => {
    const u = unwrap(s);
    let id = ids.get(u);
    if (id === undefined) ids.set(u, (id = ids.size));
    return id;
  };
}

/** Every field of every object reachable from a schema, with a readable path of its first place. */
function schemaFields(root: z.ZodType, idOf: (s: z.ZodType) => number): Map<FieldKey, string> {
  const fields = new Map<FieldKey, string>();
  const seen = new Set<number>();
  const visit = (s: z.ZodType, path: string): void => {
    const element = elementOf(s);
    if (element) return visit(element, `${path}[]`);
    const shape = shapeOf(s);
    if (!shape || seen.has(idOf(s))) return;
    seen.add(idOf(s));
    for (const [key, child] of Object.entries(shape)) {
      fields.set(`${idOf(s)}.${key}`, path === '' ? key : `${path}.${key}`);
      visit(child, path === '' ? key : `${path}.${key}`);
    }
  };
  visit(root, '');
  return fields;
}

type Segment = string | number;

interface Row {
  kind: string;
  /** Where the field is: the path of its object, then its key. */
  at: Segment[];
  key: string;
  optional: boolean;
  field: FieldKey;
  base: Record<string, unknown>;
}

/** One row per field of every object the manifest holds (present or not). */
function rowsOf(kind: string, manifest: Record<string, unknown>, root: z.ZodType, idOf: (s: z.ZodType) => number): Row[] {
  const rows: Row[] = [];
  const visit = (value: unknown, s: z.ZodType, at: Segment[]): void => {
    const element = elementOf(s);
    if (element) {
      if (Array.isArray(value)) value.forEach((v, i) => visit(v, element, [...at, i]));
      return;
    }
    const shape = shapeOf(s);
    if (!shape || typeof value !== 'object' || value === null) return;
    for (const [key, child] of Object.entries(shape)) {
      rows.push({ kind, at, key, optional: defOf(child).type === 'optional', field: `${idOf(s)}.${key}`, base: manifest });
      visit((value as Record<string, unknown>)[key], child, [...at, key]);
    }
  };
  visit(manifest, root, []);
  return rows;
}

function withField(base: Record<string, unknown>, at: Segment[], key: string, change: 'null' | 'absent'): Record<string, unknown> {
  const copy = structuredClone(base);
  let node: unknown = copy;
  for (const seg of at) node = (node as Record<Segment, unknown>)[seg];
  const obj = node as Record<string, unknown>;
  if (change === 'null') obj[key] = null;
  else delete obj[key];
  return copy;
}

function pathText(at: Segment[], key: string): string {
  return [...at, key].map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('').slice(1).replaceAll('.[', '[');
}

/** The policy rules the engine compiles the object into, as JSON (matchers are closures; their rule text is kept). */
function compile(object: KubeObject): unknown {
  const rules = object.kind === 'NetworkPolicy'
    ? translateNetworkPolicy(object as NetworkPolicy)
    : translateCiliumPolicy(object as CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy, 'default');
  return JSON.parse(JSON.stringify(rules));
}

function yamlObject(text: string): Record<string, unknown> {
  const docs = parseAllDocuments(text);
  assert.equal(docs.length, 1);
  return docs[0]!.toJS() as Record<string, unknown>;
}

// ---------------------------------------------------------------- the table

const idOf = schemaIds();
let validRows = 0;
let refusedRows = 0;

for (const [kind, manifests] of Object.entries(EVERY_FIELD)) {
  const root = KINDS[kind]!.schema;
  const all = schemaFields(root, idOf);
  const rows = manifests.flatMap((text) => {
    const manifest = yamlObject(text);
    const { faults } = validateObject(manifest);
    assert.deepEqual(faults, [], `the ${kind} manifest with every field must itself be valid`);
    return rowsOf(kind, manifest, root, idOf);
  });

  test(`${kind}: the manifests reach every field of the schema`, () => {
    const reached = new Set(rows.map((r) => r.field));
    const missing = [...all].filter(([f]) => !reached.has(f)).map(([, path]) => path);
    assert.deepEqual(missing, [], 'fields no row sets to null: add them to the manifests with every field');
  });

  for (const row of rows) {
    const path = pathText(row.at, row.key);
    test(`${kind} ${path}: ${row.optional ? 'optional' : 'required'}, null means left out`, () => {
      const asNull = validateObject(withField(row.base, row.at, row.key, 'null'));
      const absent = validateObject(withField(row.base, row.at, row.key, 'absent'));
      assert.deepEqual(asNull.faults, absent.faults);
      assert.deepEqual(asNull.object, absent.object);
      if (absent.object === undefined) {
        refusedRows++;
        assert.ok(absent.faults.length > 0);
        return;
      }
      validRows++;
      assert.deepEqual(compile(asNull.object!), compile(absent.object));
    });
  }
}

test('the table holds hundreds of rows, most of them valid manifests', (t) => {
  // Runs after the rows above (tests of a file run in order).
  t.diagnostic(`${validRows} rows valid both ways, ${refusedRows} refused both ways with the same faults`);
  assert.ok(validRows > 300, `valid rows: ${validRows}`);
  assert.ok(refusedRows > 20, `refused rows: ${refusedRows}`);
});

// ---------------------------------------------------------------- what null does not mean

test('null is not a list item, a label value or a known field', () => {
  const cases: [string, Record<string, unknown>, string, string][] = [
    ['an empty list item', yamlObject('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  -\n'),
      'spec.ingress[0]', 'expected a mapping (object), got null'],
    ['an empty peer', yamlObject('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n  egress:\n  - to:\n    -\n'),
      'spec.egress[0].to[0]', 'expected a mapping (object), got null'],
    ['an empty label value', yamlObject('apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\nspec:\n  endpointSelector: {matchLabels: {app: }}\n'),
      'spec.endpointSelector.matchLabels.app', 'expected a string, got null'],
    ['a misspelt field set to null', yamlObject('apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\nspec:\n  endpointSelector: {}\n  egress:\n  - toEndpoint:\n'),
      'spec.egress[0].toEndpoint', 'unknown field "toEndpoint" (did you mean toEndpoints?)'],
    ['a NetworkPolicy podSelector set to null', yamlObject('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector:\n'),
      'spec.podSelector', 'required field is missing: podSelector selects the pods'],
  ];
  for (const [name, raw, path, message] of cases) {
    const { object, faults } = validateObject(raw);
    assert.equal(object, undefined, name);
    assert.ok(faults.some((f) => f.path === path && f.message.includes(message)), `${name}: ${JSON.stringify(faults)}`);
  }
});

test('an upstream field Palisade refuses is accepted when null: it is not used', () => {
  const raw = yamlObject('apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\nspec:\n  endpointSelector: {}\n  egress:\n  - toServices:\n    toEndpoints: [{}]\n');
  assert.deepEqual(validateObject(raw).faults, []);
  const used = yamlObject('apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\nspec:\n  endpointSelector: {}\n  egress:\n  - toServices: [{k8sService: {serviceName: x}}]\n');
  assert.match(validateObject(used).faults[0]?.message ?? '', /toServices is not supported by Palisade/);
});

test('kind and apiVersion set to null are missing, in a document and in a List item', () => {
  assert.deepEqual(validateObject({ apiVersion: null, kind: null, metadata: { name: 'p' } }).faults, validateObject({ metadata: { name: 'p' } }).faults);
  const file = parseManifestText('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n- apiVersion:\n  kind:\n  metadata: {name: p}\n  spec: {podSelector: {}}\n', 'list.yaml');
  assert.deepEqual(file.faults, []);
  assert.equal(file.entries[0]?.object.kind, 'NetworkPolicy');
});

// ---------------------------------------------------------------- empty lists upstream defaults

test('NetworkPolicy policyTypes: [] and egress: [] mean what leaving them out means, as upstream defaulting reads them', () => {
  const verdicts = (spec: string): { ingress: boolean; egress: boolean } => {
    const { object, faults } = validateObject(yamlObject(`apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec:\n  podSelector: {matchLabels: {app: db}}\n${spec}`));
    assert.deepEqual(faults, []);
    const engine = world();
    engine.upsert(object!);
    return {
      ingress: ask(engine, { src: 'prod/frontend', dst: 'prod/db', port: 5432 }).allowed,
      egress: ask(engine, { src: 'prod/db', dst: 'prod/frontend', port: 80 }).allowed,
    };
  };
  const leftOut = { ingress: false, egress: true }; // [Ingress]: isolated with no rule; egress untouched
  assert.deepEqual(verdicts(''), leftOut);
  assert.deepEqual(verdicts('  policyTypes: []\n'), leftOut);
  assert.deepEqual(verdicts('  egress: []\n'), leftOut);
  assert.deepEqual(verdicts('  policyTypes: []\n  egress: []\n'), leftOut);
  // A listed Egress with no rules still isolates egress.
  assert.deepEqual(verdicts('  policyTypes: [Ingress, Egress]\n  egress: []\n'), { ingress: false, egress: false });
});

// ---------------------------------------------------------------- Cilium's own manifest

const CILIUM_KNP = new URL('../../../test/fixtures/cilium/client-egress-to-echo-knp.yaml', import.meta.url);

/** cilium-cli's test namespace and kube-dns, and an address outside the cluster. */
const CILIUM_WORLD = `
apiVersion: v1
kind: Namespace
metadata: {name: cilium-test}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: cilium-test, labels: {kind: client}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: echo-same-node, namespace: cilium-test, labels: {kind: echo}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.20}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.2.53}
`;

test("Cilium's client-egress-to-echo-knp.yaml, with `- to:` and no value, validates and is enforced as Kubernetes means", async () => {
  const text = await readFile(CILIUM_KNP, 'utf8');
  assert.match(text, /^ {4}- to:\n {6}ports:\n/m, 'the fixture keeps its `- to:` with no value');
  const file = parseManifestText(text, 'client-egress-to-echo-knp.yaml');
  assert.deepEqual(file.faults, []);
  const policy = file.entries[0]!.object as NetworkPolicy;
  assert.deepEqual(policy.spec.egress?.[2], { ports: [{ port: 53, protocol: 'UDP' }] }, 'to: null is the rule without to');

  // cilium-cli applies it in its test namespace.
  const engine = new PolicyEngine();
  engine.batch((e) => {
    for (const o of objects(CILIUM_WORLD)) e.upsert(o);
    e.upsert({ ...policy, metadata: { ...policy.metadata, namespace: 'cilium-test' } });
  });
  const verdict = (dst: string, port: number, proto: 'TCP' | 'UDP'): boolean => ask(engine, { src: 'cilium-test/client', dst, port, proto }).allowed;

  // The third rule: every destination — pod, kube-dns, the world — on UDP 53, and nothing more.
  assert.equal(verdict('kube-system/coredns', 53, 'UDP'), true);
  assert.equal(verdict('cilium-test/echo-same-node', 53, 'UDP'), true);
  assert.equal(verdict('1.1.1.1', 53, 'UDP'), true);
  assert.equal(verdict('1.1.1.1', 53, 'TCP'), false);
  assert.equal(verdict('1.1.1.1', 54, 'UDP'), false);
  // The first rule: echo pods on TCP 8080 only.
  assert.equal(verdict('cilium-test/echo-same-node', 8080, 'TCP'), true);
  assert.equal(verdict('cilium-test/echo-same-node', 8081, 'TCP'), false);
  assert.equal(verdict('kube-system/coredns', 8080, 'TCP'), false);
  // policyTypes left out defaults to [Ingress, Egress]: the client's ingress is isolated, with no rule.
  assert.equal(ask(engine, { src: 'cilium-test/echo-same-node', dst: 'cilium-test/client', port: 80 }).allowed, false);
});
