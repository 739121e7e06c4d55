/**
 * The datapath: everything kernel-specific, behind one interface (types.ts).
 *
 *   legacy/   routing + nftables (baseline)
 *   ebpf/     tc programs + BPF maps: host routing past netfilter, policy, CT, ClusterIPs
 *   transparent-*.ts  the proxies' sockets (IP_TRANSPARENT): both datapaths steer L7 and DNS to them
 *   lab-network.ts   the lab's namespaces, underlay and node plumbing
 *   pod-wiring.ts    a pod's veth, address and routes (used by the CNI plugin)
 */
export * from './types.ts';
export { LegacyDatapath } from './legacy/legacy-datapath.ts';
export { run, ipBatch, nft, CommandError } from './exec.ts';
export { createNetns, deleteNetns, listNetns, netnsExists, netnsPath, netnsPids } from './netns.ts';
export { buildLabNetwork, destroyLabNetwork, addNode, UNDERLAY_IF, type LabWiring, type LabNodeWiring } from './lab-network.ts';
export { assertNotRootNetns } from './root-guard.ts';
export { wirePod, unwirePod, checkPod, hostIfname, POD_GATEWAY } from './pod-wiring.ts';
export { openNflog, type NflogReader, type NflogPacket } from './legacy/nflog.ts';
export { NFLOG_GROUP, NFLOG_PROBE } from './legacy/render-policy.ts';
export { EbpfDatapath, buildBpfObject, bpfObjectStale, isBpffs, type DatapathEvent, type EbpfStatus } from './ebpf/index.ts';
export { listenTransparent, connectTransparent } from './transparent-tcp.ts';
export { openTransparentUdp, openUdp, openUdpFrom, type TransparentUdp, type TransparentDatagram } from './transparent-udp.ts';
