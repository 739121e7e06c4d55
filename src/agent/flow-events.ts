/**
 * Datapath decisions → Hubble flow records.
 *
 *   nftables `log group 1 prefix …` ──► NFLOG reader ──► packet ──┐
 *   policy snapshot (who is this IP? which rule?) ────────────────┼──► Flow ──► FlowStore ──► observe, gRPC, metrics
 *
 * Prefixes (src/datapath/legacy/render-policy.ts): `d:<ep>:<in|eg>:<deny|denied>`
 * a dropped packet (or `d:<ep>:<in|eg>:<Hubble drop reason>` for a drop that
 * is not a policy decision), `a:<ep>:<in|eg>` an allowed new connection (a
 * policy verdict), `r:<ep>:<in|eg>` one redirected to an L7 proxy (eBPF events
 * only), `f` a forwarded new connection (a trace). The endpoints and the
 * policies behind a decision come from the engine's snapshot, so a record
 * names the same rules `palisade policy trace` would.
 */
import type { DatapathEvent, NflogPacket } from '../datapath/index.ts';
import { snapshotMemo } from './snapshot-memo.ts';
import { DROP_REASONS, EVENT_TYPE, makeFlow, type DropReasonDesc, type Endpoint, type Flow, type FlowStore, type Layer4, type Policy } from '../flows/index.ts';
import { IDENTITY_HOST, IDENTITY_REMOTE_NODE, IDENTITY_WORLD } from '../identity/index.ts';
import type { DirectionVerdict, EndpointInfo, FqdnLookup, MatchKind, PolicySnapshot, Protocol, RuleOrigin } from '../policy/index.ts';

export interface FlowContext {
  node: string;
  snapshot(): PolicySnapshot;
  /** Names the DNS proxy learned an address for (toFQDNs matches and *_names fields). */
  fqdns: FqdnLookup;
  ownAddresses(): readonly string[];
  peerAddresses(): readonly string[];
}

const EXPLAIN_CACHE_MAX = 4096;

const MATCH_TYPE: Record<MatchKind, number> = { none: 0, 'l3-only': 1, 'l3-l4': 2, 'l4-only': 3, all: 4, 'l7/http': 2, 'l7/dns': 2 };

/** Endpoint descriptions per snapshot and address (or pod key): shared, never mutated. */
const described = snapshotMemo<Endpoint>(EXPLAIN_CACHE_MAX);
const podsByKey = snapshotMemo<Endpoint | undefined>(EXPLAIN_CACHE_MAX);

export function endpointOf(ctx: FlowContext, snap: PolicySnapshot, ip: string): Endpoint {
  return described(snap, ip, () => describe(ctx, snap, ip));
}

function describePod(ep: EndpointInfo): Endpoint {
  return {
    ID: ep.identity,
    identity: ep.identity,
    namespace: ep.namespace,
    labels: ep.labels.toStrings().filter((l) => l.startsWith('k8s:') && !l.startsWith('k8s:io.cilium.k8s.namespace.labels.')),
    pod_name: ep.name,
  };
}

/**
 * The pod a datapath decision was taken for, by the `<ep>` of its prefix
 * (eBPF events carry the endpoint's key, `namespace/name`), or undefined.
 */
function decidingPod(snap: PolicySnapshot, ep: string | undefined): Endpoint | undefined {
  if (!ep?.includes('/')) return undefined;
  return podsByKey(snap, ep, () => {
    const info = snap.endpoint(ep);
    return info ? describePod(info) : undefined;
  });
}

function describe(ctx: FlowContext, snap: PolicySnapshot, ip: string): Endpoint {
  const ep = snap.endpointByIp(ip);
  if (ep) return describePod(ep);
  if (ctx.ownAddresses().includes(ip)) return { identity: IDENTITY_HOST, labels: ['reserved:host'] };
  if (ctx.peerAddresses().includes(ip)) return { identity: IDENTITY_REMOTE_NODE, labels: ['reserved:remote-node'] };
  return { identity: IDENTITY_WORLD, labels: ['reserved:world'] };
}

/** Hubble's source_names / destination_names: what the FQDN cache knows the addresses as. */
export function knownNames(ctx: FlowContext, src: string, dst: string): { source_names?: string[]; destination_names?: string[] } {
  const s = ctx.fqdns(src);
  const d = ctx.fqdns(dst);
  return { ...(s.length ? { source_names: [...s] } : {}), ...(d.length ? { destination_names: [...d] } : {}) };
}

type ParsedIp = NonNullable<NflogPacket['ip']>;

function l4Of(ip: ParsedIp): Layer4 | undefined {
  if (ip.protocol === 'TCP') return { TCP: { source_port: ip.srcPort ?? 0, destination_port: ip.dstPort ?? 0, flags: { ...(ip.tcpFlags ?? {}) } } };
  if (ip.protocol === 'UDP') return { UDP: { source_port: ip.srcPort ?? 0, destination_port: ip.dstPort ?? 0 } };
  if (ip.protocol === 'ICMP') return { ICMPv4: { type: ip.icmpType ?? 0, code: ip.icmpCode ?? 0 } };
  return undefined;
}

function protocolOf(ip: ParsedIp): { protocol: Protocol; port: number } | undefined {
  if (ip.protocol === 'TCP' || ip.protocol === 'UDP') return { protocol: ip.protocol, port: ip.dstPort ?? 0 };
  if (ip.protocol === 'ICMP') return { protocol: 'ICMP', port: ip.icmpType ?? 0 };
  return undefined;
}

/** The policies behind rule origins, each once, as Hubble's *_allowed_by / *_denied_by list them. */
export function policies(list: readonly RuleOrigin[]): Policy[] {
  const seen = new Set<string>();
  const out: Policy[] = [];
  for (const o of list) {
    const k = `${o.kind}/${o.namespace ?? ''}/${o.name}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ name: o.name, ...(o.namespace !== undefined ? { namespace: o.namespace } : {}), kind: o.kind });
  }
  return out;
}

/**
 * Explanations per snapshot: a flood of packets between the same two pods on
 * the same port asks the engine once, not once per packet.
 */
const explained = snapshotMemo<DirectionVerdict | null>(EXPLAIN_CACHE_MAX);

function explain(
  snap: PolicySnapshot,
  src: string,
  dst: string,
  q: { protocol: Protocol; port: number },
  direction: 'ingress' | 'egress',
  fqdns: FqdnLookup,
): DirectionVerdict | null {
  // Names are learned between snapshots: they are part of what was decided.
  const names = fqdns(direction === 'egress' ? dst : src);
  const key = `${src}|${dst}|${q.protocol}|${q.port}|${direction}${names.length ? `|${names.join(',')}` : ''}`;
  return explained(snap, key, () => {
    try {
      const v = snap.verdict({ src: { ip: src }, dst: { ip: dst }, protocol: q.protocol, port: q.port }, fqdns);
      return direction === 'ingress' ? v.ingress : v.egress;
    } catch {
      return null; // the endpoint left the snapshot since the packet was logged
    }
  });
}

/** Turns one logged packet into a flow record, or undefined when it is not one of ours. */
export function flowFromPacket(ctx: FlowContext, p: NflogPacket): Flow | undefined {
  const ip = p.ip;
  if (!ip) return undefined;
  const [kind, epField, dirText, reason] = p.prefix.split(':');
  if (kind !== 'f' && kind !== 'a' && kind !== 'r' && kind !== 'd') return undefined; // the loss probe, or not ours
  const snap = ctx.snapshot();
  const l4 = l4Of(ip);
  const base = {
    node_name: ctx.node,
    IP: { source: ip.src, destination: ip.dst, ipVersion: 'IPv4' as const },
    ...(l4 ? { l4 } : {}),
    source: endpointOf(ctx, snap, ip.src),
    destination: endpointOf(ctx, snap, ip.dst),
    ...knownNames(ctx, ip.src, ip.dst),
  };
  if (kind === 'f') {
    return makeFlow({ ...base, verdict: 'FORWARDED', event_type: { type: EVENT_TYPE.TRACE, sub_type: 0 }, trace_observation_point: 'TO_STACK', Summary: 'forwarded' });
  }
  const direction = dirText === 'in' ? 'ingress' : 'egress';
  const traffic_direction = direction === 'ingress' ? 'INGRESS' : 'EGRESS';
  const q = protocolOf(ip);
  const d = q ? explain(snap, ip.src, ip.dst, q, direction, ctx.fqdns) : null;
  if (kind === 'd' && reason !== 'deny' && reason !== 'denied') {
    // A datapath drop that is not a policy decision (eBPF: anti-spoofing, no backend, …).
    const desc = (reason ?? '') in DROP_REASONS ? (reason as DropReasonDesc) : 'DROP_REASON_UNKNOWN';
    // The pod whose interface the packet crossed is the sender (egress) or
    // the receiver (ingress), whatever the addresses claim: a spoofed source
    // address belongs to another pod, and the record names the real sender.
    const pod = decidingPod(snap, epField);
    const side = pod ? (direction === 'egress' ? { source: pod } : { destination: pod }) : {};
    return makeFlow({ ...base, ...side, verdict: 'DROPPED', drop_reason_desc: desc, traffic_direction });
  }
  if (kind === 'd') {
    const deny = reason === 'deny';
    // For a default-deny drop the "denying" policies are those that made the
    // direction default-deny: what a person needs to look at.
    const by = policies(deny ? (d?.deniedBy ?? []) : (d?.enforcedBy ?? []));
    return makeFlow({
      ...base,
      verdict: 'DROPPED',
      drop_reason_desc: deny ? 'POLICY_DENY' : 'POLICY_DENIED',
      traffic_direction,
      policy_match_type: 0,
      ...(direction === 'ingress' ? { ingress_denied_by: by } : { egress_denied_by: by }),
    });
  }
  if (kind === 'a' || kind === 'r') {
    const by = policies(d?.allowedBy ?? []);
    return makeFlow({
      ...base,
      // r: handed to the node's L7 proxy, which reports each request itself.
      verdict: kind === 'r' ? 'REDIRECTED' : 'FORWARDED',
      event_type: { type: EVENT_TYPE.POLICY_VERDICT, sub_type: 0 },
      traffic_direction,
      policy_match_type: MATCH_TYPE[d?.match ?? 'all'],
      ...(direction === 'ingress' ? { ingress_allowed_by: by } : { egress_allowed_by: by }),
    });
  }
  return undefined;
}

/** The prefix kind of a policy-verdict event: `v` (a denial, which its drop event reports) makes no record. */
const VERDICT_KIND: Readonly<Record<DatapathEvent['verdict'], string>> = {
  unknown: 'v',
  allowed: 'a',
  'not-enforced': 'a',
  redirected: 'r',
  denied: 'v',
  'deny-rule': 'v',
};

/**
 * An eBPF datapath event in the shape of a logged packet, so one function
 * builds records for both datapaths. Drop reasons other than the two policy
 * ones travel in the prefix, and so does the endpoint's key when known: the
 * pod the program ran for (a spoofed packet's sender).
 */
export function eventAsPacket(e: DatapathEvent): NflogPacket {
  const dir = e.direction === 'ingress' ? 'in' : 'eg';
  const ep = e.endpoint ?? e.endpointId;
  const prefix =
    e.type === 'policy-verdict'
      ? `${VERDICT_KIND[e.verdict]}:${ep}:${dir}`
      : `d:${ep}:${dir}:${e.reason === 181 ? 'deny' : e.reason === 133 ? 'denied' : (e.reasonName ?? 'DROP_REASON_UNKNOWN')}`;
  const flags = e.tcpFlags;
  return {
    group: 0,
    prefix,
    mark: 0,
    family: 2,
    payloadLength: e.length,
    ip: {
      src: e.source,
      dst: e.destination,
      protocol: e.protocol === 'TCP' || e.protocol === 'UDP' || e.protocol === 'ICMP' ? e.protocol : 0,
      length: e.length,
      ttl: 64,
      srcPort: e.sourcePort,
      dstPort: e.destinationPort,
      ...(e.icmpType !== undefined ? { icmpType: e.icmpType, icmpCode: 0 } : {}),
      ...(e.protocol === 'TCP'
        ? { tcpFlags: { FIN: !!(flags & 1), SYN: !!(flags & 2), RST: !!(flags & 4), PSH: !!(flags & 8), ACK: !!(flags & 16), URG: !!(flags & 32), ECE: !!(flags & 64), CWR: !!(flags & 128) } }
        : {}),
    },
  } as NflogPacket;
}

/** Feeds a store from logged packets; malformed or foreign packets are skipped. */
export function packetSink(ctx: FlowContext, store: FlowStore): (p: NflogPacket) => void {
  return (p) => {
    const f = flowFromPacket(ctx, p);
    if (f) store.addFlow(f);
  };
}
