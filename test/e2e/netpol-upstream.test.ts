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
 * Cases that change labels with a policy in force (upstream's AddPodLabels,
 * AddNamespaceLabel) patch them through the API server and remove them after.
 *
 * Not here: upstream's SCTP suite (feature SCTPConnectivity), which needs
 * SCTP servers; its two cases that probe TCP under SCTP policies are here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { labName, PALISADE, requireRoot, ROOT, startLab, type TestLab } from './lab-kit.ts';
import * as k8s from '@kubernetes/client-node';
import { PolicyEngine } from '../../src/policy/index.ts';
import { RawObjectApi } from '../../src/kube-client/index.ts';
import { kubeconfigPath } from '../../src/lab/paths.ts';
import type { KubeObject } from '../../src/k8s/objects.ts';

requireRoot();

const NAMESPACES = ['x', 'y', 'z'] as const;
const POD_NAMES = ['a', 'b', 'c'] as const;
const PODS = NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => `${ns}/${p}`));
type Protocol = 'TCP' | 'UDP';
/** A refused cell costs a whole round this long: upstream's probes give a connection 1 s too; a slower one only costs a retry. */
const FIRST_TIMEOUT_MS = 1000;
const RETRY_TIMEOUT_MS = 2000;
/** Agents start slowly on a loaded 2-core machine (lab up's default is 30 s). */
const AGENTS_READY_MS = 90_000;
/** How long a matrix may take to settle after a policy change. */
const SETTLE_MS = 12_000;
/** Between rounds that ended early: a policy on its way is not probed in a tight loop. */
const ROUND_PAUSE_MS = 100;

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

/** Labels to add to a namespace ('y') or pod ('x/b'), as upstream's AddNamespaceLabel / AddPodLabels; removed again after the case. */
interface Relabel {
  target: string;
  labels: Record<string, string>;
}

interface Step {
  /** Policies to apply (created or replaced) before the checks. */
  policies: (c: Cluster) => string;
  /** Label changes made after the policies, before the checks. */
  relabel?: Relabel;
  /** Delete every policy the case has applied before the checks (upstream's cleanNetworkPolicies). */
  deletePolicies?: boolean;
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

/** A step that changes labels with the case's policies in force. */
const relabel = (target: string, labels: Record<string, string>, ...checks: Check[]): Step => ({ ...step('', ...checks), relabel: { target, labels } });
/** A step that deletes the case's policies. */
const deleteAll = (...checks: Check[]): Step => ({ ...step('', ...checks), deletePolicies: true });

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

/** Selectors as YAML: a namespace by its name label, a pod by its pod label. */
const nsNamed = (ns: string): string => `{matchLabels: {kubernetes.io/metadata.name: ${ns}}}`;
const podNamed = (pod: string): string => `{matchLabels: {pod: ${pod}}}`;

/**
 * Upstream's cases in its order. Upstream now starts only the pods a case
 * needs; here all nine run, so a truth table names every pod its policy
 * affects (e.g. z/a as well as y/a). Cases upstream runs once per protocol
 * with the same policy are one case probing both protocols in one round.
 */
const STANDARD_CASES: Case[] = [
  {
    name: "should support a 'default-deny-ingress' policy (TCP and UDP)",
    steps: [step(knp('deny-ingress', 'x', `  podSelector: {}\n  policyTypes: [Ingress]`), tcp(80, all().expectPeer({}, { ns: 'x' }, false)), udp(80, all().expectPeer({}, { ns: 'x' }, false)))],
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
        knp('x-a-allows-x-b', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{podSelector: ${podNamed('b')}}]`),
        tcp(80, all().expectAllIngress('x/a', false).expect('x/b', 'x/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce policy to allow ingress traffic for a target',
    steps: [
      step(
        knp('deny-all', 'x', `  podSelector: {}\n  policyTypes: [Ingress]`) +
          knp('allow-all-to-a', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{podSelector: {}, namespaceSelector: {}}]`),
        tcp(80, all().expectPeer({}, { ns: 'x' }, false).expectAllIngress('x/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce policy to allow ingress traffic from pods in all namespaces',
    steps: [step(knp('allow-from-another-ns', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {}}}]`), tcp(80, all()))],
  },
  {
    // Upstream's "…using default ns label" case has this very policy (namespaceLabelKey is v1.LabelMetadataName).
    name: 'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector (and: based on NamespaceSelector with MatchLabels using default ns label)',
    steps: [
      step(
        knp('allow-client-a-via-ns-selector', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('y')}}]`),
        tcp(80, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
      ),
    ],
  },
  {
    name: 'should enforce policy based on PodSelector with MatchExpressions',
    steps: [
      step(
        knp('x-a-allows-x-b', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}}]`),
        tcp(80, all().expectAllIngress('x/a', false).expect('x/b', 'x/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce policy based on NamespaceSelector with MatchExpressions',
    steps: [
      step(
        knp(
          'allow-ns-y-match-selector',
          'x',
          `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [y]}]}}]`,
        ),
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
          `  podSelector: ${podNamed('a')}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]}\n    - podSelector: ${podNamed('b')}`,
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
          `  podSelector: ${podNamed('a')}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]}\n      podSelector: ${podNamed('b')}`,
        ),
        tcp(80, all().expectAllIngress('x/a', false).expect('y/b', 'x/a', true).expect('z/b', 'x/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce policy based on Multiple PodSelectors and NamespaceSelectors',
    steps: [
      step(
        knp(
          'allow-ns-y-z-pod-b-c',
          'x',
          `  podSelector: ${podNamed('a')}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]}\n      podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}`,
        ),
        // z/a is a pod upstream no longer starts for this case: pod a in an allowed namespace, refused as y/a is.
        tcp(80, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expect('y/a', 'x/a', false).expect('z/a', 'x/a', false)),
      ),
    ],
  },
  {
    name: 'should enforce policy based on any PodSelectors',
    steps: [
      step(
        knp('allow-ns-x-pod-b-c', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{podSelector: ${podNamed('b')}}, {podSelector: ${podNamed('c')}}]`),
        tcp(80, all().expectAllIngress('x/a', false).expect('x/b', 'x/a', true).expect('x/c', 'x/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector (TCP and UDP)',
    steps: [
      step(
        knp('allow-ns-y-pod-a-via-namespace-pod-selector', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('y')}, podSelector: ${podNamed('a')}}]`),
        tcp(80, all().expectAllIngress('x/a', false).expect('y/a', 'x/a', true)),
        udp(80, all().expectAllIngress('x/a', false).expect('y/a', 'x/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce policy based on Ports',
    steps: [
      step(
        knp('allow-client-a-via-ns-selector', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('y')}}]\n    ports: [{port: 81, protocol: TCP}]`),
        tcp(81, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
      ),
    ],
  },
  {
    name: 'should enforce multiple, stacked policies with overlapping podSelectors (ports 80 and 81)',
    steps: [
      step(
        knp('allow-client-a-via-ns-selector', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('y')}}]\n    ports: [{port: 81, protocol: TCP}]`),
        tcp(81, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
        tcp(80, all().expectAllIngress('x/a', false)),
      ),
      step(
        knp('allow-client-a-via-ns-selector-80', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('y')}}]\n    ports: [{port: 80, protocol: TCP}]`),
        tcp(80, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
      ),
    ],
  },
  {
    name: 'should support allow-all policy',
    steps: [step(knp('allow-all', 'x', `  podSelector: {}\n  ingress:\n  - {}`), tcp(80, all()), tcp(81, all()))],
  },
  {
    name: 'should allow ingress access on one named port',
    steps: [step(knp('allow-all', 'x', `  podSelector: {}\n  ingress:\n  - ports: [{port: serve-81-tcp}]`), tcp(81, all()), tcp(80, all().expectPeer({}, { ns: 'x' }, false)))],
  },
  {
    name: 'should allow ingress access from namespace on one named port',
    steps: [
      step(
        knp('allow-client-a-via-ns-selector-80', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('y')}}]\n    ports: [{port: serve-80-tcp, protocol: TCP}]`),
        tcp(80, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
        tcp(81, all().expectAllIngress('x/a', false)),
      ),
    ],
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
    name: 'should enforce updated policy',
    steps: [
      step(knp('allow-all-mutate-to-deny-all', 'x', `  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n  - {}`), tcp(81, all())),
      // The same policy, its one rule removed.
      step(knp('allow-all-mutate-to-deny-all', 'x', `  podSelector: {}\n  policyTypes: [Ingress]\n  ingress: []`), tcp(81, all().expectPeer({}, { ns: 'x' }, false))),
    ],
  },
  {
    name: 'should allow ingress access from updated namespace',
    steps: [
      step(knp('allow-client-a-via-ns-selector', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns2: updated}}}]`), tcp(80, all().expectAllIngress('x/a', false))),
      relabel('y', { ns2: 'updated' }, tcp(80, all().expectAllIngress('x/a', false).expectPeer({ ns: 'y' }, {}, true))),
    ],
  },
  {
    name: 'should allow ingress access from updated pod',
    steps: [
      step(knp('allow-client-a-via-pod-selector', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b, pod2: updated}}}]`), tcp(80, all().expectAllIngress('x/a', false))),
      relabel('x/b', { pod2: 'updated' }, tcp(80, all().expectAllIngress('x/a', false).expect('x/b', 'x/a', true))),
    ],
  },
  {
    name: 'should deny ingress from pods on other namespaces',
    steps: [
      step(
        knp('deny-empty-policy', 'x', `  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchLabels: {}}}]`),
        tcp(80, all().expectPeer({ ns: 'y' }, { ns: 'x' }, false).expectPeer({ ns: 'z' }, { ns: 'x' }, false)),
      ),
    ],
  },
  {
    name: 'should deny ingress access to updated pod',
    steps: [
      step(knp('deny-ingress-via-label-selector', 'x', `  podSelector: {matchLabels: {target: isolated}}\n  policyTypes: [Ingress]`), tcp(80, all())),
      relabel('x/a', { target: 'isolated' }, tcp(80, all().expectAllIngress('x/a', false))),
    ],
  },
  {
    name: 'should deny egress from pods based on PodSelector',
    steps: [step(knp('deny-egress-pod-a', 'x', `  podSelector: ${podNamed('a')}\n  policyTypes: [Egress]`), tcp(80, all().expectAllEgress('x/a', false)))],
  },
  {
    name: 'should deny egress from all pods in a namespace',
    steps: [step(knp('deny-egress-ns-x', 'x', `  podSelector: {}\n  policyTypes: [Egress]`), tcp(80, all().expectPeer({ ns: 'x' }, {}, false)))],
  },
  {
    name: 'should work with Ingress, Egress specified together',
    steps: [
      step(
        knp(
          'allow-client-a-via-pod-selector',
          'x',
          `  podSelector: ${podNamed('a')}\n  policyTypes: [Egress, Ingress]\n  ingress:\n  - from: [{podSelector: ${podNamed('b')}}]\n  egress:\n  - ports: [{port: 80}]`,
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
        knp('allow-to-ns-y-pod-a', 'x', `  podSelector: ${podNamed('a')}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: ${nsNamed('y')}, podSelector: ${podNamed('a')}}]`) +
          knp('allow-from-xa-on-ya-match-selector', 'y', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('x')}, podSelector: ${podNamed('a')}}]`) +
          knp('allow-from-xa-on-yb-match-selector', 'y', `  podSelector: ${podNamed('b')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('x')}, podSelector: ${podNamed('a')}}]`),
        tcp(80, all().expectPeer(sel('x/a'), {}, false).expectPeer({}, sel('y/a'), false).expect('x/a', 'y/a', true).expectPeer({}, sel('y/b'), false)),
      ),
    ],
  },
  {
    name: 'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector',
    steps: [
      step(
        knp('allow-to-ns-y-pod-a', 'x', `  podSelector: ${podNamed('a')}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: ${nsNamed('y')}, podSelector: ${podNamed('a')}}]`),
        tcp(80, all().expectAllEgress('x/a', false).expect('x/a', 'y/a', true)),
      ),
    ],
  },
  {
    name: 'should enforce ingress policy allowing any port traffic to a server on a specific protocol (TCP and UDP)',
    steps: [step(knp('allow-ingress-by-proto', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - ports: [{protocol: TCP}]`), tcp(80, all()), udp(80, all().expectAllIngress('x/a', false)))],
  },
  {
    name: 'should enforce multiple ingress policies with ingress allow-all policy taking precedence',
    steps: [
      step(knp('allow-ingress-port-80', 'x', `  podSelector: {}\n  ingress:\n  - ports: [{port: 80}]`), tcp(81, all().expectPeer({}, { ns: 'x' }, false))),
      step(knp('allow-ingress', 'x', `  podSelector: {}\n  ingress:\n  - {}`), tcp(81, all())),
    ],
  },
  {
    name: 'should enforce multiple egress policies with egress allow-all policy taking precedence',
    steps: [
      step(knp('allow-egress-port-80', 'x', `  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{port: 80}]`), tcp(81, all().expectPeer({ ns: 'x' }, {}, false))),
      step(knp('allow-egress', 'x', `  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - {}`), tcp(81, all())),
    ],
  },
  {
    name: 'should stop enforcing policies after they are deleted',
    steps: [
      step(knp('deny-all', 'x', `  podSelector: {}\n  policyTypes: [Ingress, Egress]`), tcp(80, all().expectPeer({ ns: 'x' }, {}, false).expectPeer({}, { ns: 'x' }, false))),
      // UDP too: a conntrack entry or set element of the deleted policy must not linger on either protocol.
      deleteAll(tcp(80, all()), udp(80, all())),
    ],
  },
  {
    name: 'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector',
    steps: [
      step(knp('allow-egress-for-target', 'x', `  podSelector: ${podNamed('a')}\n  policyTypes: [Egress]\n  egress:\n  - {}`), tcp(80, all())),
      step(knp('deny-ingress-via-label-selector', 'x', `  podSelector: ${podNamed('a')}\n  policyTypes: [Ingress]`), tcp(80, all().expectAllIngress('x/a', false))),
    ],
  },
  {
    name: "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP'",
    steps: [
      step(
        knp('deny-ingress', 'x', `  podSelector: {}\n  policyTypes: [Ingress]`) +
          knp('allow-only-sctp-ingress-on-port-81', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - ports: [{port: 81, protocol: SCTP}]`),
        tcp(81, all().expectPeer({}, { ns: 'x' }, false)),
      ),
    ],
  },
  {
    name: 'should properly isolate pods that are selected by a policy allowing SCTP',
    steps: [step(knp('allow-only-sctp-ingress-on-port-80', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - ports: [{port: 80, protocol: SCTP}]`), tcp(81, all().expectAllIngress('x/a', false)))],
  },
  {
    name: 'should not allow access by TCP when a policy specifies only UDP',
    steps: [step(knp('allow-only-udp-ingress-on-port-81', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - ports: [{port: 81, protocol: UDP}]`), tcp(81, all().expectAllIngress('x/a', false)))],
  },
  {
    name: 'should enforce policy based on NamespaceSelector with MatchExpressions using default ns label',
    steps: [
      step(
        knp(
          'allow-ns-y-match-selector-for-immutable-ns-label',
          'x',
          `  podSelector: ${podNamed('a')}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [y]}]}}]`,
        ),
        tcp(80, all().expectPeer(sel('x/a'), { ns: 'y' }, false)),
      ),
    ],
  },
  {
    name: 'UDP: should enforce policy based on Ports',
    steps: [
      step(
        knp('allow-ingress-on-port-81-ns-x', 'x', `  podSelector: ${podNamed('a')}\n  ingress:\n  - from: [{namespaceSelector: ${nsNamed('y')}}]\n    ports: [{port: 81, protocol: UDP}]`),
        udp(81, all().expectPeer({ ns: 'x' }, sel('x/a'), false).expectPeer({ ns: 'z' }, sel('x/a'), false)),
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

/**
 * One round: every source pod probes its cells at once; the pods run
 * concurrently. Given the expected answers, the round ends at the first cell
 * that contradicts them (a policy still on its way shows as a connection
 * that should have been refused): cells not yet answered are missing.
 */
async function probe(lab: TestLab, cluster: Cluster, cells: Cell[], timeoutMs: number, expected?: (cell: Cell) => boolean): Promise<Map<string, boolean | null>> {
  const out = new Map<string, boolean | null>();
  const sockets: Socket[] = [];
  let contradicted = (): void => undefined;
  const aborted = new Promise<void>((resolve) => (contradicted = resolve));
  const rounds = PODS.map(async (from) => {
    const mine = cells.filter((c) => c.from === from);
    if (mine.length === 0) return;
    const probes = mine.map((c) => ({ ip: cluster.serviceIp.get(c.to)!, port: c.port, protocol: c.protocol }));
    const expect = expected === undefined ? undefined : mine.map(expected);
    const results = await new Promise<(boolean | null)[]>((resolve, reject) => {
      const s = connect(control(lab, from));
      sockets.push(s);
      let buf = '';
      s.on('data', (d: Buffer) => (buf += d.toString()));
      s.on('end', () => {
        try {
          resolve((JSON.parse(buf) as { results: (boolean | null)[] }).results);
        } catch (err) {
          reject(new Error(`prober ${from}: ${String(err)}: ${buf}`));
        }
      });
      s.on('error', reject);
      // The prober answers and closes; closing our side first would close it before it answers.
      s.write(JSON.stringify({ timeoutMs, probes, expect }) + '\n');
    });
    mine.forEach((c, i) => out.set(cellKey(c), results[i] ?? null));
    if (expect !== undefined && results.some((r, i) => r !== expect[i])) contradicted();
  });
  await Promise.race([Promise.all(rounds), aborted]);
  for (const s of sockets) s.destroy();
  return out;
}

/** Upstream's truth table: observed 1/0 per cell, * where it differs from the expectation, . for loopback. */
function table(check: Check, observed: Map<string, boolean | null>, expected: (from: string, to: string) => boolean): string {
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
function traceVerdicts(objects: Iterable<KubeObject>, policies: Iterable<KubeObject>, ipBlockSelectsPods: boolean, checks: Check[]): Map<string, boolean> {
  const engine = new PolicyEngine({ ipBlockSelectsPods });
  engine.batch((e) => {
    for (const o of [...objects, ...policies]) e.upsert(o);
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
    const live = await api.read(ref(o));
    await api.replace({ ...body, metadata: { ...body.metadata, resourceVersion: live.metadata?.resourceVersion ?? '' } });
  }
}

const ref = (o: KubeObject): { apiVersion: string; kind: string; metadata: { name: string; namespace: string } } => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace ?? 'default' } });
const objectKey = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** A merge patch of a namespace's ('y') or pod's ('x/b') labels, null removing one; answers the object as the server now holds it. */
async function patchLabels(api: RawObjectApi, target: string, labels: Record<string, string | null>): Promise<KubeObject> {
  const [ns, pod] = target.split('/');
  const metadata = pod === undefined ? { name: ns!, labels } : { name: pod, namespace: ns!, labels };
  const patch = { apiVersion: 'v1', kind: pod === undefined ? 'Namespace' : 'Pod', metadata } as unknown as k8s.KubernetesObject;
  return (await api.patch(patch, undefined, undefined, undefined, undefined, k8s.PatchStrategy.MergePatch)) as unknown as KubeObject;
}

async function deletePolicies(api: RawObjectApi, applied: Map<string, KubeObject>): Promise<void> {
  for (const o of applied.values()) await api.delete(ref(o));
  applied.clear();
}

async function runCase(lab: TestLab, cluster: Cluster, c: Case, ipBlockSelectsPods: boolean): Promise<void> {
  const api = apiOf(lab);
  // What is in force: a policy of the same name replaces the earlier one (upstream's UpdatePolicy).
  const applied = new Map<string, KubeObject>();
  // Namespaces, pods and Services as the engine must see them: relabelled ones as the server answered the patch.
  const objects = new Map(cluster.objects.map((o) => [objectKey(o), o]));
  const relabelled: Relabel[] = [];
  try {
    for (const [i, s] of c.steps.entries()) {
      for (const o of objectsOf(s.policies(cluster))) {
        await applyPolicy(api, o);
        applied.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
      }
      if (s.relabel !== undefined) {
        relabelled.push(s.relabel);
        const o = await patchLabels(api, s.relabel.target, s.relabel.labels);
        objects.set(objectKey(o), o);
      }
      if (s.deletePolicies === true) await deletePolicies(api, applied);
      const checks = s.checks(cluster);
      const cells: Cell[] = checks.flatMap((k) => PODS.flatMap((from) => PODS.filter((to) => to !== from).map((to) => ({ from, to, port: k.port, protocol: k.protocol }))));
      const expected = (cell: Cell): boolean => checks.find((k) => k.port === cell.port && k.protocol === cell.protocol)!.truth.get(cell.from, cell.to);

      // The engine, as `policy trace`, must give the upstream answers too.
      const traced = traceVerdicts(objects.values(), applied.values(), ipBlockSelectsPods, checks);
      const traceWrong = cells.filter((cell) => traced.get(cellKey(cell)) !== expected(cell));
      assert.deepEqual(traceWrong.map(cellKey), [], `${c.name} (step ${i + 1}): policy trace disagrees with the upstream truth table`);

      // A round passes only whole: a cell right by chance while the policy was
      // still on its way (an allow the old state gave) must not stand alone.
      const deadline = Date.now() + SETTLE_MS;
      let observed = await probe(lab, cluster, cells, FIRST_TIMEOUT_MS, expected);
      let wrong = cells.filter((cell) => observed.get(cellKey(cell)) !== expected(cell));
      while (wrong.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, ROUND_PAUSE_MS));
        observed = await probe(lab, cluster, cells, RETRY_TIMEOUT_MS, expected);
        wrong = cells.filter((cell) => observed.get(cellKey(cell)) !== expected(cell));
      }
      if (wrong.length > 0) {
        // One whole round for the tables.
        observed = await probe(lab, cluster, cells, RETRY_TIMEOUT_MS);
        wrong = cells.filter((cell) => observed.get(cellKey(cell)) !== expected(cell));
      }
      if (wrong.length > 0) {
        const tables = checks.map((k) => table(k, observed, (f, t) => k.truth.get(f, t))).join('\n\n');
        assert.fail(`${c.name} (step ${i + 1}): ${wrong.length} cells not as expected\n${tables}`);
      }
    }
  } finally {
    await deletePolicies(api, applied);
    // Upstream's DeferCleanup: the labels a case added go (only added ones: no case changes a label's value).
    for (const r of relabelled) await patchLabels(api, r.target, Object.fromEntries(Object.keys(r.labels).map((k) => [k, null])));
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
