/**
 * The Kubernetes e2e NetworkPolicy suite (test/e2e/network/netpol/ in
 * kubernetes/kubernetes), its scenarios rebuilt against a lab (root): three
 * namespaces x, y, z with pods a, b, c each serving TCP and UDP on 80 and 81
 * (named ports serve-80-tcp …), a Service per pod, and each case's 9×9
 * reachability matrix probed through the Service addresses, with the
 * upstream truth tables (ExpectPeer, ExpectAllIngress, ExpectAllEgress,
 * Expect). Loopback (a pod to itself) is not judged, as upstream.
 *
 * The ipBlock cases are the ones Cilium skips (cilium#9209): an ipBlock
 * selects pods by address. A second lab with the agents' Cilium setting
 * (lab up --knp-ipblock cilium) shows them behaving as Cilium does. Every
 * matrix is also asked of the policy engine, as `policy trace` would with
 * the same setting: the datapath and trace must agree cell by cell.
 *
 * Probes run concurrently from long-lived probers, one per pod (the pods'
 * own container, fixtures/netpol-pod.ts), so a matrix costs one round of
 * timeouts. Policies apply asynchronously: a matrix that disagrees is probed
 * again, whole, until a deadline, as upstream's ValidateOrFail retries.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { labName, PALISADE, requireRoot, ROOT, startLab, type TestLab } from './lab-kit.ts';
import * as k8s from '@kubernetes/client-node';
import { PolicyEngine } from '../../src/policy/index.ts';
import { RawObjectApi } from '../../src/k8s/raw-client.ts';
import { kubeconfigPath } from '../../src/lab/paths.ts';
import type { KubeObject } from '../../src/k8s/objects.ts';

requireRoot();

const NAMESPACES = ['x', 'y', 'z'] as const;
const POD_NAMES = ['a', 'b', 'c'] as const;
const PODS = NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => `${ns}/${p}`));
type Protocol = 'TCP' | 'UDP';
const FIRST_TIMEOUT_MS = 1500;
const RETRY_TIMEOUT_MS = 2000;
/** Agents start slowly on a loaded 2-core machine (lab up's default is 30 s). */
const AGENTS_READY_MS = 90_000;
/** How long a matrix may take to settle after a policy change. */
const SETTLE_MS = 12_000;

// ------------------------------------------------------------ truth tables

interface PeerSel {
  ns?: string;
  pod?: string;
}

const selects = (s: PeerSel, pod: string): boolean => {
  const [ns, name] = pod.split('/');
  return (s.ns === undefined || s.ns === ns) && (s.pod === undefined || s.pod === name);
};
const sel = (pod: string): PeerSel => {
  const [ns, name] = pod.split('/');
  return { ns: ns!, pod: name! };
};

/** Upstream's Reachability: every pair allowed unless a rule says otherwise, later calls winning. */
class Reachability {
  readonly #cells = new Map<string, boolean>();
  constructor() {
    for (const f of PODS) for (const t of PODS) this.#cells.set(`${f}>${t}`, true);
  }
  expectPeer(from: PeerSel, to: PeerSel, allowed: boolean): this {
    for (const f of PODS) for (const t of PODS) if (selects(from, f) && selects(to, t)) this.#cells.set(`${f}>${t}`, allowed);
    return this;
  }
  expect(from: string, to: string, allowed: boolean): this {
    return this.expectPeer(sel(from), sel(to), allowed);
  }
  expectAllIngress(to: string, allowed: boolean): this {
    return this.expectPeer({}, sel(to), allowed);
  }
  expectAllEgress(from: string, allowed: boolean): this {
    return this.expectPeer(sel(from), {}, allowed);
  }
  get(from: string, to: string): boolean {
    return this.#cells.get(`${from}>${to}`)!;
  }
}

interface Check {
  port: 80 | 81;
  protocol: Protocol;
  truth: Reachability;
}

interface Cluster {
  ip: Map<string, string>;
  serviceIp: Map<string, string>;
  /** Namespaces, pods and Services as the API server holds them (for the engine). */
  objects: KubeObject[];
}

interface Step {
  /** Policies to apply (created or replaced) before the checks. */
  policies: (c: Cluster) => string;
  checks: (c: Cluster) => Check[];
}

interface Case {
  name: string;
  steps: Step[];
}

// ------------------------------------------------------------ policies

const knp = (name: string, ns: string, spec: string): string =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n---\n`;
const tcp = (port: 80 | 81, truth: Reachability): Check => ({ port, protocol: 'TCP', truth });
const udp = (port: 80 | 81, truth: Reachability): Check => ({ port, protocol: 'UDP', truth });
const all = (): Reachability => new Reachability();
/** upstream makeLargeCIDRForIP: the /4 around an address. */
const largeCidr = (ip: string): string => `${Number(ip.split('.')[0]) & 0xf0}.0.0.0/4`;
const hostCidr = (c: Cluster, pod: string): string => `${c.ip.get(pod)}/32`;

const step = (policies: string | ((c: Cluster) => string), ...checks: (Check | ((c: Cluster) => Check))[]): Step => ({
  policies: typeof policies === 'string' ? () => policies : policies,
  checks: (c) => checks.map((k) => (typeof k === 'function' ? k(c) : k)),
});

/** The ipBlock cases, as Kubernetes expects them (ipBlock selects pods) or as Cilium does (only the outside world). */
function ipBlockCases(selectsPods: boolean): Case[] {
  return [
    {
      name: 'should allow egress access to server in CIDR block',
      steps: [
        step(
          (c) => knp('allow-client-a-via-cidr-egress-rule', 'x', `  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: ${hostCidr(c, 'y/b')}}}]`),
          tcp(80, all().expectAllEgress('x/a', false).expect('x/a', 'y/b', selectsPods)),
        ),
      ],
    },
    {
      name: 'should enforce except clause while egress access to server in CIDR block',
      steps: [
        step(
          (c) =>
            knp(
              'allow-client-a-via-cidr-egress-rule',
              'x',
              `  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: ${largeCidr(c.ip.get('x/b')!)}, except: [${hostCidr(c, 'x/b')}]}}]`,
            ),
          tcp(80, selectsPods ? all().expect('x/a', 'x/b', false) : all().expectAllEgress('x/a', false)),
        ),
      ],
    },
    {
      name: 'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed',
      steps: [
        step(
          (c) =>
            knp(
              'allow-client-a-via-cidr-egress-rule',
              'x',
              `  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: ${largeCidr(c.ip.get('x/b')!)}, except: [${hostCidr(c, 'x/b')}]}}]`,
            ),
          tcp(80, selectsPods ? all().expect('x/a', 'x/b', false) : all().expectAllEgress('x/a', false)),
        ),
        // Upstream updates the same policy to allow x/b's address alone.
        step(
          (c) => knp('allow-client-a-via-cidr-egress-rule', 'x', `  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: ${hostCidr(c, 'x/b')}}}]`),
          tcp(80, all().expectAllEgress('x/a', false).expect('x/a', 'x/b', selectsPods)),
        ),
      ],
    },
    {
      // Not upstream: the ingress side of an ipBlock with except (source addresses, same node and across nodes).
      name: 'ingress from pods by ipBlock with except (source address), TCP and UDP',
      steps: [
        step(
          (c) =>
            knp(
              'allow-ingress-via-cidr',
              'x',
              `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{ipBlock: {cidr: ${largeCidr(c.ip.get('x/b')!)}, except: [${hostCidr(c, 'x/b')}, ${hostCidr(c, 'z/c')}]}}]`,
            ),
          tcp(80, selectsPods ? all().expect('x/b', 'x/a', false).expect('z/c', 'x/a', false) : all().expectAllIngress('x/a', false)),
          udp(81, selectsPods ? all().expect('x/b', 'x/a', false).expect('z/c', 'x/a', false) : all().expectAllIngress('x/a', false)),
        ),
      ],
    },
  ];
}

const STANDARD_CASES: Case[] = [
  {
    name: "should support a 'default-deny-ingress' policy",
    steps: [step(knp('deny-ingress', 'x', `  podSelector: {}\n  policyTypes: [Ingress]`), tcp(80, all().expectPeer({}, { ns: 'x' }, false)))],
  },
  {
    name: "should support a 'default-deny-all' policy",
    steps: [
      step(
        knp('deny-all', 'x', `  podSelector: {}\n  policyTypes: [Ingress, Egress]`),
        tcp(80, all().expectPeer({}, { ns: 'x' }, false).expectPeer({ ns: 'x' }, {}, false)),
      ),
    ],
  },
  {
    name: 'should enforce policy to allow traffic from pods within server namespace based on PodSelector',
    steps: [
      step(
        knp('x-a-allows-x-b', 'x', `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b}}}]`),
        tcp(80, all().expectAllIngress('x/a', false).expect('x/b', 'x/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector',
    steps: [
      step(
        knp('allow-client-a-via-ns-selector', 'x', `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]`),
        tcp(80, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
      ),
    ],
  },
  {
    name: 'should enforce policy based on PodSelector or NamespaceSelector',
    steps: [
      step(
        knp(
          'allow-ns-y-match-selector',
          'x',
          `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]}\n    - podSelector: {matchLabels: {pod: b}}`,
        ),
        tcp(80, all().expect('x/c', 'x/a', false)),
      ),
    ],
  },
  {
    name: 'should enforce policy based on PodSelector and NamespaceSelector',
    steps: [
      step(
        knp(
          'allow-ns-y-podselector-and-nsselector',
          'x',
          `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]}\n      podSelector: {matchLabels: {pod: b}}`,
        ),
        tcp(80, all().expectAllIngress('x/a', false).expect('y/b', 'x/a', true).expect('z/b', 'x/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce multiple, stacked policies with overlapping podSelectors (ports 80 and 81)',
    steps: [
      step(
        knp(
          'allow-client-a-via-ns-selector',
          'x',
          `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]\n    ports: [{port: 81, protocol: TCP}]`,
        ),
        tcp(81, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
        tcp(80, all().expectAllIngress('x/a', false)),
      ),
      step(
        knp(
          'allow-client-a-via-ns-selector-80',
          'x',
          `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]\n    ports: [{port: 80, protocol: TCP}]`,
        ),
        tcp(80, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
      ),
    ],
  },
  {
    name: 'should allow ingress access on one named port',
    steps: [step(knp('allow-all', 'x', `  podSelector: {}\n  ingress:\n  - ports: [{port: serve-81-tcp}]`), tcp(81, all()), tcp(80, all().expectPeer({}, { ns: 'x' }, false)))],
  },
  {
    name: 'should allow egress access on one named port',
    steps: [
      step(
        knp('allow-egress', 'x', `  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{port: serve-80-tcp}]`),
        tcp(80, all()),
        tcp(81, all().expectPeer({ ns: 'x' }, {}, false)),
      ),
    ],
  },
  {
    name: 'should work with Ingress, Egress specified together',
    steps: [
      step(
        knp(
          'allow-client-a-via-pod-selector',
          'x',
          `  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress, Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b}}}]\n  egress:\n  - ports: [{port: 80}]`,
        ),
        tcp(80, all().expectAllIngress('x/a', false).expect('x/b', 'x/a', true)),
        tcp(81, all().expectAllIngress('x/a', false).expectAllEgress('x/a', false).expect('x/b', 'x/a', true)),
      ),
    ],
  },
  {
    name: 'should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)',
    steps: [
      step(
        knp('allow-to-ns-y-pod-a', 'x', `  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}, podSelector: {matchLabels: {pod: a}}}]`) +
          knp('allow-from-xa-on-ya-match-selector', 'y', `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}, podSelector: {matchLabels: {pod: a}}}]`) +
          knp('allow-from-xa-on-yb-match-selector', 'y', `  podSelector: {matchLabels: {pod: b}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}, podSelector: {matchLabels: {pod: a}}}]`),
        tcp(80, all().expectPeer(sel('x/a'), {}, false).expectPeer({}, sel('y/a'), false).expect('x/a', 'y/a', true).expectPeer({}, sel('y/b'), false)),
      ),
    ],
  },
  {
    name: 'should enforce ingress policy allowing any port traffic to a server on a specific protocol (TCP and UDP)',
    steps: [step(knp('allow-ingress-by-proto', 'x', `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{protocol: TCP}]`), tcp(80, all()), udp(80, all().expectAllIngress('x/a', false)))],
  },
  {
    name: 'UDP: should enforce policy based on Ports',
    steps: [
      step(
        knp(
          'allow-ingress-on-port-81-ns-x',
          'x',
          `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]\n    ports: [{port: 81, protocol: UDP}]`,
        ),
        udp(81, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
      ),
    ],
  },
  {
    name: "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP'",
    steps: [
      step(
        knp('deny-ingress', 'x', `  podSelector: {}\n  policyTypes: [Ingress]`) +
          knp('allow-only-sctp-ingress-on-port-81', 'x', `  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{port: 81, protocol: SCTP}]`),
        tcp(81, all().expectPeer({}, { ns: 'x' }, false)),
      ),
    ],
  },
];

// ------------------------------------------------------------ the lab side

const FIXTURE = `${ROOT}test/e2e/fixtures/netpol-pod.ts`;
const control = (lab: TestLab, pod: string): string => `${lab.dir}/np-${pod.replace('/', '-')}.sock`;

function clusterYaml(lab: TestLab, nodes: number): string {
  const docs: string[] = [];
  for (const ns of NAMESPACES) docs.push(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}, labels: {ns: ${ns}}}`);
  PODS.forEach((pod, i) => {
    const [ns, name] = pod.split('/');
    const command = JSON.stringify([process.execPath, '--disable-warning=ExperimentalWarning', FIXTURE, control(lab, pod)]);
    docs.push(`apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {pod: ${name}}}
spec:
  nodeName: node-${(i % nodes) + 1}
  containers:
  - name: cont
    command: ${command}
    ports:
    - {name: serve-80-tcp, containerPort: 80, protocol: TCP}
    - {name: serve-81-tcp, containerPort: 81, protocol: TCP}
    - {name: serve-80-udp, containerPort: 80, protocol: UDP}
    - {name: serve-81-udp, containerPort: 81, protocol: UDP}`);
    docs.push(`apiVersion: v1
kind: Service
metadata: {name: s-${name}, namespace: ${ns}}
spec:
  selector: {pod: ${name}}
  ports:
  - {name: serve-80-tcp, port: 80, protocol: TCP}
  - {name: serve-81-tcp, port: 81, protocol: TCP}
  - {name: serve-80-udp, port: 80, protocol: UDP}
  - {name: serve-81-udp, port: 81, protocol: UDP}`);
  });
  return docs.join('\n---\n') + '\n';
}

function getJson(lab: TestLab, type: string): KubeObject[] {
  const r = lab.cli(['get', type, '-A', '-o', 'json']);
  if (r.code !== 0) throw new Error(`get ${type}: ${r.err}`);
  return (JSON.parse(r.out) as { items: KubeObject[] }).items;
}

/** `palisade apply`, its pods up, without blocking the event loop. */
function applyAsync(lab: TestLab, yaml: string): Promise<void> {
  const file = `${lab.dir}/cluster.yaml`;
  writeFileSync(file, yaml);
  return new Promise((resolve, reject) => {
    const child = spawn(PALISADE, ['apply', '-f', file, '--timeout', '60s', '--lab', lab.name], { env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`apply failed (${code}):\n${out}`))));
  });
}

async function setUp(lab: TestLab, nodes: number): Promise<Cluster> {
  await applyAsync(lab, clusterYaml(lab, nodes));
  const deadline = Date.now() + 20_000;
  while (!PODS.every((p) => existsSync(control(lab, p)))) {
    if (Date.now() > deadline) throw new Error(`probers not up: ${PODS.filter((p) => !existsSync(control(lab, p))).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const ip = new Map<string, string>();
  const [namespaces, pods, services] = [getJson(lab, 'namespaces'), getJson(lab, 'pods'), getJson(lab, 'services')];
  for (const p of pods) {
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    if (PODS.includes(key)) ip.set(key, (p as { status?: { podIP?: string } }).status?.podIP ?? '');
  }
  const serviceIp = new Map<string, string>();
  for (const s of services) {
    const m = /^s-(\w)$/.exec(s.metadata.name);
    if (m && NAMESPACES.includes(s.metadata.namespace as 'x')) serviceIp.set(`${s.metadata.namespace}/${m[1]}`, (s as { spec: { clusterIP: string } }).spec.clusterIP);
  }
  assert.equal(ip.size, 9, `pod addresses: ${[...ip].join(' ')}`);
  assert.equal(serviceIp.size, 9, `service addresses: ${[...serviceIp].join(' ')}`);
  return { ip, serviceIp, objects: [...namespaces, ...pods, ...services] };
}

interface Cell {
  from: string;
  to: string;
  port: number;
  protocol: Protocol;
}
const cellKey = (c: Cell): string => `${c.from}>${c.to}>${c.protocol}/${c.port}`;

/** One round: every source pod probes its cells at once; the pods run concurrently. */
async function probe(lab: TestLab, cluster: Cluster, cells: Cell[], timeoutMs: number): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  await Promise.all(
    PODS.map(async (from) => {
      const mine = cells.filter((c) => c.from === from);
      if (mine.length === 0) return;
      const probes = mine.map((c) => ({ ip: cluster.serviceIp.get(c.to)!, port: c.port, protocol: c.protocol }));
      const results = await new Promise<boolean[]>((resolve, reject) => {
        const s = connect(control(lab, from));
        let buf = '';
        s.on('data', (d: Buffer) => (buf += d.toString()));
        s.on('end', () => {
          try {
            resolve((JSON.parse(buf) as { results: boolean[] }).results);
          } catch (err) {
            reject(new Error(`prober ${from}: ${String(err)}: ${buf}`));
          }
        });
        s.on('error', reject);
        // The prober answers and closes; closing our side first would close it before it answers.
        s.write(JSON.stringify({ timeoutMs, probes }) + '\n');
      });
      mine.forEach((c, i) => out.set(cellKey(c), results[i]!));
    }),
  );
  return out;
}

/** Upstream's truth table: observed 1/0 per cell, * where it differs from the expectation, . for loopback. */
function table(check: Check, observed: Map<string, boolean>, expected: (from: string, to: string) => boolean): string {
  const head = `${check.protocol}/${check.port}  (rows: from, columns: to; * = not as expected)\n      ${PODS.map((p) => p.padEnd(5)).join('')}`;
  const rows = PODS.map((from) => {
    const cells = PODS.map((to) => {
      if (from === to) return '.    ';
      const got = observed.get(cellKey({ from, to, port: check.port, protocol: check.protocol }));
      return `${got ? 1 : 0}${got === expected(from, to) ? ' ' : '*'}`.padEnd(5);
    });
    return `${from.padEnd(6)}${cells.join('')}`;
  });
  return [head, ...rows].join('\n');
}

/** What `policy trace` answers for every cell: the engine with the lab's objects and the agents' setting. */
function traceVerdicts(cluster: Cluster, policies: Iterable<KubeObject>, ipBlockSelectsPods: boolean, checks: Check[]): Map<string, boolean> {
  const engine = new PolicyEngine({ ipBlockSelectsPods });
  engine.batch((e) => {
    for (const o of [...cluster.objects, ...policies]) e.upsert(o);
  });
  const snap = engine.snapshot();
  const out = new Map<string, boolean>();
  for (const k of checks) {
    for (const from of PODS) {
      for (const to of PODS) {
        if (from === to) continue;
        // After Service translation the destination is the backend pod, as trace resolves a Service.
        const v = snap.verdict({ src: { endpoint: from }, dst: { endpoint: to }, protocol: k.protocol, port: k.port });
        out.set(cellKey({ from, to, port: k.port, protocol: k.protocol }), v.allowed);
      }
    }
  }
  return out;
}

const objectsOf = (yaml: string): KubeObject[] =>
  parseAllDocuments(yaml)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);

/** The lab's API server, in-process: a policy change costs a request, not a CLI start. */
function apiOf(lab: TestLab): RawObjectApi {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath(lab.name));
  return RawObjectApi.makeRaw(kc);
}

/** Create, or replace what has that name (upstream's CreatePolicy / UpdatePolicy). */
async function applyPolicy(api: RawObjectApi, o: KubeObject): Promise<void> {
  const body = o as unknown as k8s.KubernetesObject;
  try {
    await api.create(body);
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    const live = await api.read({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace ?? 'default' } });
    await api.replace({ ...body, metadata: { ...body.metadata, resourceVersion: live.metadata?.resourceVersion ?? '' } });
  }
}

async function runCase(lab: TestLab, cluster: Cluster, c: Case, ipBlockSelectsPods: boolean): Promise<void> {
  const api = apiOf(lab);
  // What is in force: a policy of the same name replaces the earlier one (upstream's UpdatePolicy).
  const applied = new Map<string, KubeObject>();
  try {
    for (const [i, s] of c.steps.entries()) {
      for (const o of objectsOf(s.policies(cluster))) {
        await applyPolicy(api, o);
        applied.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
      }
      const checks = s.checks(cluster);
      const cells: Cell[] = checks.flatMap((k) => PODS.flatMap((from) => PODS.filter((to) => to !== from).map((to) => ({ from, to, port: k.port, protocol: k.protocol }))));
      const expected = (cell: Cell): boolean => checks.find((k) => k.port === cell.port && k.protocol === cell.protocol)!.truth.get(cell.from, cell.to);

      // The engine, as `policy trace`, must give the upstream answers too.
      const traced = traceVerdicts(cluster, applied.values(), ipBlockSelectsPods, checks);
      const traceWrong = cells.filter((cell) => traced.get(cellKey(cell)) !== expected(cell));
      assert.deepEqual(traceWrong.map(cellKey), [], `${c.name} (step ${i + 1}): policy trace disagrees with the upstream truth table`);

      // A round passes only whole: a cell right by chance while the policy was
      // still on its way (an allow the old state gave) must not stand alone.
      let observed = await probe(lab, cluster, cells, FIRST_TIMEOUT_MS);
      const deadline = Date.now() + SETTLE_MS;
      let wrong = cells.filter((cell) => observed.get(cellKey(cell)) !== expected(cell));
      while (wrong.length > 0 && Date.now() < deadline) {
        observed = await probe(lab, cluster, cells, RETRY_TIMEOUT_MS);
        wrong = cells.filter((cell) => observed.get(cellKey(cell)) !== expected(cell));
      }
      if (wrong.length > 0) {
        const tables = checks.map((k) => table(k, observed, (f, t) => k.truth.get(f, t))).join('\n\n');
        assert.fail(`${c.name} (step ${i + 1}): ${wrong.length} cells not as expected\n${tables}`);
      }
    }
  } finally {
    for (const o of applied.values()) await api.delete({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace ?? 'default' } });
  }
}

// ------------------------------------------------------------ the suites

describe('upstream NetworkPolicy e2e cases (ipBlock selects pods: Kubernetes semantics, the default)', () => {
  let lab: TestLab | undefined;
  let cluster: Cluster;
  before(async () => {
    lab = await startLab(labName('e2enp'), 2, { timeoutMs: AGENTS_READY_MS });
    cluster = await setUp(lab, 2);
  });
  after(async () => {
    await lab?.down();
  });

  test('with no policy every pod reaches every pod, TCP and UDP on 80 and 81', async () => {
    await runCase(lab!, cluster, { name: 'no policy', steps: [step('', tcp(80, all()), tcp(81, all()), udp(80, all()), udp(81, all()))] }, true);
  });
  for (const c of [...STANDARD_CASES, ...ipBlockCases(true)]) {
    test(c.name, async () => runCase(lab!, cluster, c, true));
  }
  test('should stop enforcing policies after they are deleted', async () => {
    await runCase(lab!, cluster, { name: 'after deletion', steps: [step('', tcp(80, all()), udp(80, all()))] }, true);
  });
});

describe("ipBlock cases with the agents' Cilium setting (lab up --knp-ipblock cilium): pods are never selected by address", () => {
  let lab: TestLab | undefined;
  let cluster: Cluster;
  // One node: what differs here is the agents' setting, not the path between nodes.
  before(async () => {
    lab = await startLab(labName('e2enpc'), 1, { networkPolicy: { ipBlockSelectsPods: false }, timeoutMs: AGENTS_READY_MS });
    cluster = await setUp(lab, 1);
  });
  after(async () => {
    await lab?.down();
  });

  for (const c of ipBlockCases(false)) {
    test(c.name, async () => runCase(lab!, cluster, c, false));
  }
});
