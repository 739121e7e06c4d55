/**
 * The Palisade node agent (one per node).
 *
 *   informers (API server) ─► policy engine ─┐
 *   CNI plugin ─► /v1/endpoints ─► registry ─┼─► datapath
 *   /healthz, /v1/status on a unix socket ◄──┘
 *
 *   node proxy (own process): HTTP :15001, DNS :15053 ─► learned names, L7 records ─► agent
 */
export type { FqdnCacheRow } from './fqdn-mirror.ts';
export { runAgent } from './main.ts';
export { runNodeProxy } from './node-proxy.ts';
