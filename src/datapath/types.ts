/**
 * The datapath interface: what the agent asks of the kernel, whatever the
 * implementation (legacy: routing + nftables; eBPF: tc programs + maps).
 *
 *   agent ──► setupNode(node, peers)     forwarding, routes to other nodes, masquerade
 *         ──► apply(state)               policy for every local endpoint, atomically
 *         ──► dropCounters() / status()  what it dropped and what it holds
 *
 * A datapath reads the policy engine's immutable snapshot and never
 * re-implements policy semantics: it only turns compiled policy into kernel
 * state.
 */
import type { NameMatcher } from '../fqdn/index.ts';
import type { PolicySnapshot } from '../policy/index.ts';

export type DatapathMode = 'legacy' | 'ebpf';

/** The node this agent runs on. */
export interface NodeNetwork {
  name: string;
  /** Address on the underlay, and the interface that carries it. */
  underlayIp: string;
  underlayIf: string;
  underlayCIDR: string;
  podCIDR: string;
  /** All pods of the cluster (for masquerade decisions). */
  clusterPodCIDR: string;
}

/** Another node of the cluster: where its pods are routed. */
export interface PeerNode {
  name: string;
  ip: string;
  podCIDR: string;
}

/** A pod on this node, as the CNI plugin registered it. */
export interface LocalEndpoint {
  /** `namespace/name` */
  key: string;
  ip: string;
  hostIfname: string;
  containerId: string;
}

/** One port of a ClusterIP Service with the backends that serve it now. */
export interface ServiceEntry {
  /** `namespace/name:port/protocol`, for names and status. */
  key: string;
  clusterIP: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  backends: readonly { ip: string; port: number }[];
}

export interface DatapathState {
  snapshot: PolicySnapshot;
  services: readonly ServiceEntry[];
  /** The node's transparent HTTP proxy, when it runs: L7 ports are steered to it. */
  httpProxyPort?: number;
  /** The node's transparent DNS proxy (UDP and TCP), when it runs: DNS traffic that `rules.dns` covers is steered to it. */
  dnsProxyPort?: number;
  /**
   * The addresses a toFQDNs selector allows right now: what the DNS proxy
   * learned for the names it matches, until their TTLs run out. Absent, no
   * name is known and toFQDNs allows nothing. Key kernel objects (sets,
   * identities) by fqdnSelectorKey(selectors) so they stay stable as addresses come and go.
   */
  fqdnIps?(selectors: readonly NameMatcher[]): ReadonlySet<string>;
  localEndpoints: readonly LocalEndpoint[];
  /** Addresses of this node (host identity) and of the others (remote-node identity). */
  ownAddresses: readonly string[];
  peerAddresses: readonly string[];
}

export interface ApplyResult {
  /** Whether the whole state was rewritten (first apply, or recovery) rather than a diff. */
  full: boolean;
  endpointsProgrammed: number;
  ipcacheChanges: number;
  durationMs: number;
}

export interface DropCounter {
  endpoint: string;
  direction: 'ingress' | 'egress';
  /** Hubble's drop reason names. */
  reason: 'POLICY_DENIED' | 'POLICY_DENY';
  packets: number;
  bytes: number;
}

export interface EndpointDatapathStatus {
  endpoint: string;
  ip: string;
  ingressEnforced: boolean;
  egressEnforced: boolean;
  rules: number;
  /** What the datapath could not program and therefore drops (fail closed). */
  unenforceable: string[];
}

export interface DatapathStatus {
  mode: DatapathMode;
  endpoints: EndpointDatapathStatus[];
  ipcacheEntries: number;
  services: number;
  lastApply?: ApplyResult;
}

export interface Datapath {
  readonly mode: DatapathMode;
  setupNode(node: NodeNetwork, peers: readonly PeerNode[]): Promise<void>;
  apply(state: DatapathState): Promise<ApplyResult>;
  dropCounters(): Promise<DropCounter[]>;
  status(): DatapathStatus;
}
