/**
 * Datapath events from the `events` ring buffer, decoded (struct pl_event in
 * bpf/palisade.h, 48 bytes).
 *
 *   tc program ─► bpf_ringbuf_reserve/submit ─► epoll fd readable (libuv)
 *      ─► ring_buffer__consume ─► sample callback (this thread) ─► decodeEvent ─► subscribers
 *
 * A full ring buffer drops the record and counts it in `lost_events`
 * (per CPU): `EbpfDatapath.lostEvents()` reads it, so loss is never silent.
 */
import { ipFromBytes } from './maps.ts';

/**
 * Cilium's drop reason numbers with Hubble's `drop_reason_desc` names: every
 * DROP_* of bpf/palisade.h (drop-reasons.test.ts checks this table and the
 * flow layer's against the header).
 */
export const DROP_REASONS: Readonly<Record<number, string>> = {
  132: 'INVALID_SOURCE_IP',
  133: 'POLICY_DENIED',
  134: 'INVALID_PACKET_DROPPED',
  141: 'ERROR_WRITING_TO_PACKET',
  153: 'ERROR_WHILE_CORRECTING_L3_CHECKSUM',
  154: 'ERROR_WHILE_CORRECTING_L4_CHECKSUM',
  155: 'CT_MAP_INSERTION_FAILED',
  157: 'IP_FRAGMENTATION_NOT_SUPPORTED',
  158: 'SERVICE_BACKEND_NOT_FOUND',
  169: 'FIB_LOOKUP_FAILED',
  175: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND',
  178: 'SOCKET_LOOKUP_FAILED',
  179: 'SOCKET_ASSIGN_FAILED',
  180: 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL',
  181: 'POLICY_DENY',
};

export const DROP_POLICY_DENIED = 133;
export const DROP_POLICY_DENY = 181;
export const DROP_INVALID_SOURCE_IP = 132;

const MATCH = ['none', 'l3-l4', 'l4-only', 'l3-only', 'all', 'l7'] as const;
/** `redirected`: a new connection handed to the node's L7 proxy (which then reports each request). */
const VERDICT = ['unknown', 'allowed', 'denied', 'deny-rule', 'not-enforced', 'redirected'] as const;
const PROTOCOLS: Readonly<Record<number, string>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 132: 'SCTP', 58: 'ICMPv6' };

export interface DatapathEvent {
  type: 'drop' | 'policy-verdict';
  /** Wall-clock time in ms (the kernel's monotonic stamp, shifted). */
  time: number;
  /** Drop reason number (0 for an allowed verdict) and Hubble's name for it. */
  reason: number;
  reasonName?: string;
  direction: 'ingress' | 'egress';
  /** The endpoint the decision was for; `endpoint` is its `ns/name` when known. */
  endpointId: number;
  endpoint?: string;
  verdict: (typeof VERDICT)[number];
  match: (typeof MATCH)[number];
  protocol: string;
  source: string;
  destination: string;
  sourcePort: number;
  destinationPort: number;
  sourceIdentity: number;
  destinationIdentity: number;
  ifindex: number;
  length: number;
  tcpFlags: number;
  /** ICMP only: the message type (the ports hold an echo's identifier). */
  icmpType?: number;
}

export const EVENT_SIZE = 48;

/** ns to add to bpf_ktime_get_ns() (CLOCK_MONOTONIC, as process.hrtime) for Unix time. */
const MONO_TO_WALL_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

export function decodeEvent(v: DataView, endpointName: (epId: number) => string | undefined): DatapathEvent | null {
  if (v.byteLength < EVENT_SIZE) return null;
  const type = v.getUint8(8);
  if (type !== 1 && type !== 2) return null;
  const reason = v.getUint8(9);
  const epId = v.getUint16(12, true);
  const proto = v.getUint8(11);
  const name = endpointName(epId);
  const reasonName = DROP_REASONS[reason];
  return {
    type: type === 1 ? 'drop' : 'policy-verdict',
    time: Number((v.getBigUint64(0, true) + MONO_TO_WALL_NS) / 1_000_000n),
    reason,
    ...(reasonName ? { reasonName } : {}),
    direction: v.getUint8(10) === 1 ? 'ingress' : 'egress',
    endpointId: epId,
    ...(name !== undefined ? { endpoint: name } : {}),
    match: MATCH[v.getUint8(14)] ?? 'none',
    verdict: VERDICT[v.getUint8(15)] ?? 'unknown',
    protocol: PROTOCOLS[proto] ?? String(proto),
    ifindex: v.getUint32(16, true),
    sourceIdentity: v.getUint32(20, true),
    destinationIdentity: v.getUint32(24, true),
    source: ipFromBytes(v, 28),
    destination: ipFromBytes(v, 32),
    sourcePort: v.getUint16(36, false),
    destinationPort: v.getUint16(38, false),
    length: v.getUint32(40, true),
    tcpFlags: v.getUint8(44),
    ...(proto === 1 ? { icmpType: v.getUint8(46) } : {}),
  };
}
