/** Valid manifests of every kind pass and come out as the right typed objects. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatFault, parseManifestText, validateObject } from './index.ts';

const cases: { name: string; yaml: string; expect: unknown }[] = [
  {
    name: 'Namespace',
    yaml: `
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {io.cilium/mtls-enabled: "true", app.kubernetes.io/name: shop}
`,
    expect: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'io.cilium/mtls-enabled': 'true', 'app.kubernetes.io/name': 'shop' } } },
  },
  {
    name: 'Pod with status',
    yaml: `
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-1
  serviceAccountName: web
  containers:
  - name: web
    image: nginx
    ports: [{name: http, containerPort: 80, protocol: TCP}]
    env: [{name: MODE, value: prod}]
status:
  phase: Running
  podIP: 10.0.1.5
  podIPs: [{ip: 10.0.1.5}, {ip: "fd00::5"}]
  hostIP: 192.168.0.2
`,
    expect: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-0', namespace: 'shop', labels: { app: 'web' } },
      spec: {
        nodeName: 'node-1',
        serviceAccountName: 'web',
        containers: [{ name: 'web', image: 'nginx', ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }], env: [{ name: 'MODE', value: 'prod' }] }],
      },
      status: { phase: 'Running', podIP: '10.0.1.5', podIPs: [{ ip: '10.0.1.5' }, { ip: 'fd00::5' }], hostIP: '192.168.0.2' },
    },
  },
  {
    name: 'Service',
    yaml: `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: ClusterIP
  selector: {app: web}
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: http}, {name: metrics, port: 9090, targetPort: 9090, protocol: TCP}]
  sessionAffinity: None
`,
    expect: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        type: 'ClusterIP',
        selector: { app: 'web' },
        clusterIP: '10.96.0.10',
        ports: [
          { name: 'http', port: 80, targetPort: 'http' },
          { name: 'metrics', port: 9090, targetPort: 9090, protocol: 'TCP' },
        ],
        sessionAffinity: 'None',
      },
    },
  },
  {
    name: 'NetworkPolicy',
    yaml: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {matchExpressions: [{key: role, operator: In, values: [front]}]}
      namespaceSelector: {}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports: [{port: 80}, {port: http, protocol: TCP}, {port: 8000, endPort: 8100}]
  egress:
  - to: [{ipBlock: {cidr: "fd00::/64"}}]
`,
    expect: {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'allow-web', namespace: 'shop' },
      spec: {
        podSelector: { matchLabels: { app: 'web' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [
              { podSelector: { matchExpressions: [{ key: 'role', operator: 'In', values: ['front'] }] }, namespaceSelector: {} },
              { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
            ],
            ports: [{ port: 80 }, { port: 'http', protocol: 'TCP' }, { port: 8000, endPort: 8100 }],
          },
        ],
        egress: [{ to: [{ ipBlock: { cidr: 'fd00::/64' } }] }],
      },
    },
  },
  {
    name: 'CiliumNetworkPolicy (FQDN, DNS, HTTP; numeric ports normalised to strings)',
    yaml: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: egress-api, namespace: shop}
spec:
  description: web may call the API and resolve its names
  endpointSelector:
    matchLabels: {app: web, "k8s:io.kubernetes.pod.namespace": shop}
  enableDefaultDeny: {egress: true, ingress: false}
  egress:
  - toEndpoints: [{matchLabels: {"k8s:k8s-app": kube-dns, "reserved:host": ""}}]
    toPorts:
    - ports: [{port: 53, protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.example.com"}, {matchName: api.example.com}]
  - toFQDNs: [{matchName: api.example.com}, {matchPattern: "**.cdn.example.com"}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}, {port: "8000", endPort: 8080}]
      rules:
        http:
        - method: GET|POST
          path: /v1/.*
          host: api[.]example[.]com
          headers: ["X-Request-Id", "X-Env: prod"]
          headerMatches: [{name: X-Token, value: abc, mismatch: DELETE}]
  - toCIDRSet: [{cidr: 192.168.0.0/16, except: [192.168.1.0/24]}]
  - toCIDR: [10.0.0.1, "fd00::/64"]
  - toEntities: [world, kube-apiserver]
  - icmps: [{fields: [{type: 8}, {type: EchoRequest, family: IPv6}]}]
  ingress:
  - fromEndpoints: [{matchExpressions: [{key: "any:role", operator: Exists}]}]
    toPorts: [{ports: [{port: http}]}]
  egressDeny:
  - toCIDR: [169.254.169.254/32]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`,
    expect: {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'egress-api', namespace: 'shop' },
      spec: {
        description: 'web may call the API and resolve its names',
        endpointSelector: { matchLabels: { app: 'web', 'k8s:io.kubernetes.pod.namespace': 'shop' } },
        enableDefaultDeny: { egress: true, ingress: false },
        egress: [
          {
            toEndpoints: [{ matchLabels: { 'k8s:k8s-app': 'kube-dns', 'reserved:host': '' } }],
            toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*.example.com' }, { matchName: 'api.example.com' }] } }],
          },
          {
            toFQDNs: [{ matchName: 'api.example.com' }, { matchPattern: '**.cdn.example.com' }],
            toPorts: [
              {
                ports: [
                  { port: '443', protocol: 'TCP' },
                  { port: '8000', endPort: 8080 },
                ],
                rules: {
                  http: [
                    {
                      method: 'GET|POST',
                      path: '/v1/.*',
                      host: 'api[.]example[.]com',
                      headers: ['X-Request-Id', 'X-Env: prod'],
                      headerMatches: [{ name: 'X-Token', value: 'abc', mismatch: 'DELETE' }],
                    },
                  ],
                },
              },
            ],
          },
          { toCIDRSet: [{ cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] }] },
          { toCIDR: ['10.0.0.1', 'fd00::/64'] },
          { toEntities: ['world', 'kube-apiserver'] },
          { icmps: [{ fields: [{ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }] }] },
        ],
        ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: 'any:role', operator: 'Exists' }] }], toPorts: [{ ports: [{ port: 'http' }] }] }],
        egressDeny: [{ toCIDR: ['169.254.169.254/32'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
      },
    },
  },
  {
    name: 'CiliumClusterwideNetworkPolicy with specs and a host policy',
    yaml: `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: cluster-base}
specs:
- endpointSelector: {}
  egress: [{toEntities: [cluster]}]
- nodeSelector: {matchLabels: {node-role.kubernetes.io/worker: ""}}
  ingress: [{fromEntities: [remote-node, health], toPorts: [{ports: [{port: 22, protocol: TCP}]}]}]
`,
    expect: {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumClusterwideNetworkPolicy',
      metadata: { name: 'cluster-base' },
      specs: [
        { endpointSelector: {}, egress: [{ toEntities: ['cluster'] }] },
        {
          nodeSelector: { matchLabels: { 'node-role.kubernetes.io/worker': '' } },
          ingress: [{ fromEntities: ['remote-node', 'health'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
        },
      ],
    },
  },
];

for (const c of cases) {
  test(`valid: ${c.name}`, () => {
    const file = parseManifestText(c.yaml, 'valid.yaml');
    assert.deepEqual(file.faults.map(formatFault), []);
    assert.equal(file.entries.length, 1);
    assert.deepEqual(file.entries[0]!.object, c.expect);
    assert.deepEqual({ ...file.entries[0], object: undefined }, { object: undefined, source: 'valid.yaml', doc: 1, path: '' });
  });
}

test('valid: validateObject takes an already-parsed object', () => {
  const raw = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'lab' } };
  assert.deepEqual(validateObject(raw), { object: raw, faults: [] });
});

test('valid: a JSON file', () => {
  const text = JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'lab', labels: { 'a/b': 'c' } } }, null, 2);
  const file = parseManifestText(text, 'ns.json');
  assert.deepEqual(file.faults, []);
  assert.equal(file.entries[0]!.object.metadata.name, 'lab');
});

test('valid: List and <Kind>List are unpacked; typed List items may omit apiVersion/kind', () => {
  const text = `
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: a}}
- {apiVersion: v1, kind: Namespace, metadata: {name: b}}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicyList
metadata: {resourceVersion: "12"}
items:
- metadata: {name: p1, namespace: a}
  spec: {endpointSelector: {}}
`;
  const file = parseManifestText(text, 'lists.yaml');
  assert.deepEqual(file.faults.map(formatFault), []);
  assert.deepEqual(
    file.entries.map((e) => [e.doc, e.path, e.object.kind, e.object.metadata.name]),
    [
      [1, 'items[0]', 'Namespace', 'a'],
      [1, 'items[1]', 'Namespace', 'b'],
      [2, 'items[0]', 'CiliumNetworkPolicy', 'p1'],
    ],
  );
  assert.equal(file.entries[2]!.object.apiVersion, 'cilium.io/v2');
});

test('valid: empty documents are skipped but counted', () => {
  const text = `---\n# nothing here\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n`;
  const file = parseManifestText(text, 'gaps.yaml');
  assert.deepEqual(file.faults, []);
  assert.equal(file.entries[0]!.doc, 2);
});
