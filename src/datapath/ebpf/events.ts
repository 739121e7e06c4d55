/**
 * Datapath events from the `events` ring buffer, decoded (struct pl_event in
 * bpf/palisade.h, 48 bytes).
 *
 *   tc program ─► bpf_ringbuf_reserve/submit ─► epoll fd readable (libuv)
 *      ─► ring_buffer__consume ─► sample callback (this thread) ─► decodeEvent ─► subscribers
 *
 * A full ring buffer drops the record and counts it in `lost_events`
 * (per CPU): `EbpfDatapath.readEvents` reports its growth to onLost, so loss
 * is never silent. Drop reasons are named from the one table (../constants.ts).
 */
import { DROP_POLICY_DENIED, DROP_POLICY_DENY, dropReasonName } from '../constants.ts';
import type { DatapathEvent, PolicyMatchKind } from '../types.ts';
import { ipFromBytes } from './maps.ts';

/** pl_event.match, by number (MATCH_* of bpf/palisade.h). */
const MATCH: readonly PolicyMatchKind[] = ['none', 'l3-l4', 'l4-only', 'l3-only', 'all', 'l7'];
const EVENT_DROP = 1;
const EVENT_POLICY_VERDICT = 2;
/** pl_event.verdict (VERDICT_* of bpf/palisade.h). */
const VERDICT_ALLOWED = 1;
const VERDICT_DENIED = 2;
const VERDICT_DENY_RULE = 3;
const VERDICT_NOT_ENFORCED = 4;
const VERDICT_REDIRECTED = 5;
const PROTOCOLS: Readonly<Record<number, 'ICMP' | 'TCP' | 'UDP' | 'SCTP' | 'ICMPv6'>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 132: 'SCTP', 58: 'ICMPv6' };

export const EVENT_SIZE = 48;

/** ns to add to bpf_ktime_get_ns() (CLOCK_MONOTONIC, as process.hrtime) for Unix time. */
const MONO_TO_WALL_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/**
 * The policy decision an event reports. drop() stamps every drop
 * VERDICT_DENIED (or DENY_RULE), so for a drop the reason says whether policy
 * decided it at all: only POLICY_DENIED and POLICY_DENY did.
 */
function policyOf(type: number, verdict: number, reason: number, match: PolicyMatchKind): DatapathEvent['policy'] {
  if (type === EVENT_DROP) {
    if (reason === DROP_POLICY_DENY) return { decision: 'deny-rule', match };
    if (reason === DROP_POLICY_DENIED) return { decision: 'default-deny', match };
    return undefined;
  }
  if (verdict === VERDICT_ALLOWED) return { decision: 'allowed', match };
  if (verdict === VERDICT_NOT_ENFORCED) return { decision: 'not-enforced', match };
  if (verdict === VERDICT_REDIRECTED) return { decision: 'redirected', match };
  if (verdict === VERDICT_DENY_RULE || reason === DROP_POLICY_DENY) return { decision: 'deny-rule', match };
  if (verdict === VERDICT_DENIED || reason === DROP_POLICY_DENIED) return { decision: 'default-deny', match };
  return undefined;
}

/**
 * One ring buffer record (struct pl_event) as an event, or null when it is
 * not one. `endpointName` names the program's endpoint id (`namespace/name`).
 */
export function decodeEvent(v: DataView, endpointName: (epId: number) => string | undefined): DatapathEvent | null {
  if (v.byteLength < EVENT_SIZE) return null;
  const type = v.getUint8(8);
  if (type !== EVENT_DROP && type !== EVENT_POLICY_VERDICT) return null;
  const reason = v.getUint8(9);
  const proto = v.getUint8(11);
  const name = endpointName(v.getUint16(12, true));
  const match = MATCH[v.getUint8(14)] ?? 'none';
  const verdictCode = v.getUint8(15);
  const policy = policyOf(type, verdictCode, reason, match);
  const ns = v.getBigUint64(0, true) + MONO_TO_WALL_NS;
  const protocol = PROTOCOLS[proto] ?? proto;
  // ICMP: the ports hold an echo's identifier, which is no port.
  const ported = protocol === 'TCP' || protocol === 'UDP' || protocol === 'SCTP';
  return {
    type: type === EVENT_DROP ? 'drop' : 'policy-verdict',
    verdict: type === EVENT_DROP || reason !== 0 ? 'dropped' : verdictCode === VERDICT_REDIRECTED ? 'redirected' : 'forwarded',
    reason,
    ...(reason !== 0 ? { reasonName: dropReasonName(reason) } : {}),
    timestamp: { seconds: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) },
    timeFromKernel: true,
    direction: v.getUint8(10) === 1 ? 'ingress' : 'egress',
    // Before the first apply only pinned addresses are known, which name no pod.
    ...(name?.includes('/') ? { endpoint: name } : {}),
    sourceIdentity: v.getUint32(20, true),
    destinationIdentity: v.getUint32(24, true),
    ...(policy ? { policy } : {}),
    tuple: {
      protocol,
      source: ipFromBytes(v, 28),
      destination: ipFromBytes(v, 32),
      sourcePort: ported ? v.getUint16(36, false) : 0,
      destinationPort: ported ? v.getUint16(38, false) : 0,
      ...(protocol === 'ICMP' ? { icmpType: v.getUint8(46) } : {}),
      ...(protocol === 'TCP' ? { tcpFlags: v.getUint8(44) } : {}),
    },
    length: v.getUint32(40, true),
    ifindex: v.getUint32(16, true),
  };
}
