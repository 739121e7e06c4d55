/**
 * Datapath decisions → Hubble flow records.
 *
 *   Datapath.readEvents ──► DatapathEvent (typed: verdict, reason, tuple, endpoint) ──┐
 *   policy snapshot (who is this IP? which rule?) ──────────────────────────────────────┼──► Flow ──► FlowStore ──► observe, gRPC, metrics
 *
 * Both datapaths hand over the same event (src/datapath/types.ts), so one
 * function builds every record. The endpoints and the policies behind a
 * decision come from the engine's snapshot, so a record names the same rules
 * `palisade policy trace` would.
 */
import type { DatapathEvent } from '../datapath/index.ts';
import { snapshotMemo } from './snapshot-memo.ts';
import { EVENT_TYPE, makeFlow, timestampToFlowTime, type Endpoint, type Flow, type FlowStore, type Layer4, type Policy } from '../flows/index.ts';
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

/** The pod a datapath decision was taken for (`namespace/name`), or undefined when it left the snapshot. */
function decidingPod(snap: PolicySnapshot, ep: string | undefined): Endpoint | undefined {
  if (ep === undefined) return undefined;
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

type Tuple = DatapathEvent['tuple'];

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;

function l4Of(t: Tuple): Layer4 | undefined {
  if (t.protocol === 'TCP') {
    const bits = t.tcpFlags ?? 0;
    const flags: Record<(typeof TCP_FLAG_NAMES)[number], boolean> = { FIN: false, SYN: false, RST: false, PSH: false, ACK: false, URG: false, ECE: false, CWR: false };
    TCP_FLAG_NAMES.forEach((name, i) => (flags[name] = (bits & (1 << i)) !== 0));
    return { TCP: { source_port: t.sourcePort, destination_port: t.destinationPort, flags } };
  }
  if (t.protocol === 'UDP') return { UDP: { source_port: t.sourcePort, destination_port: t.destinationPort } };
  if (t.protocol === 'ICMP') return { ICMPv4: { type: t.icmpType ?? 0, code: t.icmpCode ?? 0 } };
  return undefined;
}

function protocolOf(t: Tuple): { protocol: Protocol; port: number } | undefined {
  if (t.protocol === 'TCP' || t.protocol === 'UDP') return { protocol: t.protocol, port: t.destinationPort };
  if (t.protocol === 'ICMP') return { protocol: 'ICMP', port: t.icmpType ?? 0 };
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

/**
 * Turns one datapath event into a flow record, or undefined when it makes
 * none: a denial's policy-verdict event (its drop event reports it).
 */
export function flowFromEvent(ctx: FlowContext, e: DatapathEvent): Flow | undefined {
  const t = e.tuple;
  if (e.type === 'policy-verdict' && e.verdict === 'dropped') return undefined;
  const snap = ctx.snapshot();
  const l4 = l4Of(t);
  const base = {
    time: timestampToFlowTime(e.timestamp.seconds, e.timestamp.nanos),
    node_name: ctx.node,
    IP: { source: t.source, destination: t.destination, ipVersion: 'IPv4' as const },
    ...(l4 ? { l4 } : {}),
    source: endpointOf(ctx, snap, t.source),
    destination: endpointOf(ctx, snap, t.destination),
    ...knownNames(ctx, t.source, t.destination),
  };
  if (e.type === 'trace' || e.direction === undefined) {
    return makeFlow({ ...base, verdict: 'FORWARDED', event_type: { type: EVENT_TYPE.TRACE, sub_type: 0 }, trace_observation_point: 'TO_STACK', Summary: 'forwarded' });
  }
  const direction = e.direction;
  const traffic_direction = direction === 'ingress' ? 'INGRESS' : 'EGRESS';
  // Only a policy decision is explained: a flood of other drops (spoofed sources, each new) asks the engine nothing.
  const explainDecision = (): DirectionVerdict | null => {
    const q = protocolOf(t);
    return q ? explain(snap, t.source, t.destination, q, direction, ctx.fqdns) : null;
  };
  if (e.type === 'drop') {
    const desc = e.reasonName ?? 'DROP_REASON_UNKNOWN';
    const decision = e.policy?.decision;
    if (decision === 'deny-rule' || decision === 'default-deny') {
      const d = explainDecision();
      // For a default-deny drop the "denying" policies are those that made the
      // direction default-deny: what a person needs to look at.
      const by = policies(decision === 'deny-rule' ? (d?.deniedBy ?? []) : (d?.enforcedBy ?? []));
      return makeFlow({
        ...base,
        verdict: 'DROPPED',
        drop_reason_desc: desc,
        traffic_direction,
        policy_match_type: 0,
        ...(direction === 'ingress' ? { ingress_denied_by: by } : { egress_denied_by: by }),
      });
    }
    // A drop that is not a policy decision (anti-spoofing, no backend, …).
    // The pod whose interface the packet crossed is the sender (egress) or
    // the receiver (ingress), whatever the addresses claim: a spoofed source
    // address belongs to another pod, and the record names the real sender.
    const pod = decidingPod(snap, e.endpoint);
    const side = pod ? (direction === 'egress' ? { source: pod } : { destination: pod }) : {};
    return makeFlow({ ...base, ...side, verdict: 'DROPPED', drop_reason_desc: desc, traffic_direction });
  }
  const d = explainDecision();
  const by = policies(d?.allowedBy ?? []);
  return makeFlow({
    ...base,
    // redirected: handed to the node's L7 proxy, which reports each request itself.
    verdict: e.verdict === 'redirected' ? 'REDIRECTED' : 'FORWARDED',
    event_type: { type: EVENT_TYPE.POLICY_VERDICT, sub_type: 0 },
    traffic_direction,
    policy_match_type: MATCH_TYPE[d?.match ?? 'all'],
    ...(direction === 'ingress' ? { ingress_allowed_by: by } : { egress_allowed_by: by }),
  });
}

/** Feeds a store from datapath events. */
export function eventSink(ctx: FlowContext, store: FlowStore): (e: DatapathEvent) => void {
  return (e) => {
    const f = flowFromEvent(ctx, e);
    if (f) store.addFlow(f);
  };
}
