/**
 * Flow observability: every decision Palisade makes, as a Hubble flow.
 *
 *   datapath (drops, forwards, policy verdicts) ─┐
 *   DNS / HTTP proxies (L7 records) ─────────────┤ makeFlow() ─► FlowStore.add(envelope)
 *                                                │                 │ ring (8,192, per node; lost-event counts)
 *                                                │                 ├─► onFlow ─► FlowMetrics.observeFlow ─► :9965 /metrics
 *                                                │                 ├─► onFlow ─► FlowLog.write ─► flows.log (+ .1 … rotated)
 *                                                │                 └─► query(filters, last/since/until, follow)
 *                                                │                        ├─► GET /v1/flows (NDJSON, agent socket)
 *                                                │                        └─► Observer gRPC (agent)
 *   palisade observe / Observer gRPC (relay) ◄── relayFlows(FlowSource per node: unix-client streamFlows)
 *   palisade ui --relay ◄── observerFlowSource (grpc-client.ts: a relay's GetFlows / GetNodes as a FlowSource)
 *
 * Shapes are Hubble's: Flow and GetFlowsResponse are protojson with proto
 * field names (flow.ts), filters are FlowFilter (filter.ts), metric names
 * and labels are Hubble's (metrics.ts), the gRPC service is observer.Observer
 * (proto/). Caveats: filters cover the FlowFilter fields listed in filter.ts
 * (no service, cluster or trace-id filters); relay follow streams interleave in
 * arrival order, not time order; proto files carry the subset of Hubble's
 * messages Palisade fills.
 */
export { DROP_REASONS, EVENT_TYPE, envelope, formatFlowTime, makeFlow, parseFlowTime, timestampToFlowTime, type Endpoint, type Flow, type FlowEnvelope, type FlowVerdict, type GetFlowsResponse, type Layer4, type Policy } from './flow.ts';
export { compileFilters, FlowFilterError, parseEventType, type FlowFilter, type FlowPredicate } from './filter.ts';
export { FlowStore, type FlowStoreStatus } from './store.ts';
export { flowsQueryString, parseFlowsQuery, parseTimeArg } from './query-params.ts';
export { getAgentJson, unixFlowSource } from './unix-client.ts';
export { relayFlows, type FlowSource } from './relay.ts';
export { observerFlowSource, type ObserverFlowSource } from './grpc-client.ts';
export { FlowMetrics, handleMetricsRequest, type WorkloadPairTotals, type WorkloadRef } from './metrics.ts';
export { startObserverServer } from './grpc-server.ts';
export { FlowLog } from './flow-log.ts';
export { makePrinter, OUTPUT_FORMATS, type OutputFormat } from './flow-printer.ts';
export { handleFlowsRequest } from './http-api.ts';
export { parseTcpFlags } from './query-params.ts';
export { FLOW_VERDICTS } from './flow.ts';
