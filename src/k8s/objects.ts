/**
 * The Kubernetes-shaped objects Palisade reads, as they are after validation
 * (src/k8s/manifest). Field names and nesting follow the upstream APIs exactly
 * (core/v1, networking.k8s.io/v1, cilium.io/v2), so a manifest written for a
 * real cluster applies unchanged. Only the fields Palisade understands exist
 * here; the validator rejects every other field by name.
 */

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  ownerReferences?: unknown[];
  managedFields?: unknown[];
  generateName?: string;
}

// ---------------------------------------------------------------- selectors

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values?: string[];
}

/** metav1.LabelSelector: requirements AND; an empty selector selects everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

// ---------------------------------------------------------------- core/v1

export interface Namespace {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: ObjectMeta;
}

export type PortProtocolName = 'TCP' | 'UDP' | 'SCTP';

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: PortProtocolName;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: ContainerPort[];
  env?: { name: string; value?: string }[];
}

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    hostNetwork?: boolean;
    containers: Container[];
  };
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
    conditions?: unknown[];
    message?: string;
  };
}

export interface ServicePort {
  name?: string;
  protocol?: PortProtocolName;
  port: number;
  /** A number, or the name of a container port. */
  targetPort?: number | string;
}

export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: {
    type?: 'ClusterIP';
    selector?: Record<string, string>;
    ports?: ServicePort[];
    clusterIP?: string;
    clusterIPs?: string[];
    sessionAffinity?: 'None' | 'ClientIP';
  };
}

// ---------------------------------------------------------------- networking.k8s.io/v1

export interface IPBlock {
  cidr: string;
  except?: string[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  protocol?: PortProtocolName;
  /** A number or a named port; absent means every port. */
  port?: number | string;
  endPort?: number;
}

export interface NetworkPolicyIngressRule {
  from?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicy {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: ObjectMeta;
  spec: {
    podSelector: LabelSelector;
    policyTypes?: ('Ingress' | 'Egress')[];
    ingress?: NetworkPolicyIngressRule[];
    egress?: NetworkPolicyEgressRule[];
  };
}

// ---------------------------------------------------------------- cilium.io/v2

export type CiliumProtocol = 'TCP' | 'UDP' | 'SCTP' | 'ANY';

export interface CiliumPortProtocol {
  /** A port number ("80", "0" = all ports) or a named port ("http"), always a string upstream. */
  port: string;
  endPort?: number;
  protocol?: CiliumProtocol;
}

export interface HeaderMatch {
  name: string;
  value?: string;
  mismatch?: 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';
}

export interface PortRuleHTTP {
  method?: string;
  path?: string;
  host?: string;
  /** Each "Name" (must be present) or "Name: value" (exact value). */
  headers?: string[];
  headerMatches?: HeaderMatch[];
}

export interface FQDNSelector {
  matchName?: string;
  matchPattern?: string;
}

/** The dns rules of a toPorts entry: same fields as toFQDNs selectors. */
export type PortRuleDNS = FQDNSelector;

export interface L7Rules {
  http?: PortRuleHTTP[];
  dns?: PortRuleDNS[];
}

export interface PortRule {
  ports?: CiliumPortProtocol[];
  rules?: L7Rules;
}

/** toPorts of a deny rule: ports only — Cilium rejects L7 `rules` there (L7 cannot be denied). */
export interface PortDenyRule {
  ports?: CiliumPortProtocol[];
}

export interface CIDRRule {
  cidr: string;
  except?: string[];
}

export type Entity =
  | 'all'
  | 'world'
  | 'cluster'
  | 'host'
  | 'remote-node'
  | 'kube-apiserver'
  | 'ingress'
  | 'init'
  | 'health'
  | 'unmanaged'
  | 'none';

export interface ICMPField {
  type: number | string;
  family?: 'IPv4' | 'IPv6';
}

export interface ICMPRule {
  fields: ICMPField[];
}

export interface IngressRule {
  fromEndpoints?: LabelSelector[];
  fromCIDR?: string[];
  fromCIDRSet?: CIDRRule[];
  fromEntities?: Entity[];
  toPorts?: PortRule[];
  icmps?: ICMPRule[];
}

/** Deny rules take no L7 rules (Cilium rejects `rules` under ingressDeny/egressDeny). */
export interface IngressDenyRule {
  fromEndpoints?: LabelSelector[];
  fromCIDR?: string[];
  fromCIDRSet?: CIDRRule[];
  fromEntities?: Entity[];
  toPorts?: PortDenyRule[];
  icmps?: ICMPRule[];
}

export interface EgressRule {
  toEndpoints?: LabelSelector[];
  toCIDR?: string[];
  toCIDRSet?: CIDRRule[];
  toEntities?: Entity[];
  toFQDNs?: FQDNSelector[];
  toPorts?: PortRule[];
  icmps?: ICMPRule[];
}

export interface EgressDenyRule {
  toEndpoints?: LabelSelector[];
  toCIDR?: string[];
  toCIDRSet?: CIDRRule[];
  toEntities?: Entity[];
  toPorts?: PortDenyRule[];
  icmps?: ICMPRule[];
}

export interface CiliumRule {
  endpointSelector?: LabelSelector;
  /** CiliumClusterwideNetworkPolicy only: selects nodes (host firewall) instead of endpoints. */
  nodeSelector?: LabelSelector;
  ingress?: IngressRule[];
  ingressDeny?: IngressDenyRule[];
  egress?: EgressRule[];
  egressDeny?: EgressDenyRule[];
  enableDefaultDeny?: { ingress?: boolean; egress?: boolean };
  description?: string;
}

export interface CiliumNetworkPolicy {
  apiVersion: 'cilium.io/v2';
  kind: 'CiliumNetworkPolicy';
  metadata: ObjectMeta;
  spec?: CiliumRule;
  specs?: CiliumRule[];
}

export interface CiliumClusterwideNetworkPolicy {
  apiVersion: 'cilium.io/v2';
  kind: 'CiliumClusterwideNetworkPolicy';
  metadata: ObjectMeta;
  spec?: CiliumRule;
  specs?: CiliumRule[];
}

export type PolicyObject = CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy | NetworkPolicy;

// ---------------------------------------------------------------- lab.palisade.dev/v1

/** A host outside the cluster, made by the lab: its names resolve through the lab's upstream DNS. */
export interface ExternalHost {
  apiVersion: 'lab.palisade.dev/v1';
  kind: 'ExternalHost';
  metadata: ObjectMeta;
  spec: {
    /** DNS names the host answers to. */
    names: string[];
    /** TCP ports it serves; 443 speaks TLS. Default [80, 443]. */
    ports?: number[];
    /** IPv4 addresses it answers on (e.g. 1.1.1.1); default: one the lab picks in 198.18.0.0/16. */
    addresses?: string[];
  };
  status?: { ip?: string };
}
export type PolicyKind = PolicyObject['kind'];

/** Every object kind a manifest may hold (List documents are unpacked into these). */
export type KubeObject = Namespace | Pod | Service | PolicyObject | ExternalHost;
