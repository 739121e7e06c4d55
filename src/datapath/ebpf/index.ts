/**
 * The eBPF host-routing datapath: tc programs (bpf/palisade.bpf.c) that
 * route pod traffic with bpf_redirect_peer / bpf_redirect_neigh past
 * netfilter, enforce identity policy, track connections and translate
 * ClusterIPs in BPF maps, and report drops and verdicts through a ring buffer.
 *
 *   build.ts          clang → build/bpf/palisade.bpf.o (when stale)
 *   libbpf.ts         libbpf.so.1 through koffi (objects, maps, tc/tcx, ring buffer)
 *   hooks.ts          programs on a device's ingress/egress: tcx (6.6+), else clsact
 *   maps.ts           byte layout of every map (mirror of bpf/palisade.h)
 *   render.ts         DatapathState → desired map contents (pure): policy keys (allow, deny,
 *                     redirect to the L7 proxies), ipcache, endpoints, services
 *   cidr-identities.ts  local identities of policy prefixes
 *   fqdn-identities.ts  local identities of FQDN-learned addresses
 *   ebpf-datapath.ts  EbpfDatapath: load/re-adopt pins, diff + write, attach, status
 *   events.ts         ring buffer records → DatapathEvent
 *   bpffs.ts          the pin directory on bpffs
 */
export { EbpfDatapath } from './ebpf-datapath.ts';
export { buildBpfObject } from './build.ts';
export { decodeEvent } from './events.ts';
export { isBpffs } from './bpffs.ts';
