/**
 * Kubernetes NetworkPolicy → PolicyRule, with the upstream semantics
 * (networking.k8s.io/v1 API reference):
 * - podSelector selects pods in the policy's namespace; `{}` selects all of them.
 * - policyTypes absent: ["Ingress"], plus "Egress" when spec.egress is present.
 *   A listed type isolates the pods in that direction even with no rules.
 * - Rules OR. A rule with `from`/`to` empty or absent matches every peer; with
 *   `ports` empty or absent, every port.
 * - Peers OR. podSelector alone: pods in the policy's namespace;
 *   namespaceSelector alone: all pods of matching namespaces; both in one peer:
 *   pods matching podSelector in namespaces matching namespaceSelector (AND).
 * - ipBlock: CIDR with except, matched against the peer's address after
 *   Service translation (the backend pod, not the ClusterIP). With
 *   `ipBlockSelectsPods` (the default) it selects pods whose address lies in
 *   the block too, as upstream Kubernetes and its e2e suite expect ("IPBlock
 *   describes a particular CIDR ... that is allowed to the pods matched by a
 *   NetworkPolicySpec's podSelector"; Calico does the same). Without it,
 *   Cilium's meaning: addresses outside the cluster only ("CIDR rules do not
 *   apply to traffic where both sides of the connection are managed by
 *   Cilium", cilium#9209). Node addresses are never selected either way.
 * - Port protocol defaults to TCP; a port may be named; endPort makes a range.
 */
import type { LabelSelector, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort } from '../k8s/index.ts';
import { Selector } from '../labels/index.ts';
import { LABEL_NAMESPACE_LABELS_PREFIX, LABEL_POD_NAMESPACE } from '../identity/index.ts';
import type { CidrPeer, DirectionRules, PeerSpec, PolicyRule, RuleEntry, RuleOrigin } from './model.ts';
import { cidrPeer } from './cidr.ts';
import { k8sPortSpec } from './ports.ts';
import { namespaceSelector } from './translate-cilium.ts';

/** A namespaceSelector becomes a selector over the `io.cilium.k8s.namespace.labels.*` identity labels. */
function namespaceLabelSelector(s: LabelSelector): Selector {
  const reqs = [
    ...Object.entries(s.matchLabels ?? {}).map(([k, v]) => ({
      key: `k8s:${LABEL_NAMESPACE_LABELS_PREFIX}${k}`,
      operator: 'In' as const,
      values: [v],
    })),
    ...(s.matchExpressions ?? []).map((e) => ({
      key: `k8s:${LABEL_NAMESPACE_LABELS_PREFIX}${e.key}`,
      operator: e.operator,
      values: e.values ?? [],
    })),
    // Only pods carry a namespace: reserved identities never match a namespaceSelector.
    { key: `k8s:${LABEL_POD_NAMESPACE}`, operator: 'Exists' as const, values: [] },
  ];
  return new Selector(reqs);
}

function peerSelector(p: NetworkPolicyPeer, namespace: string): Selector | null {
  if (p.podSelector === undefined && p.namespaceSelector === undefined) return null;
  const pods = Selector.fromLabelSelector(p.podSelector, 'k8s');
  if (p.namespaceSelector === undefined) return pods.and(namespaceSelector(namespace));
  return pods.and(namespaceLabelSelector(p.namespaceSelector));
}

export interface K8sTranslateOptions {
  /** ipBlock peers select pod addresses too (Kubernetes); false: outside the cluster only (Cilium). */
  readonly ipBlockSelectsPods: boolean;
}

export function translateNetworkPolicy(policy: NetworkPolicy, opts: K8sTranslateOptions = { ipBlockSelectsPods: true }): PolicyRule[] {
  const namespace = policy.metadata.namespace ?? 'default';
  const origin: RuleOrigin = { kind: 'NetworkPolicy', name: policy.metadata.name, namespace, path: 'spec' };
  const types = policy.spec.policyTypes ?? (policy.spec.egress !== undefined ? ['Ingress', 'Egress'] : ['Ingress']);
  const subject = Selector.fromLabelSelector(policy.spec.podSelector, 'k8s').and(namespaceSelector(namespace));
  const rule: { -readonly [K in keyof PolicyRule]: PolicyRule[K] } = { origin, subject };
  if (types.includes('Ingress')) {
    rule.ingress = direction(origin, 'ingress', (policy.spec.ingress ?? []).map((r) => [r.from, r.ports]), namespace, opts);
  }
  if (types.includes('Egress')) {
    rule.egress = direction(origin, 'egress', (policy.spec.egress ?? []).map((r) => [r.to, r.ports]), namespace, opts);
  }
  return [rule];
}

function direction(
  origin: RuleOrigin,
  dir: 'ingress' | 'egress',
  rules: [NetworkPolicyPeer[] | undefined, NetworkPolicyPort[] | undefined][],
  namespace: string,
  opts: K8sTranslateOptions,
): DirectionRules {
  const entries: RuleEntry[] = rules.map(([peerList, portList], i) => {
    const path = `spec.${dir}[${i}]`;
    const peersIn = peerList ?? [];
    const selectors: Selector[] = [];
    const cidrs: CidrPeer[] = [];
    for (const p of peersIn) {
      if (p.ipBlock) cidrs.push(cidrPeer(p.ipBlock.cidr, p.ipBlock.except, opts.ipBlockSelectsPods));
      const s = peerSelector(p, namespace);
      if (s) selectors.push(s);
    }
    const peers: PeerSpec = { any: peersIn.length === 0, selectors, cidrs, fqdns: [] };
    const ports = portList && portList.length > 0 ? portList.map(k8sPortSpec) : null;
    return {
      origin: { ...origin, path },
      deny: false,
      peers,
      ports,
      l7: null,
      fingerprint: `NetworkPolicy|${namespace}|${origin.name}|${path}|${JSON.stringify([peerList, portList])}`,
    };
  });
  return { defaultDeny: true, entries };
}
