/**
 * Numbers both datapaths, the kernel and the flow layer agree on: packet
 * marks, the NFLOG group, and Cilium's drop reasons. One module, imported by
 * legacy/ and ebpf/ alike, so neither reaches into the other.
 */

/**
 * The packet mark of traffic steered to the node's proxies (legacy: TPROXY;
 * eBPF: `bpf_sk_assign`). Identities (marks below 65536) never carry this bit.
 */
export const PROXY_MARK = 0x40000;

/** The routing table that turns marked (steered) packets into local deliveries. */
export const PROXY_ROUTE_TABLE = 100;
/** Priority of the policy-routing rule `fwmark PROXY_MARK lookup PROXY_ROUTE_TABLE`. */
export const PROXY_RULE_PREF = 100;

/**
 * The legacy datapath logs decisions to this NFLOG group (see
 * legacy/log-prefix.ts for what each prefix says).
 */
export const NFLOG_GROUP = 1;
/**
 * A datagram to this address is logged with prefix `p` and dropped: the
 * event reader sends one after it overran, so the probe's sequence number
 * reveals how many events the kernel dropped at the tail of a burst (gaps
 * are otherwise seen only when a later event arrives).
 */
export const NFLOG_PROBE = { ip: '127.0.0.127', port: 9 } as const;

/**
 * Cilium's drop reasons (pkg/monitor/api/drop.go) with their codes and the
 * text `hubble observe` prints: the code is what bpf/palisade.h's DROP_*
 * macros emit, the `sub_type` of a drop event and the deprecated
 * `drop_reason` field. The one table of drop reasons: the datapaths name
 * their drops from it, the flow layer prints and encodes from it
 * (drop-reasons.test.ts checks it against bpf/palisade.h and flow.proto).
 */
export const DROP_REASONS = {
  DROP_REASON_UNKNOWN: [0, 'Unknown drop reason'],
  INVALID_SOURCE_MAC: [130, 'Invalid source mac'],
  INVALID_DESTINATION_MAC: [131, 'Invalid destination mac'],
  INVALID_SOURCE_IP: [132, 'Invalid source ip'],
  POLICY_DENIED: [133, 'Policy denied'],
  INVALID_PACKET_DROPPED: [134, 'Invalid packet'],
  CT_TRUNCATED_OR_INVALID_HEADER: [135, 'CT: Truncated or invalid header'],
  CT_MISSING_TCP_ACK_FLAG: [136, 'CT: Missing TCP ACK flag'],
  CT_UNKNOWN_L4_PROTOCOL: [137, 'CT: Unknown L4 protocol'],
  UNSUPPORTED_L3_PROTOCOL: [139, 'Unsupported L3 protocol'],
  ERROR_WRITING_TO_PACKET: [141, 'Error writing to packet'],
  UNKNOWN_L4_PROTOCOL: [142, 'Unknown L4 protocol'],
  STALE_OR_UNROUTABLE_IP: [151, 'Stale or unroutable IP'],
  NO_MATCHING_LOCAL_CONTAINER_FOUND: [152, 'No matching local container found'],
  ERROR_WHILE_CORRECTING_L3_CHECKSUM: [153, 'Error while correcting L3 checksum'],
  ERROR_WHILE_CORRECTING_L4_CHECKSUM: [154, 'Error while correcting L4 checksum'],
  CT_MAP_INSERTION_FAILED: [155, 'CT: Map insertion failed'],
  IP_FRAGMENTATION_NOT_SUPPORTED: [157, 'IP fragmentation not supported'],
  SERVICE_BACKEND_NOT_FOUND: [158, 'Service backend not found'],
  FAILED_TO_INSERT_INTO_PROXYMAP: [161, 'Failed to insert into proxymap'],
  NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION: [165, 'No configuration available to perform policy decision'],
  FIB_LOOKUP_FAILED: [169, 'FIB lookup failed'],
  INVALID_IDENTITY: [171, 'Invalid identity'],
  UNKNOWN_SENDER: [172, 'Unknown sender'],
  FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND: [175, 'First logical datagram fragment not found'],
  SOCKET_LOOKUP_FAILED: [178, 'Socket lookup failed'],
  SOCKET_ASSIGN_FAILED: [179, 'Socket assign failed'],
  PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL: [180, 'Proxy redirection not supported for protocol'],
  POLICY_DENY: [181, 'Policy denied by denylist'],
  AUTH_REQUIRED: [189, 'Authentication required'],
  UNENCRYPTED_TRAFFIC: [195, 'Traffic is unencrypted'],
  TTL_EXCEEDED: [196, 'TTL exceeded'],
  DROP_RATE_LIMITED: [198, 'Rate limited'],
  DROP_HOST_NOT_READY: [202, 'Host datapath not ready'],
  DROP_EP_NOT_READY: [203, 'Endpoint policy program not available'],
} as const satisfies Record<string, readonly [number, string]>;

/** Hubble's name of a drop reason (`drop_reason_desc`). */
export type DropReasonName = keyof typeof DROP_REASONS;

/** The drop reasons a decision of policy gives: no allow entry (default deny), and a deny entry. */
export const DROP_POLICY_DENIED = DROP_REASONS.POLICY_DENIED[0];
export const DROP_POLICY_DENY = DROP_REASONS.POLICY_DENY[0];

const NAME_OF_CODE: ReadonlyMap<number, DropReasonName> = new Map(
  (Object.entries(DROP_REASONS) as [DropReasonName, readonly [number, string]][]).map(([name, [code]]) => [code, name]),
);

/** Hubble's name for a drop reason code; DROP_REASON_UNKNOWN for a code the table lacks. */
export function dropReasonName(code: number): DropReasonName {
  return NAME_OF_CODE.get(code) ?? 'DROP_REASON_UNKNOWN';
}

/** The code of a Hubble drop reason name, or undefined when the name is not one. */
export function dropReasonCode(name: string): number | undefined {
  return Object.hasOwn(DROP_REASONS, name) ? DROP_REASONS[name as DropReasonName][0] : undefined;
}
