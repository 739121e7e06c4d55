/**
 * The web UI's server (`palisade ui`): Hubble flows in, the views of api.ts out.
 *
 *   lab agents (agent.sock: /v1/flows follow) ─┐                        ┌─► RecentFlows ring (5,000) ─► /api/flows, /api/flows/:id,
 *   or a Hubble Relay (Observer gRPC GetFlows) ─┴─► followFlows ─► ingest ┤                                  /api/flows/stream (≤ 4 batches/s)
 *                                                  (reconnects)          └─► Aggregator (bounded maps) ─► snapshot ≤ 4×/s, only when changed
 *                                                                                                           └─► one JSON string ─► /api/snapshot, /api/events (SSE)
 *   agents' /v1/status | relay GetNodes  ─► health every 5 s ─► snapshot.health
 *   agents' /v1/fqdn/cache (relay: names from DNS answers)  ─► /api/fqdn
 *   Prometheus (--prometheus)                                ─► /api/prom/query, /api/prom/query_range
 *   dist/ui (node scripts/build-ui.ts)                       ─► the page (/, app.js, app.css)
 *
 * Filters are `palisade observe`'s (the command passes its flag translation
 * in) plus the table's free text `q` (text-filter.ts).
 */
export { startUiServer } from './server.ts';
export { agentsSource, relaySource } from './sources.ts';
export type { FlowsPage, UiSnapshot } from './api.ts';
