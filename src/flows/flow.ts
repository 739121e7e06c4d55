/**
 * The flow record, exactly as Hubble prints it: protojson of `flow.Flow`
 * (cilium/api/v1/flow/flow.proto) with the proto field names (`UseProtoNames`),
 * so `IP`, `Type`, `Summary` keep their capitals and 64-bit integers
 * (`latency_ns`) are strings, as protojson writes them.
 *
 * Example (one line of `hubble observe -o jsonpb`):
 *   {"flow":{"time":"2024-11-26T06:41:02.123456789Z","uuid":"…","verdict":"DROPPED",
 *    "drop_reason_desc":"POLICY_DENIED","IP":{"source":"10.244.1.7","destination":"10.244.2.9",
 *    "ipVersion":"IPv4"},"l4":{"TCP":{"source_port":43210,"destination_port":80,"flags":{"SYN":true}}},
 *    "source":{"ID":1234,"identity":5678,"namespace":"default","labels":["k8s:app=frontend"],
 *    "pod_name":"frontend"},"destination":{…},"Type":"L3_L4","node_name":"node1",
 *    "event_type":{"type":1,"sub_type":133},"traffic_direction":"INGRESS","is_reply":false,
 *    "ingress_denied_by":[…]},"node_name":"node1","time":"2024-11-26T06:41:02.123456789Z"}
 */
import { randomUUID } from 'node:crypto';
import { isIPv6 } from 'node:net';

export type FlowVerdict = 'VERDICT_UNKNOWN' | 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED' | 'TRANSLATED';
export const FLOW_VERDICTS: readonly FlowVerdict[] = ['VERDICT_UNKNOWN', 'FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED'];

/**
 * Cilium's drop reasons with their codes and texts: the one table lives with
 * the datapaths that emit them (src/datapath/constants.ts).
 */
import { DROP_REASONS, type DropReasonName as DropReasonDesc } from '../datapath/index.ts';
export { DROP_REASONS, type DropReasonDesc };


/** Cilium monitor message types (pkg/monitor/api/types.go): `event_type.type`. */
export const EVENT_TYPE = { DROP: 1, DEBUG: 2, CAPTURE: 3, TRACE: 4, L7: 5, AGENT: 6, TRACE_SOCK: 7, POLICY_VERDICT: 9 } as const;

/** Trace observation points (`event_type.sub_type` of trace events), as `hubble observe` names them. */
export const TRACE_POINTS: readonly string[] = [
  'to-endpoint', 'to-proxy', 'to-host', 'to-stack', 'to-overlay', 'from-endpoint',
  'from-proxy', 'from-host', 'from-stack', 'from-overlay', 'from-network', 'to-network',
];

export interface TCPFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
  URG?: boolean;
  ECE?: boolean;
  CWR?: boolean;
  NS?: boolean;
}

export interface Ports {
  source_port?: number;
  destination_port?: number;
}

/** `l4` is a oneof: exactly one key. */
export type Layer4 =
  | { TCP: Ports & { flags?: TCPFlags } }
  | { UDP: Ports }
  | { SCTP: Ports }
  | { ICMPv4: { type?: number; code?: number } }
  | { ICMPv6: { type?: number; code?: number } };

export interface Workload {
  name: string;
  kind: string;
}

export interface Endpoint {
  ID?: number;
  identity?: number;
  cluster_name?: string;
  namespace?: string;
  /** `source:key=value`, e.g. `k8s:app=frontend`, `reserved:world`. */
  labels?: string[];
  pod_name?: string;
  workloads?: Workload[];
}

export interface HTTPHeader {
  key: string;
  value: string;
}

export interface HTTP {
  code?: number;
  method?: string;
  url?: string;
  protocol?: string;
  headers?: HTTPHeader[];
}

export interface DNS {
  query?: string;
  ips?: string[];
  ttl?: number;
  cnames?: string[];
  observation_source?: string;
  /** The DNS rcode: 0 NOERROR, 3 NXDOMAIN, 5 REFUSED. */
  rcode?: number;
  qtypes?: string[];
  rrtypes?: string[];
}

export type L7FlowType = 'UNKNOWN_L7_TYPE' | 'REQUEST' | 'RESPONSE' | 'SAMPLE';

export interface Layer7 {
  type?: L7FlowType;
  /** uint64: a decimal string in protojson. */
  latency_ns?: string;
  http?: HTTP;
  dns?: DNS;
}

export interface Policy {
  name: string;
  namespace?: string;
  labels?: string[];
  revision?: string;
  /** CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy. */
  kind?: string;
}

export type TrafficDirection = 'TRAFFIC_DIRECTION_UNKNOWN' | 'INGRESS' | 'EGRESS';
export type IPVersion = 'IP_NOT_USED' | 'IPv4' | 'IPv6';
export type FlowType = 'UNKNOWN_TYPE' | 'L3_L4' | 'L7' | 'SOCK';

export interface Flow {
  /** RFC 3339 with nanoseconds, UTC. */
  time: string;
  uuid?: string;
  verdict: FlowVerdict;
  /** Deprecated numeric drop reason; Hubble still fills it. */
  drop_reason?: number;
  drop_reason_desc?: DropReasonDesc;
  IP?: { source: string; destination: string; ipVersion: IPVersion; encrypted?: boolean; source_xlated?: string };
  l4?: Layer4;
  source?: Endpoint;
  destination?: Endpoint;
  Type?: FlowType;
  node_name?: string;
  /** DNS names the source / destination IP is known by (from the FQDN cache). */
  source_names?: string[];
  destination_names?: string[];
  l7?: Layer7;
  event_type?: { type: number; sub_type?: number };
  source_service?: { name: string; namespace: string };
  destination_service?: { name: string; namespace: string };
  traffic_direction?: TrafficDirection;
  /** Cilium's PolicyMatchType: 0 none, 1 L3-only, 2 L3-L4, 3 L4-only, 4 all, 5 L3-proto, 6 proto-only. */
  policy_match_type?: number;
  trace_observation_point?: string;
  is_reply?: boolean;
  proxy_port?: number;
  Summary?: string;
  egress_allowed_by?: Policy[];
  ingress_allowed_by?: Policy[];
  egress_denied_by?: Policy[];
  ingress_denied_by?: Policy[];
}

/** The GetFlowsResponse envelope carrying a flow. */
export interface FlowEnvelope {
  flow: Flow;
  node_name: string;
  time: string;
}

export type LostEventSource = 'UNKNOWN_LOST_EVENT_SOURCE' | 'PERF_EVENT_RING_BUFFER' | 'OBSERVER_EVENTS_QUEUE' | 'HUBBLE_RING_BUFFER';

/** The GetFlowsResponse envelope telling a reader that events were lost. */
export interface LostEventsEnvelope {
  lost_events: { source: LostEventSource; num_events_lost: number; cpu?: number };
  node_name: string;
  time: string;
}

/** What a GetFlows stream carries: flows, and now and then a note that some were lost. */
export type GetFlowsResponse = FlowEnvelope | LostEventsEnvelope;

export function isFlowEnvelope(r: GetFlowsResponse): r is FlowEnvelope {
  return (r as FlowEnvelope).flow !== undefined;
}

/** One line of Hubble JSON (no trailing newline). */
export function flowToJson(envelope: GetFlowsResponse): string {
  return JSON.stringify(envelope);
}

// ── Time ─────────────────────────────────────────────────────────────────

const NANO_PAD = '000000000';

/** RFC 3339 with nine fractional digits for an epoch time in ms (µs kept, the rest is zeros). */
// Consecutive flows nearly always fall in the same second: keep its text and
// build only the fraction, instead of a Date and toISOString per record.
let fmtSecond = -1;
let fmtPrefix = '';

export function formatFlowTime(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== fmtSecond) {
    fmtSecond = second;
    fmtPrefix = new Date(second * 1000).toISOString().slice(0, 19);
  }
  const micros = Math.floor((epochMs - second * 1000) * 1000);
  return `${fmtPrefix}.${String(micros).padStart(6, '0')}000Z`;
}

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

// The seconds prefix (`2024-11-26T06:41:02`) of consecutive flows is nearly
// always the same: remember the last one so parsing needs no Date.parse and no
// allocation on the ingest path.
let cachedPrefix = '';
let cachedPrefixMs = 0;

/**
 * Epoch ms (with fractions down to what a double holds, ~0.2 µs) of an RFC 3339
 * time. Any offset form is accepted; `Z` with 0–9 fractional digits is the fast path.
 */
export function parseFlowTime(s: string): number {
  if ((s.length > 20 && s.charCodeAt(19) === 46) /* . */ || s.length === 20) {
    const zAt = s.length - 1;
    if (s.charCodeAt(zAt) === 90 /* Z */) {
      let base: number;
      if (cachedPrefix !== '' && s.startsWith(cachedPrefix)) base = cachedPrefixMs;
      else {
        const prefix = s.slice(0, 19);
        base = Date.parse(prefix + 'Z');
        if (Number.isNaN(base)) return NaN;
        cachedPrefix = prefix;
        cachedPrefixMs = base;
      }
      let frac = 0;
      let scale = 1000; // first digit is 100 ms
      for (let i = 20; i < zAt; i++) {
        const d = s.charCodeAt(i) - 48;
        if (d < 0 || d > 9) return Date.parse(s);
        scale /= 10;
        frac += d * scale;
      }
      return base + frac;
    }
  }
  return Date.parse(s);
}

/** A protobuf Timestamp (seconds, nanos) as RFC 3339 with nine fractional digits. */
export function timestampToFlowTime(seconds: number, nanos: number): string {
  // Datapath events arrive by the thousand per second: the second's text is kept, as formatFlowTime does.
  if (seconds !== tsSecond) {
    tsSecond = seconds;
    tsPrefix = new Date(seconds * 1000).toISOString().slice(0, 19);
  }
  return `${tsPrefix}.${(NANO_PAD + String(nanos)).slice(-9)}Z`;
}
let tsSecond = NaN;
let tsPrefix = '';

/** RFC 3339 → protobuf Timestamp, keeping all nine fractional digits. */
export function flowTimeToTimestamp(s: string): { seconds: number; nanos: number } {
  const ms = parseFlowTime(s);
  const seconds = Math.floor(ms / 1000);
  const m = /\.(\d{1,9})/.exec(s);
  const nanos = m?.[1] !== undefined ? Number((m[1] + NANO_PAD).slice(0, 9)) : 0;
  return { seconds, nanos };
}

// ── Building flows ───────────────────────────────────────────────────────

export type FlowInit = Partial<Flow> & Pick<Flow, 'verdict'>;

/**
 * A flow from what its producer knows, with what follows from it filled in:
 * uuid, time, `Type` (L7 when there is an l7 record), `IP.ipVersion`,
 * `event_type` (drop for DROPPED with a reason, L7 for proxy records, else a
 * trace to-endpoint), the numeric `drop_reason`, and `is_reply: false`.
 */
export function makeFlow(init: FlowInit): Flow {
  const flow: Flow = { ...init, time: init.time ?? formatFlowTime(nowMs()) };
  flow.uuid ??= randomUUID();
  flow.Type ??= init.l7 !== undefined ? 'L7' : 'L3_L4';
  if (flow.IP !== undefined && flow.IP.ipVersion === undefined) {
    flow.IP = { ...flow.IP, ipVersion: isIPv6(flow.IP.source) ? 'IPv6' : 'IPv4' };
  }
  if (flow.drop_reason_desc !== undefined) flow.drop_reason ??= DROP_REASONS[flow.drop_reason_desc][0];
  flow.event_type ??=
    flow.Type === 'L7'
      ? { type: EVENT_TYPE.L7, sub_type: 0 }
      : flow.verdict === 'DROPPED'
        ? { type: EVENT_TYPE.DROP, sub_type: flow.drop_reason ?? 0 }
        : { type: EVENT_TYPE.TRACE, sub_type: 0 };
  flow.is_reply ??= false;
  return flow;
}

/** The envelope a store keeps and a GetFlows stream sends. */
export function envelope(flow: Flow, nodeName = flow.node_name ?? ''): FlowEnvelope {
  return { flow, node_name: nodeName, time: flow.time };
}

// ── Small readers used by filters, metrics and printers ──────────────────

/** `l4` ports whatever the protocol; undefined for ICMP. */
export function flowPorts(flow: Flow): Ports | undefined {
  const l4 = flow.l4 as { TCP?: Ports; UDP?: Ports; SCTP?: Ports } | undefined;
  if (l4 === undefined) return undefined;
  return l4.TCP ?? l4.UDP ?? l4.SCTP;
}

/** Hubble's v1.FlowProtocol: the L7 protocol when there is one, else the L4 one. */
export function flowProtocol(flow: Flow): string {
  const l7 = flow.l7;
  if (l7 !== undefined) {
    if (l7.http !== undefined) return 'HTTP';
    if (l7.dns !== undefined) return 'DNS';
  }
  const l4 = flow.l4;
  if (l4 === undefined) return 'Unknown';
  if ('TCP' in l4) return 'TCP';
  if ('UDP' in l4) return 'UDP';
  if ('ICMPv4' in l4) return 'ICMPv4';
  if ('ICMPv6' in l4) return 'ICMPv6';
  if ('SCTP' in l4) return 'SCTP';
  return 'Unknown';
}

const MATCH_TYPES = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all', 'L3-Proto', 'Proto-Only'];

/** Cilium's PolicyMatchType text for `policy_match_type`. */
export function policyMatchTypeName(n: number | undefined): string {
  return MATCH_TYPES[n ?? 0] ?? 'unknown';
}

/** "namespace/pod" for pods, the reserved identity (world, host, …) otherwise, "" when unknown. */
export function endpointName(ep: Endpoint | undefined): string {
  if (ep === undefined) return '';
  if (ep.pod_name) return `${ep.namespace ?? ''}/${ep.pod_name}`;
  for (const l of ep.labels ?? []) if (l.startsWith('reserved:')) return l.slice(9).split('=')[0] ?? '';
  return '';
}
