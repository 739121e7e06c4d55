/**
 * The datapath: everything kernel-specific about enforcing policy, behind one
 * interface (types.ts).
 *
 *   legacy/        routing + nftables (baseline); decisions logged over NFLOG
 *   ebpf/          tc programs + BPF maps: host routing past netfilter, policy, CT, ClusterIPs; ring buffer
 *   constants.ts   marks, the NFLOG group, the drop reason table: shared by both and the flow layer
 *   node-setup.ts  what both do to a node: sysctls, routes to peers, the proxies' policy route, masquerade
 */
export * from './types.ts';
export { DROP_REASONS, type DropReasonName } from './constants.ts';
export { LegacyDatapath } from './legacy/legacy-datapath.ts';
export { eventFromPacket as legacyEventFromPacket } from './legacy/events.ts';
export type { NflogPacket } from './legacy/nflog.ts';
export { EbpfDatapath, buildBpfObject, decodeEvent as decodeEbpfEvent, isBpffs } from './ebpf/index.ts';
