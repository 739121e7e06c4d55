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
 *
 * Shapes are Hubble's: Flow and GetFlowsResponse are protojson with proto
 * field names (flow.ts), filters are FlowFilter (filter.ts), metric names
 * and labels are Hubble's (metrics.ts), the gRPC service is observer.Observer
 * (proto/). Caveats: filters cover the FlowFilter fields listed in filter.ts
 * (no service, cluster or trace-id filters); relay follow streams interleave in
 * arrival order, not time order; proto files carry the subset of Hubble's
 * messages Palisade fills.
 */
export {
  DROP_REASONS,
  EVENT_TYPE,
  TRACE_POINTS,
  envelope,
  endpointName,
  flowProtocol,
  flowToJson,
  formatFlowTime,
  isFlowEnvelope,
  makeFlow,
  nowMs,
  parseFlowTime,
  timestampToFlowTime,
  type DropReasonDesc,
  type Endpoint,
  type Flow,
  type FlowEnvelope,
  type FlowInit,
  type FlowVerdict,
  type GetFlowsResponse,
  type Layer4,
  type Layer7,
  type LostEventSource,
  type LostEventsEnvelope,
  type Policy,
  type TCPFlags,
  type TrafficDirection,
} from './flow.ts';
export { DEFAULT_RING_CAPACITY, FlowRing } from './ring-buffer.ts';
export { compileFilter, compileFilters, FlowFilterError, parseEventType, parseLabelSelector, type EventTypeFilter, type FlowFilter, type FlowPredicate } from './filter.ts';
export { FlowStore, type FlowListener, type FlowQuery, type FlowStoreOptions, type FlowStoreStatus } from './store.ts';
export { flowsQueryString, parseFlowsQuery, parseTimeArg } from './query-params.ts';
export { fetchFlowStatus, streamFlows, unixFlowSource } from './unix-client.ts';
export { interleave, mergeByTime, relayFlows, type FlowSource, type RelayOptions } from './relay.ts';
export { FlowMetrics, handleMetricsRequest, startMetricsServer, type ContextLabel, type FlowMetricsOptions } from './metrics.ts';
export { startObserverServer, type ObserverServer, type ObserverServerOptions } from './grpc-server.ts';
export { loadObserverPackage, protoToResponse, queryToRequest } from './grpc-codec.ts';
export { FlowLog, type FlowLogOptions } from './flow-log.ts';
export { flowSummary, flowTypeText, formatCompact, makePrinter, OUTPUT_FORMATS, type FlowPrinter, type OutputFormat } from './flow-printer.ts';
export { handleFlowsRequest } from './http-api.ts';
export { parseTcpFlags } from './query-params.ts';
export { FLOW_VERDICTS } from './flow.ts';
