/**
 * The Palisade node agent (one per node).
 *
 *   informers (API server) ─► policy engine ─┐
 *   CNI plugin ─► /v1/endpoints ─► registry ─┼─► datapath
 *   /healthz, /v1/status on a unix socket ◄──┘
 */
export { Agent, type AgentStatus, type FqdnCacheRow } from './agent.ts';
export { runAgent } from './main.ts';
export { loadAgentConfig, type AgentConfig } from './config.ts';
