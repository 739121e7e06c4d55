/**
 * CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy → PolicyRule.
 *
 * Rules implemented here, as Cilium defines them:
 * - "A CNP's selectors are limited to its own namespace unless they name
 *   k8s:io.kubernetes.pod.namespace" (pkg/k8s/apis/cilium.io/utils): the
 *   namespace is added to endpointSelector and to every from/toEndpoints
 *   selector that names neither the namespace label, nor namespace labels
 *   (io.cilium.k8s.namespace.labels.*), nor a reserved label. In a
 *   clusterwide policy such a selector instead requires that a namespace
 *   label exists, so `{}` means "every pod", never the world or the host.
 * - A rule with an ingress (egress) section — allow or deny — puts what it
 *   selects into default-deny for that direction, unless enableDefaultDeny says
 *   otherwise.
 * - `{}` (no L3 and no L4) allows nothing; an L4 rule with no L3 peer applies
 *   to any peer.
 * - toFQDNs carries no other L3 field (the validator enforces it).
 */
import type {
  CiliumClusterwideNetworkPolicy,
  CiliumNetworkPolicy,
  CiliumRule,
  CIDRRule,
  Entity,
  FQDNSelector,
  ICMPRule,
  LabelSelector,
  PortRule,
} from '../k8s/index.ts';
import { Selector } from '../labels/index.ts';
import { compileFqdnSelector } from '../fqdn/index.ts';
import { LABEL_NAMESPACE_LABELS_PREFIX, LABEL_POD_NAMESPACE } from '../identity/index.ts';
import type { CidrPeer, DirectionRules, L7Rules, PeerSpec, PolicyRule, PortSpec, RuleEntry, RuleOrigin } from './model.ts';
import { cidrPeer } from './cidr.ts';
import { entityPeers } from './entities.ts';
import { ciliumPortSpec, icmpPortSpec } from './ports.ts';
import { compileHttpRule } from './http-rules.ts';

export function namespaceSelector(ns: string): Selector {
  return new Selector([{ key: `k8s:${LABEL_POD_NAMESPACE}`, operator: 'In', values: [ns] }]);
}

/** Common shape of the four rule kinds (ingress, ingressDeny, egress, egressDeny). */
interface AnyCiliumPeerRule {
  fromEndpoints?: LabelSelector[];
  toEndpoints?: LabelSelector[];
  fromCIDR?: string[];
  toCIDR?: string[];
  fromCIDRSet?: CIDRRule[];
  toCIDRSet?: CIDRRule[];
  fromEntities?: Entity[];
  toEntities?: Entity[];
  toFQDNs?: FQDNSelector[];
  toPorts?: PortRule[];
  icmps?: ICMPRule[];
}

export function translateCiliumPolicy(
  policy: CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy,
  cluster: string,
): PolicyRule[] {
  const namespace = policy.kind === 'CiliumNetworkPolicy' ? (policy.metadata.namespace ?? 'default') : undefined;
  const rules: [string, CiliumRule][] = [];
  if (policy.spec) rules.push(['spec', policy.spec]);
  (policy.specs ?? []).forEach((r, i) => rules.push([`specs[${i}]`, r]));
  return rules.map(([path, rule]) => {
    const origin: RuleOrigin = {
      kind: policy.kind,
      name: policy.metadata.name,
      ...(namespace !== undefined ? { namespace } : {}),
      path,
      ...(rule.description !== undefined ? { description: rule.description } : {}),
    };
    return translateRule(rule, origin, namespace, cluster);
  });
}

function translateRule(rule: CiliumRule, origin: RuleOrigin, namespace: string | undefined, cluster: string): PolicyRule {
  let subject: Selector;
  if (rule.nodeSelector !== undefined) {
    // Host policies select the node's host endpoint. Node labels are not part
    // of Palisade's identities yet, so only the host identity itself is selected.
    subject = Selector.fromLabelSelector(rule.nodeSelector, 'k8s').and(
      new Selector([{ key: 'reserved:host', operator: 'Exists', values: [] }]),
    );
  } else {
    subject = Selector.fromLabelSelector(rule.endpointSelector);
    if (namespace !== undefined) subject = subject.and(namespaceSelector(namespace));
  }
  const scope = (s: LabelSelector): Selector => scopedPeerSelector(s, namespace);
  const out: { -readonly [K in keyof PolicyRule]: PolicyRule[K] } = { origin, subject };
  const ingress = direction(origin, 'ingress', rule.ingress, rule.ingressDeny, rule.enableDefaultDeny?.ingress, scope, cluster);
  const egress = direction(origin, 'egress', rule.egress, rule.egressDeny, rule.enableDefaultDeny?.egress, scope, cluster);
  if (ingress) out.ingress = ingress;
  if (egress) out.egress = egress;
  return out;
}

function scopedPeerSelector(s: LabelSelector, namespace: string | undefined): Selector {
  const sel = Selector.fromLabelSelector(s);
  if (sel.mentionsSource('reserved') || sel.mentionsKey(LABEL_POD_NAMESPACE)) return sel;
  if (namespace === undefined) {
    return sel.and(new Selector([{ key: `k8s:${LABEL_POD_NAMESPACE}`, operator: 'Exists', values: [] }]));
  }
  if (sel.mentionsKeyPrefix(LABEL_NAMESPACE_LABELS_PREFIX)) return sel;
  return sel.and(namespaceSelector(namespace));
}

function direction(
  origin: RuleOrigin,
  dir: 'ingress' | 'egress',
  allow: AnyCiliumPeerRule[] | undefined,
  deny: AnyCiliumPeerRule[] | undefined,
  defaultDeny: boolean | undefined,
  scope: (s: LabelSelector) => Selector,
  cluster: string,
): DirectionRules | undefined {
  const hasRules = (allow?.length ?? 0) > 0 || (deny?.length ?? 0) > 0;
  if (!hasRules && defaultDeny !== true) return undefined;
  const entries: RuleEntry[] = [];
  allow?.forEach((r, i) => entries.push(...peerRuleEntries(r, { ...origin, path: `${origin.path}.${dir}[${i}]` }, false, scope, cluster)));
  deny?.forEach((r, i) => entries.push(...peerRuleEntries(r, { ...origin, path: `${origin.path}.${dir}Deny[${i}]` }, true, scope, cluster)));
  return { defaultDeny: defaultDeny ?? true, entries };
}

function peerRuleEntries(
  r: AnyCiliumPeerRule,
  origin: RuleOrigin,
  deny: boolean,
  scope: (s: LabelSelector) => Selector,
  cluster: string,
): RuleEntry[] {
  const endpoints = r.fromEndpoints ?? r.toEndpoints ?? [];
  const cidrs = r.fromCIDR ?? r.toCIDR ?? [];
  const cidrSets = r.fromCIDRSet ?? r.toCIDRSet ?? [];
  const entities = r.fromEntities ?? r.toEntities ?? [];
  const fqdns = r.toFQDNs ?? [];
  const hasL3 = endpoints.length + cidrs.length + cidrSets.length + entities.length + fqdns.length > 0;
  const ent = entityPeers(entities, cluster);
  const cidrPeers: CidrPeer[] = [...cidrs.map((c) => cidrPeer(c)), ...cidrSets.map((c) => cidrPeer(c.cidr, c.except))];
  const peers: PeerSpec = {
    any: !hasL3 || ent.any,
    selectors: [...endpoints.map(scope), ...ent.selectors],
    cidrs: cidrPeers,
    fqdns: fqdns.map(compileFqdnSelector),
  };
  const l3Text = JSON.stringify({ endpoints, cidrs, cidrSets, entities, fqdns });
  const entry = (path: string, ports: PortSpec[] | null, l7: L7Rules | null, l4Text: string): RuleEntry => ({
    origin: { ...origin, path },
    deny,
    peers,
    ports,
    l7,
    fingerprint: `${origin.kind}|${origin.namespace ?? ''}|${origin.name}|${path}|${deny}|${l3Text}|${l4Text}`,
  });
  const out: RuleEntry[] = [];
  r.toPorts?.forEach((pr, i) => {
    const ports = pr.ports && pr.ports.length > 0 ? pr.ports.map(ciliumPortSpec) : null;
    out.push(entry(`${origin.path}.toPorts[${i}]`, ports, l7Rules(pr), JSON.stringify(pr)));
  });
  if (r.icmps && r.icmps.length > 0) {
    const ports = r.icmps.flatMap((ic) => ic.fields.map(icmpPortSpec));
    out.push(entry(`${origin.path}.icmps`, ports, null, JSON.stringify(r.icmps)));
  }
  // `{}` selects no peer and no port: it allows (or denies) nothing.
  if (out.length === 0 && hasL3) out.push(entry(origin.path, null, null, ''));
  return out;
}

function l7Rules(pr: PortRule): L7Rules | null {
  if (pr.rules?.http !== undefined) {
    // An empty list still sends the port through the proxy, with every request allowed.
    const http = pr.rules.http.length > 0 ? pr.rules.http : [{}];
    return { protocol: 'http', http: http.map(compileHttpRule) };
  }
  if (pr.rules?.dns !== undefined) return { protocol: 'dns', dns: pr.rules.dns.map(compileFqdnSelector) };
  return null;
}
