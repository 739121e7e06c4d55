/**
 * The BPF maps' keys and values as bytes: a mirror of bpf/palisade.h
 * (change both together). Host-order fields are little-endian (x86-64,
 * arm64); addresses and L4 ports are network order, as the packet has them.
 *
 * Desired map contents are `MapContents` (hex key → hex value): the datapath
 * diffs them against what the kernel map holds and writes only the changes.
 */
import type { Libbpf } from './libbpf.ts';

export const MAP_NAMES = [
  'ipcache',
  'endpoints',
  'ep_ifindex',
  'policy',
  'ipblock_pods',
  'ct',
  'frags',
  'services',
  'svc_slots',
  'backends',
  'counters',
  'fwd_counters',
  'traffic',
  'lost_events',
  'events',
  'config',
] as const;
export type MapName = (typeof MAP_NAMES)[number];

/** Maps whose whole content the agent decides (diffed on every apply). */
export const STATE_MAPS = ['ipcache', 'endpoints', 'ep_ifindex', 'policy', 'ipblock_pods', 'services', 'svc_slots', 'backends'] as const;
export type StateMapName = (typeof STATE_MAPS)[number];

export type MapContents = Map<string, string>;

// Constants of palisade.h.
export const DIR_INGRESS = 1;
export const DIR_EGRESS = 2;
export const EP_F_INGRESS_POLICY = 1 << 0;
export const EP_F_INGRESS_ENFORCED = 1 << 1;
export const EP_F_EGRESS_POLICY = 1 << 2;
export const EP_F_EGRESS_ENFORCED = 1 << 3;
export const POLICY_ALLOW = 1;
export const POLICY_DENY = 2;
export const POLICY_REDIRECT = 3;
export const CFG_VERDICT_EVENTS = 1 << 0;
export const REASON_FORWARDED = 0;
export const EP_ID_MAX = 4096;

/** fwd_counters' slot for an endpoint's forwarded packets in one direction (palisade.h). */
export const fwdCounterKey = (epId: number, dir: number): string => ifindexKey(epId * 2 + (dir === DIR_EGRESS ? 1 : 0));

export const PROTO = { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132, ICMPv6: 58 } as const;

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

function ipBytes(ip: string, into: DataView, off: number): void {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  for (let i = 0; i < 4; i++) {
    const n = Number(parts[i]);
    if (!Number.isInteger(n) || n < 0 || n > 255) throw new Error(`not an IPv4 address: ${ip}`);
    into.setUint8(off + i, n);
  }
}

export function ipFromBytes(v: DataView, off: number): string {
  return `${v.getUint8(off)}.${v.getUint8(off + 1)}.${v.getUint8(off + 2)}.${v.getUint8(off + 3)}`;
}

function struct(size: number, fill: (v: DataView) => void): string {
  const b = new Uint8Array(size);
  fill(new DataView(b.buffer));
  return hex(b);
}

const view = (h: string): DataView => {
  const b = fromHex(h);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
};

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const u32leHex = (n: number): string => HEX_BYTE[n & 255]! + HEX_BYTE[(n >>> 8) & 255]! + HEX_BYTE[(n >>> 16) & 255]! + HEX_BYTE[n >>> 24]!;
function ipHex(ip: string): string {
  const parts = ip.split('.');
  let out = '';
  for (let i = 0; i < 4; i++) {
    const n = Number(parts[i]);
    if (parts.length !== 4 || !Number.isInteger(n) || n < 0 || n > 255 || parts[i] === '') throw new Error(`not an IPv4 address: ${ip}`);
    out += HEX_BYTE[n];
  }
  return out;
}

/** struct ipcache_key { u32 prefixlen; u32 addr; } — built as text: the FQDN path makes thousands per apply. */
export const ipcacheKey = (addr: string, prefixlen: number): string => u32leHex(prefixlen >>> 0) + ipHex(addr);
export const ipcacheValue = (identity: number): string => u32leHex(identity >>> 0) + '00000000';
export function decodeIpcacheKey(h: string): { addr: string; prefixlen: number } {
  const v = view(h);
  return { prefixlen: v.getUint32(0, true), addr: ipFromBytes(v, 4) };
}

/** endpoints key: the pod address (network order). */
export const endpointKey = (ip: string): string => struct(4, (v) => ipBytes(ip, v, 0));
/** ep_ifindex key: the host veth's ifindex. */
export const ifindexKey = (ifindex: number): string => struct(4, (v) => v.setUint32(0, ifindex, true));

export interface EndpointInfoValue {
  ifindex: number;
  identity: number;
  epId: number;
  flags: number;
  ip: string;
}
/** struct endpoint_info { u32 ifindex; u32 identity; u16 ep_id; u16 flags; u32 ip; } */
export const endpointValue = (e: EndpointInfoValue): string =>
  struct(16, (v) => {
    v.setUint32(0, e.ifindex, true);
    v.setUint32(4, e.identity, true);
    v.setUint16(8, e.epId, true);
    v.setUint16(10, e.flags, true);
    ipBytes(e.ip, v, 12);
  });
export function decodeEndpointValue(h: string): EndpointInfoValue {
  const v = view(h);
  return { ifindex: v.getUint32(0, true), identity: v.getUint32(4, true), epId: v.getUint16(8, true), flags: v.getUint16(10, true), ip: ipFromBytes(v, 12) };
}

export interface PolicyKey {
  peer: number;
  epId: number;
  /** host order; 0 = any (ICMP: the type) */
  port: number;
  /** 0 = any */
  proto: number;
  dir: number;
}
/** struct policy_key { u32 peer_id; u16 ep_id; u16 dport; u8 proto; u8 dir; u16 pad; } */
export const policyKey = (k: PolicyKey): string =>
  struct(12, (v) => {
    v.setUint32(0, k.peer, true);
    v.setUint16(4, k.epId, true);
    v.setUint16(6, k.port, true);
    v.setUint8(8, k.proto);
    v.setUint8(9, k.dir);
  });
/** struct policy_value { u8 action; u8 pad; u16 proxy_port; } (proxy_port: POLICY_REDIRECT only) */
export const policyValue = (action: number, proxyPort = 0): string =>
  struct(4, (v) => {
    v.setUint8(0, action);
    v.setUint16(2, proxyPort, true);
  });
export function decodePolicyValue(h: string): { action: number; proxyPort: number } {
  const v = view(h);
  return { action: v.getUint8(0), proxyPort: v.getUint16(2, true) };
}

/** struct svc_key { u32 addr; u16 port (network order); u8 proto; u8 pad; } */
export const svcKey = (addr: string, port: number, proto: number): string =>
  struct(8, (v) => {
    ipBytes(addr, v, 0);
    v.setUint16(4, port, false);
    v.setUint8(6, proto);
  });
/** struct svc_value { u32 svc_id; u16 count; u16 flags; } */
export const svcValue = (svcId: number, count: number): string =>
  struct(8, (v) => {
    v.setUint32(0, svcId, true);
    v.setUint16(4, count, true);
  });
export const decodeSvcValue = (h: string): { svcId: number; count: number } => {
  const v = view(h);
  return { svcId: v.getUint32(0, true), count: v.getUint16(4, true) };
};
/** struct slot_key { u32 svc_id; u32 slot; } → u32 backend id */
export const slotKey = (svcId: number, slot: number): string =>
  struct(8, (v) => {
    v.setUint32(0, svcId, true);
    v.setUint32(4, slot, true);
  });
export const u32Value = (n: number): string => struct(4, (v) => v.setUint32(0, n, true));
export const decodeU32 = (h: string): number => view(h).getUint32(0, true);
/** backends: u32 id → struct backend { u32 addr; u16 port (network order); u16 pad; } */
export const backendValue = (addr: string, port: number): string =>
  struct(8, (v) => {
    ipBytes(addr, v, 0);
    v.setUint16(4, port, false);
  });
export function decodeBackendValue(h: string): { addr: string; port: number } {
  const v = view(h);
  return { addr: ipFromBytes(v, 0), port: v.getUint16(4, false) };
}

/** struct node_config { u32 underlay_ifindex; u32 cluster_addr; u32 cluster_mask; u32 flags; } */
export function nodeConfigValue(underlayIfindex: number, clusterCIDR: string, flags: number): string {
  const [addr, len] = clusterCIDR.split('/');
  const bits = Number(len);
  return struct(16, (v) => {
    v.setUint32(0, underlayIfindex, true);
    ipBytes(addr ?? '0.0.0.0', v, 4);
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    v.setUint32(8, mask, false);
    // The address masked, as the program compares it.
    v.setUint32(4, (v.getUint32(4, false) & mask) >>> 0, false);
    v.setUint32(12, flags, true);
  });
}

/** struct counter_key { u16 ep_id; u8 dir; u8 reason; } */
export function decodeCounterKey(h: string): { epId: number; dir: number; reason: number } {
  const v = view(h);
  return { epId: v.getUint16(0, true), dir: v.getUint8(2), reason: v.getUint8(3) };
}

/** struct traffic_key { u32 saddr; u32 daddr; } (network order) */
export function decodeTrafficKey(h: string): { source: string; destination: string } {
  const v = view(h);
  return { source: ipFromBytes(v, 0), destination: ipFromBytes(v, 4) };
}

/** One pinned map, opened by the loaded object. */
export class BpfMap {
  readonly name: string;
  readonly fd: number;
  readonly maxEntries: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly #bpf: Libbpf;

  constructor(bpf: Libbpf, name: string, fd: number, maxEntries: number, keySize: number, valueSize: number) {
    this.#bpf = bpf;
    this.name = name;
    this.fd = fd;
    this.maxEntries = maxEntries;
    this.keySize = keySize;
    this.valueSize = valueSize;
  }

  update(key: string, value: string): void {
    this.#bpf.update(this.fd, fromHex(key), fromHex(value));
  }

  delete(key: string): boolean {
    return this.#bpf.delete(this.fd, fromHex(key));
  }

  lookup(key: string): string | undefined {
    const v = new Uint8Array(this.valueSize);
    return this.#bpf.lookup(this.fd, fromHex(key), v) ? hex(v) : undefined;
  }

  /** Every key, in the kernel's order. */
  keys(): string[] {
    const out: string[] = [];
    let prev: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(this.keySize);
      if (!this.#bpf.nextKey(this.fd, prev, next)) break;
      out.push(hex(next));
      prev = next;
      if (out.length > this.maxEntries * 2) break; // a map changing under us must not loop forever
    }
    return out;
  }

  /** The whole content (keys whose entry vanished meanwhile are left out). */
  dump(): MapContents {
    const out: MapContents = new Map();
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v !== undefined) out.set(k, v);
    }
    return out;
  }

  /** Per-CPU maps: zero in every CPU's copy. */
  zeroPerCpu(key: string, cpus: number): void {
    this.#bpf.update(this.fd, fromHex(key), new Uint8Array(Math.ceil(this.valueSize / 8) * 8 * cpus));
  }

  /** Per-CPU maps: the value of each CPU, summed as u64 fields. */
  lookupPerCpuSum(key: string, cpus: number, fields: number): bigint[] | undefined {
    const stride = Math.ceil(this.valueSize / 8) * 8;
    const buf = new Uint8Array(stride * cpus);
    if (!this.#bpf.lookup(this.fd, fromHex(key), buf)) return undefined;
    const v = new DataView(buf.buffer);
    const sums: bigint[] = new Array<bigint>(fields).fill(0n);
    for (let c = 0; c < cpus; c++) for (let i = 0; i < fields; i++) sums[i]! += v.getBigUint64(c * stride + i * 8, true);
    return sums;
  }
}
