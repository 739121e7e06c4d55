/**
 * The datapath interface: what the agent asks of the kernel, whatever the
 * implementation (legacy: routing + nftables; eBPF: tc programs + maps).
 *
 *   agent ──► setupNode(node, peers)     forwarding, routes to other nodes, masquerade
 *         ──► apply(state)               policy for every local endpoint, atomically
 *         ──► readEvents(onEvent, onLost) each decision as one typed DatapathEvent
 *         ──► dropCounters() / status()  what it dropped and what it holds
 *         ──► readTraffic()              what it forwarded, per address pair
 *
 * A datapath reads the policy engine's immutable snapshot and never
 * re-implements policy semantics: it only turns compiled policy into kernel
 * state.
 */
import type { NameMatcher } from '../fqdn/index.ts';
import type { PolicySnapshot } from '../policy/index.ts';
import type { DropReasonName } from './constants.ts';

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

/**
 * What the datapath forwarded from one address to another, cumulative since
 * the pair was first seen (it survives agent restarts with the rest of the
 * datapath's kernel state). Each packet is counted once in the cluster: by
 * the node of the pod that sent it, or, when its source is no pod (world, a
 * node), by the node of the pod it was delivered to; so summing every
 * node's counters double-counts nothing. Addresses are the real ends: a
 * connection to a ClusterIP counts between the client and the backend it was
 * translated to, both ways. Bytes are IP bytes (from the IP header on); a
 * GSO batch is one packet.
 *
 * Bounded per node (16,384 pairs): eBPF lets the least recently updated
 * pairs go, legacy pairs idle for 10 minutes; a pair that comes back starts
 * again from zero.
 */
export interface TrafficCounter {
  source: string;
  destination: string;
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

/** What an allow entry matched on (the precedence of src/policy/compiled.ts); `unknown` when the datapath cannot tell (legacy). */
export type PolicyMatchKind = 'none' | 'l3-only' | 'l3-l4' | 'l4-only' | 'all' | 'l7' | 'unknown';

/**
 * One decision of the datapath, as the kernel reported it: the one event
 * type both datapaths emit, so the flow layer (src/agent/flow-events.ts
 * `flowFromEvent`) builds Hubble records from it alone.
 *
 *   legacy: nft `log group 1 prefix …` ─► NFLOG ─► legacy/events.ts ─┐
 *   eBPF:   bpf_ringbuf_submit(struct pl_event) ─► ebpf/events.ts ───┴─► DatapathEvent ─► readEvents' onEvent
 *
 * Example (an eBPF default-deny drop of a pod's SYN):
 *
 *   { type: 'drop', verdict: 'dropped', reason: 133, reasonName: 'POLICY_DENIED',
 *     timestamp: { seconds: 1796000000, nanos: 123456789 }, timeFromKernel: true,
 *     direction: 'ingress', endpoint: 'default/b', sourceIdentity: 40211, destinationIdentity: 13007,
 *     policy: { decision: 'default-deny', match: 'none' },
 *     tuple: { protocol: 'TCP', source: '10.244.1.5', destination: '10.244.1.7',
 *              sourcePort: 40112, destinationPort: 80, tcpFlags: 0x02 },
 *     length: 60, ifindex: 7 }
 *
 * Plain data (JSON-safe: no bigint), so test kits can carry it between processes.
 */
export interface DatapathEvent {
  /**
   * `drop`: the packet was dropped (by policy or otherwise, see `reason`);
   * `policy-verdict`: a new connection allowed or steered to a proxy by policy;
   * `trace`: a new connection forwarded (legacy only: its `f` log), no policy named.
   */
  type: 'drop' | 'policy-verdict' | 'trace';
  /** What happened to the packet: `redirected` is handed to the node's L7 proxy, which reports each request. */
  verdict: 'forwarded' | 'redirected' | 'dropped';
  /** Cilium's drop reason code (bpf/palisade.h DROP_*); 0 unless `type` is `drop`. */
  reason: number;
  /** Hubble's name of `reason` (constants.ts DROP_REASONS); absent when `reason` is 0. */
  reasonName?: DropReasonName;
  /**
   * Unix time of the decision as Hubble's Timestamp. From the kernel's stamp
   * when `timeFromKernel` (eBPF: bpf_ktime_get_ns at the decision, shifted to
   * Unix time; legacy: the packet's NFULA_TIMESTAMP); otherwise the reader's
   * clock when it read the event (NFLOG carries a timestamp only when the
   * kernel stamped the skb on receipt, which pod traffic crossing veths
   * usually is not).
   */
  timestamp: { seconds: number; nanos: number };
  timeFromKernel: boolean;
  /** The direction of the endpoint's policy that decided; absent for a trace. */
  direction?: 'ingress' | 'egress';
  /**
   * The pod (`namespace/name`) the decision was taken for: the sender on
   * egress, the receiver on ingress, whatever the addresses claim (a spoofed
   * source names another pod). Absent when the datapath cannot name it.
   */
  endpoint?: string;
  /** Security identities as the datapath saw them; absent when it does not know (legacy). */
  sourceIdentity?: number;
  destinationIdentity?: number;
  /** The policy decision behind a policy-verdict, or behind a drop by policy (reason 133 or 181). */
  policy?: {
    decision: 'allowed' | 'not-enforced' | 'redirected' | 'default-deny' | 'deny-rule';
    match: PolicyMatchKind;
  };
  tuple: {
    /** Protocol name when known, else the IP protocol number. */
    protocol: 'TCP' | 'UDP' | 'ICMP' | 'SCTP' | 'ICMPv6' | number;
    source: string;
    destination: string;
    /** TCP, UDP and SCTP; 0 for other protocols. */
    sourcePort: number;
    destinationPort: number;
    /** ICMP only. */
    icmpType?: number;
    icmpCode?: number;
    /** TCP only: the header's flag byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80). */
    tcpFlags?: number;
  };
  /** Bytes of the packet from its IP header (the IP total length). */
  length: number;
  /** The interface the decision was taken on, when known. */
  ifindex?: number;
}

/** A running event reader: `close()` stops reading at once and is idempotent. */
export interface DatapathEventReader {
  close(): void;
}

export interface Datapath {
  readonly mode: DatapathMode;
  setupNode(node: NodeNetwork, peers: readonly PeerNode[]): Promise<void>;
  apply(state: DatapathState): Promise<ApplyResult>;
  /**
   * Reads the datapath's decisions from the kernel (call after setupNode).
   * `onEvent` runs synchronously on the event loop for each event and must
   * not call back into this datapath (eBPF: it runs inside the ring buffer
   * read). `onLost(n)` reports events the kernel could not hand over (reader
   * too slow, buffer full) as soon as they are known: loss is counted, never
   * silent. One reader per datapath at a time (legacy: per network
   * namespace, the NFLOG group binds once); rejects when the kernel side
   * cannot be opened.
   */
  readEvents(onEvent: (e: DatapathEvent) => void, onLost: (events: number) => void): Promise<DatapathEventReader>;
  dropCounters(): Promise<DropCounter[]>;
  /** Forwarded packets and bytes per IPv4 address pair (see TrafficCounter); empty before setupNode. */
  readTraffic(): Promise<TrafficCounter[]>;
  status(): DatapathStatus;
}
