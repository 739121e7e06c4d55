/**
 * Between Hubble JSON (our Flow objects) and the objects @grpc/proto-loader
 * encodes. With keepCase and String enums the two already share field names
 * and enum spellings; what differs is only the well-known types:
 *
 *   JSON "time": "2024-…T06:41:02.123456789Z"   proto {seconds, nanos}
 *   JSON "is_reply": false                       proto BoolValue {value: false}
 *   JSON lost_events.cpu: 3                      proto Int32Value {value: 3}
 */
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import type { FlowFilter } from './filter.ts';
import { flowTimeToTimestamp, isFlowEnvelope, timestampToFlowTime, type Flow, type GetFlowsResponse } from './flow.ts';
import type { QueryWithoutSignal } from './query-params.ts';

export const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));

export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  arrays: true,
  oneofs: false,
  includeDirs: [PROTO_DIR],
};

/**
 * The `observer` package (service Observer). A server decodes requests with empty
 * repeated fields filled in (requestToQuery reads them as "no constraint"); a client
 * decodes flows without them, as protojson writes them, so protoToFlow copies nothing.
 */
export function loadObserverPackage(side: 'server' | 'client'): GrpcObject {
  const def = loadSync('observer.proto', side === 'server' ? LOADER_OPTIONS : { ...LOADER_OPTIONS, arrays: false });
  return loadPackageDefinition(def);
}

interface ProtoTimestamp { seconds?: number | string; nanos?: number }

const toTs = (s: string): ProtoTimestamp => flowTimeToTimestamp(s);
const fromTs = (t: ProtoTimestamp | undefined): string => timestampToFlowTime(Number(t?.seconds ?? 0), t?.nanos ?? 0);

export function flowToProto(f: Flow): Record<string, unknown> {
  const { time, is_reply, ...rest } = f;
  const out: Record<string, unknown> = { ...rest, time: toTs(time) };
  if (is_reply !== undefined) out['is_reply'] = { value: is_reply };
  return out;
}

export function protoToFlow(p: Record<string, unknown>): Flow {
  const { time, is_reply, ...rest } = p as Record<string, unknown> & { time?: ProtoTimestamp; is_reply?: { value?: boolean } };
  const flow = { ...rest, time: fromTs(time) } as Flow;
  if (is_reply !== undefined) flow.is_reply = is_reply.value === true;
  // uint64s come back as numbers (longs: Number); protojson writes them as strings.
  if (flow.l7?.latency_ns !== undefined) flow.l7.latency_ns = String(flow.l7.latency_ns);
  for (const list of [flow.egress_allowed_by, flow.ingress_allowed_by, flow.egress_denied_by, flow.ingress_denied_by]) {
    for (const pol of list ?? []) if (pol.revision !== undefined) pol.revision = String(pol.revision);
  }
  return flow;
}

export function responseToProto(r: GetFlowsResponse): Record<string, unknown> {
  const base = { node_name: r.node_name, time: toTs(r.time) };
  if (isFlowEnvelope(r)) return { ...base, flow: flowToProto(r.flow) };
  const { cpu, ...lost } = r.lost_events;
  return { ...base, lost_events: cpu === undefined ? lost : { ...lost, cpu: { value: cpu } } };
}

export function protoToResponse(p: Record<string, unknown>): GetFlowsResponse {
  const node_name = String(p['node_name'] ?? '');
  const time = fromTs(p['time'] as ProtoTimestamp | undefined);
  if (p['flow'] !== undefined) return { flow: protoToFlow(p['flow'] as Record<string, unknown>), node_name, time };
  const lost = (p['lost_events'] ?? {}) as { source?: string; num_events_lost?: number; cpu?: { value?: number } };
  return {
    lost_events: {
      source: (lost.source ?? 'UNKNOWN_LOST_EVENT_SOURCE') as 'HUBBLE_RING_BUFFER',
      num_events_lost: Number(lost.num_events_lost ?? 0),
      ...(lost.cpu?.value !== undefined ? { cpu: lost.cpu.value } : {}),
    },
    node_name,
    time,
  };
}

/** GetFlowsRequest → our query. Empty repeated fields (arrays: true) constrain nothing, as in proto3. */
export function requestToQuery(req: Record<string, unknown>): QueryWithoutSignal {
  const q: QueryWithoutSignal = {};
  const number = Number(req['number'] ?? 0);
  if (number > 0) {
    if (req['first'] === true) q.first = number;
    else q.last = number;
  }
  if (req['follow'] === true) q.follow = true;
  if (req['since'] !== undefined && req['since'] !== null) q.since = fromTs(req['since'] as ProtoTimestamp);
  if (req['until'] !== undefined && req['until'] !== null) q.until = fromTs(req['until'] as ProtoTimestamp);
  const wl = (req['whitelist'] ?? []) as FlowFilter[];
  const bl = (req['blacklist'] ?? []) as FlowFilter[];
  if (wl.length > 0) q.whitelist = wl;
  if (bl.length > 0) q.blacklist = bl;
  return q;
}

/** Our query → GetFlowsRequest (for clients). */
export function queryToRequest(q: QueryWithoutSignal): Record<string, unknown> {
  const req: Record<string, unknown> = { whitelist: q.whitelist ?? [], blacklist: q.blacklist ?? [] };
  if (q.last !== undefined) req['number'] = q.last;
  if (q.first !== undefined) { req['number'] = q.first; req['first'] = true; }
  if (q.follow) req['follow'] = true;
  if (q.since !== undefined) req['since'] = toTs(q.since);
  if (q.until !== undefined) req['until'] = toTs(q.until);
  return req;
}
