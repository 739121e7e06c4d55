/**
 * The datapath: everything kernel-specific about enforcing policy, behind one
 * interface (types.ts).
 *
 *   legacy/   routing + nftables (baseline)
 *   ebpf/     tc programs + BPF maps: host routing past netfilter, policy, CT, ClusterIPs
 */
export * from './types.ts';
export { LegacyDatapath } from './legacy/legacy-datapath.ts';
export { openNflog, type NflogReader, type NflogPacket } from './legacy/nflog.ts';
export { NFLOG_GROUP, NFLOG_PROBE } from './legacy/render-policy.ts';
export { EbpfDatapath, buildBpfObject, bpfObjectStale, isBpffs, type DatapathEvent, type EbpfStatus } from './ebpf/index.ts';
