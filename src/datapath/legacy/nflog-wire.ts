/**
 * nfnetlink_log on the wire (pure; no I/O): the config messages we send and
 * the packet messages the kernel sends back, plus the IPv4/L4 header digest a
 * flow record needs.
 *
 *   recv() datagram = nlmsghdr₁ payload₁ pad │ nlmsghdr₂ payload₂ pad │ …
 *   NFULNL_MSG_PACKET payload = nfgenmsg { family u8, version u8, res_id be16 = group }
 *                               then nlattrs { len u16, type u16 (host order) } data, pad to 4
 *
 * Byte order (include/uapi/linux/netfilter/nfnetlink_log.h): netlink headers
 * and attribute headers are host order; every nfnetlink_log attribute value
 * (mark, ifindex, timestamp, uid, seq, …) is big-endian.
 *
 * Robustness rule: a message we cannot trust is dropped and reported through
 * `onMalformed`; nothing here throws. A bad `nlmsg_len` ends the datagram
 * (there is no way to find the next header); a bad attribute drops only its
 * message.
 */
import { endianness } from 'node:os';

// include/uapi/linux/netlink.h
export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLA_F_NESTED = 1 << 15;
export const NLA_F_NET_BYTEORDER = 1 << 14;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

// include/uapi/linux/netfilter/nfnetlink.h, nfnetlink_compat.h
export const NFNL_SUBSYS_ULOG = 4;
export const NFNETLINK_V0 = 0;
export const NFULNL_MSG_PACKET = 0;
export const NFULNL_MSG_CONFIG = 1;
export const NFLOG_PACKET_TYPE = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
export const NFLOG_CONFIG_TYPE = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;

// enum nfulnl_attr_type
export const NFULA_PACKET_HDR = 1; // struct nfulnl_msg_packet_hdr { be16 hw_protocol; u8 hook; u8 pad }
export const NFULA_MARK = 2; // be32
export const NFULA_TIMESTAMP = 3; // struct nfulnl_msg_packet_timestamp { be64 sec; be64 usec }
export const NFULA_IFINDEX_INDEV = 4; // be32
export const NFULA_IFINDEX_OUTDEV = 5; // be32
export const NFULA_PAYLOAD = 9; // the network-layer packet, up to copy_range bytes
export const NFULA_PREFIX = 10; // NUL-terminated string
export const NFULA_UID = 11; // be32
export const NFULA_SEQ = 12; // be32, per-instance, with NFULNL_CFG_F_SEQ
export const NFULA_GID = 14; // be32

// enum nfulnl_attr_config, nfulnl_msg_config_cmds, copy modes, flags
export const NFULA_CFG_CMD = 1;
export const NFULA_CFG_MODE = 2;
export const NFULA_CFG_NLBUFSIZ = 3;
export const NFULA_CFG_TIMEOUT = 4;
export const NFULA_CFG_QTHRESH = 5;
export const NFULA_CFG_FLAGS = 6;
export const NFULNL_CFG_CMD_BIND = 1;
export const NFULNL_CFG_CMD_PF_BIND = 3;
export const NFULNL_CFG_CMD_PF_UNBIND = 4;
export const NFULNL_COPY_PACKET = 2;
export const NFULNL_CFG_F_SEQ = 0x1;
/** 0xffff - NLA_HDRLEN: the largest copy_range the kernel honours. */
export const NFULNL_COPY_RANGE_MAX = 0xffff - 4;

const HOST_LE = endianness() === 'LE';

/**
 * The IPv4 + L4 header facts of a logged packet. Ports, flags and ICMP
 * type/code are present when the captured bytes hold them and the packet is
 * not a non-first fragment.
 *
 *   { src: '10.250.0.1', dst: '10.250.0.1', protocol: 'TCP', length: 60,
 *     srcPort: 40122, dstPort: 9, tcpFlags: 0x02 }
 */
export interface ParsedIp {
  src: string;
  dst: string;
  protocol: 'TCP' | 'UDP' | 'ICMP' | number;
  /** IPv4 total length from the header (the packet's real size, not the captured bytes). */
  length: number;
  ttl: number;
  srcPort?: number;
  dstPort?: number;
  /** The TCP header's flag byte as on the wire (FIN 0x01 … CWR 0x80), passed on as is. */
  tcpFlags?: number;
  icmpType?: number;
  icmpCode?: number;
}

/**
 * One packet an nftables `log group <N> prefix "<tag>"` rule sent us.
 *
 *   { group: 7, prefix: 'palisade-test', mark: 0, hook: 3, outdev: 1,
 *     family: 2, seq: 0, payloadLength: 60, ip: { … } }
 *
 * `timestampNs` (wall clock) is only present when the kernel had stamped the
 * skb (received packets); locally generated ones usually carry none.
 */
export interface NflogPacket {
  group: number;
  prefix: string;
  mark: number;
  /** nfgenmsg family: 2 for IPv4, 10 for IPv6 (also in an `inet` table), 7 bridge. */
  family: number;
  timestampNs?: bigint;
  indev?: number;
  outdev?: number;
  /** Netfilter hook: 0 prerouting, 1 input, 2 forward, 3 output, 4 postrouting. */
  hook?: number;
  hwProtocol?: number;
  uid?: number;
  gid?: number;
  /** Per-group sequence number (NFULNL_CFG_F_SEQ); gaps are messages the kernel dropped. */
  seq?: number;
  /** IPv4 digest of the payload; undefined when there is no payload or it is not IPv4. */
  ip?: ParsedIp;
  /** Captured payload bytes (at most the copy range). */
  payloadLength: number;
}

/** Called for every malformed message with a constant reason string. */
export type OnMalformed = (reason: string) => void;
/** Called for every NLMSG_ERROR: `error` 0 is an ACK, otherwise a negative errno. */
export type OnNetlinkAck = (seq: number, error: number) => void;

const h16 = (b: Uint8Array, o: number): number => (HOST_LE ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!);
const h32 = (b: Uint8Array, o: number): number =>
  HOST_LE
    ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
    : ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const be32 = (b: Uint8Array, o: number): number =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
/** A be64 that must fit a double exactly (seconds, microseconds). */
const be64 = (b: Uint8Array, o: number): number => be32(b, o) * 0x1_0000_0000 + be32(b, o + 4);
const align4 = (n: number): number => (n + 3) & ~3;

/**
 * Walks every netlink message in one datagram. Packet messages go to
 * `onPacket`, ACK/error messages to `onAck`, NOOP/DONE/OVERRUN and other
 * subsystems' messages are skipped. `onPacket` runs synchronously and must
 * not keep `buf` (the reader reuses it).
 */
export function parseNflogMessages(
  buf: Uint8Array,
  onPacket: (p: NflogPacket) => void,
  onMalformed: OnMalformed,
  onAck?: OnNetlinkAck,
): void {
  const end = buf.length;
  let off = 0;
  while (off < end) {
    if (end - off < NLMSG_HDRLEN) return onMalformed('truncated netlink header');
    const len = h32(buf, off);
    if (len < NLMSG_HDRLEN || len > end - off) return onMalformed('bad nlmsg_len');
    const type = h16(buf, off + 4);
    if (type === NFLOG_PACKET_TYPE) {
      parsePacketMessage(buf, off + NLMSG_HDRLEN, off + len, onPacket, onMalformed);
    } else if (type === NLMSG_ERROR) {
      // struct nlmsgerr { int error; struct nlmsghdr msg; … }; the header's seq is the request's.
      if (len < NLMSG_HDRLEN + 4) onMalformed('short nlmsgerr');
      else onAck?.(h32(buf, off + 8), h32(buf, off + NLMSG_HDRLEN) | 0);
    }
    off += align4(len);
  }
}

function parsePacketMessage(
  b: Uint8Array,
  start: number,
  end: number,
  onPacket: (p: NflogPacket) => void,
  onMalformed: OnMalformed,
): void {
  if (end - start < 4) return onMalformed('short nfgenmsg');
  const family = b[start]!;
  const group = be16(b, start + 2);
  let prefix = '';
  let mark = 0;
  let timestampNs: bigint | undefined;
  let indev: number | undefined;
  let outdev: number | undefined;
  let hook: number | undefined;
  let hwProtocol: number | undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  let seq: number | undefined;
  let payloadStart = -1;
  let payloadEnd = -1;
  let off = start + 4;
  while (off < end) {
    if (end - off < 4) return onMalformed('truncated attribute header');
    const alen = h16(b, off);
    if (alen < 4 || alen > end - off) return onMalformed('bad attribute length');
    const d = off + 4;
    const dlen = alen - 4;
    switch (h16(b, off + 2) & NLA_TYPE_MASK) {
      case NFULA_PACKET_HDR:
        if (dlen < 4) return onMalformed('short NFULA_PACKET_HDR');
        hwProtocol = be16(b, d);
        hook = b[d + 2]!;
        break;
      case NFULA_MARK:
        if (dlen < 4) return onMalformed('short NFULA_MARK');
        mark = be32(b, d);
        break;
      case NFULA_TIMESTAMP:
        if (dlen < 16) return onMalformed('short NFULA_TIMESTAMP');
        timestampNs = BigInt(be64(b, d)) * 1_000_000_000n + BigInt(be64(b, d + 8)) * 1000n;
        break;
      case NFULA_IFINDEX_INDEV:
        if (dlen < 4) return onMalformed('short NFULA_IFINDEX_INDEV');
        indev = be32(b, d);
        break;
      case NFULA_IFINDEX_OUTDEV:
        if (dlen < 4) return onMalformed('short NFULA_IFINDEX_OUTDEV');
        outdev = be32(b, d);
        break;
      case NFULA_PREFIX:
        prefix = cString(b, d, d + dlen);
        break;
      case NFULA_PAYLOAD:
        payloadStart = d;
        payloadEnd = d + dlen;
        break;
      case NFULA_UID:
        if (dlen < 4) return onMalformed('short NFULA_UID');
        uid = be32(b, d);
        break;
      case NFULA_GID:
        if (dlen < 4) return onMalformed('short NFULA_GID');
        gid = be32(b, d);
        break;
      case NFULA_SEQ:
        if (dlen < 4) return onMalformed('short NFULA_SEQ');
        seq = be32(b, d);
        break;
      default:
        break; // hwaddr, physdev, conntrack, vlan, l2 header: not needed for flows
    }
    off += align4(alen);
  }
  const payloadLength = payloadStart < 0 ? 0 : payloadEnd - payloadStart;
  onPacket({
    group,
    prefix,
    mark,
    family,
    timestampNs,
    indev,
    outdev,
    hook,
    hwProtocol,
    uid,
    gid,
    seq,
    ip: payloadStart < 0 ? undefined : parseIpv4(b, payloadStart, payloadEnd),
    payloadLength,
  });
}

/**
 * A NUL-terminated (or attribute-bounded) string. Rules log with a handful of
 * fixed tags, so decoded prefixes are kept in a small cache compared by
 * length, then bytes: the common case allocates no string.
 */
function cString(b: Uint8Array, start: number, end: number): string {
  let stop = start;
  while (stop < end && b[stop] !== 0) stop++;
  const len = stop - start;
  if (len === 0) return '';
  for (let i = 0; i < prefixCache.length; i++) {
    const e = prefixCache[i]!;
    if (e.bytes.length !== len) continue;
    let j = 0;
    while (j < len && e.bytes[j] === b[start + j]) j++;
    if (j === len) return e.text;
  }
  const bytes = b.slice(start, stop);
  const text = utf8.decode(bytes);
  if (prefixCache.length === PREFIX_CACHE_SIZE) prefixCache[prefixCacheNext++ % PREFIX_CACHE_SIZE] = { bytes, text };
  else prefixCache.push({ bytes, text });
  return text;
}
const PREFIX_CACHE_SIZE = 16;
const prefixCache: Array<{ bytes: Uint8Array; text: string }> = [];
let prefixCacheNext = 0;
const utf8 = new TextDecoder('utf-8', { fatal: false });

const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/**
 * Digests an IPv4 packet (RFC 791 header, then RFC 9293 TCP / RFC 768 UDP /
 * RFC 792 ICMP). Returns undefined for anything that is not a well-formed
 * IPv4 header; a truncated L4 header just leaves the L4 fields out.
 */
export function parseIpPacket(buf: Uint8Array): ParsedIp | undefined {
  return parseIpv4(buf, 0, buf.length);
}

/** parseIpPacket on b[start, end), without making a view per packet. */
function parseIpv4(b: Uint8Array, start: number, end: number): ParsedIp | undefined {
  if (end - start < 20) return undefined;
  const vihl = b[start]!;
  if (vihl >> 4 !== 4) return undefined;
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20 || end - start < ihl) return undefined;
  const proto = b[start + 9]!;
  const ip: ParsedIp = {
    src: `${b[start + 12]}.${b[start + 13]}.${b[start + 14]}.${b[start + 15]}`,
    dst: `${b[start + 16]}.${b[start + 17]}.${b[start + 18]}.${b[start + 19]}`,
    protocol: proto === IPPROTO_TCP ? 'TCP' : proto === IPPROTO_UDP ? 'UDP' : proto === IPPROTO_ICMP ? 'ICMP' : proto,
    length: be16(b, start + 2),
    ttl: b[start + 8]!,
    srcPort: undefined,
    dstPort: undefined,
    tcpFlags: undefined,
    icmpType: undefined,
    icmpCode: undefined,
  };
  if ((be16(b, start + 6) & 0x1fff) !== 0) return ip; // not the first fragment: no L4 header here
  const l4 = start + ihl;
  const have = end - l4;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
    if (have >= 4) {
      ip.srcPort = be16(b, l4);
      ip.dstPort = be16(b, l4 + 2);
    }
    if (proto === IPPROTO_TCP && have >= 14) {
      ip.tcpFlags = b[l4 + 13]!;
    }
  } else if (proto === IPPROTO_ICMP && have >= 2) {
    ip.icmpType = b[l4]!;
    ip.icmpCode = b[l4 + 1]!;
  }
  return ip;
}

export interface NflogConfig {
  cmd?: number;
  copyMode?: number;
  copyRange?: number;
  nlbufsiz?: number;
  /** Flush timeout in 1/100 s. */
  timeout?: number;
  qthresh?: number;
  flags?: number;
}

/**
 * An NFULNL_MSG_CONFIG request (NLM_F_REQUEST|NLM_F_ACK). The kernel applies
 * a BIND command and the settings in the same message together
 * (nfulnl_recv_config), so no packet is ever sent with default settings.
 */
export function buildConfigMessage(seq: number, family: number, group: number, c: NflogConfig): Uint8Array {
  const attrs: Array<[number, Uint8Array]> = [];
  if (c.cmd !== undefined) attrs.push([NFULA_CFG_CMD, Uint8Array.of(c.cmd)]);
  if (c.copyMode !== undefined) {
    // struct nfulnl_msg_config_mode { be32 copy_range; u8 copy_mode; u8 pad } __packed
    const m = new Uint8Array(6);
    writeBe32(m, 0, c.copyRange ?? 0);
    m[4] = c.copyMode;
    attrs.push([NFULA_CFG_MODE, m]);
  }
  if (c.nlbufsiz !== undefined) attrs.push([NFULA_CFG_NLBUFSIZ, be32Bytes(c.nlbufsiz)]);
  if (c.timeout !== undefined) attrs.push([NFULA_CFG_TIMEOUT, be32Bytes(c.timeout)]);
  if (c.qthresh !== undefined) attrs.push([NFULA_CFG_QTHRESH, be32Bytes(c.qthresh)]);
  if (c.flags !== undefined) attrs.push([NFULA_CFG_FLAGS, Uint8Array.of(c.flags >> 8, c.flags & 0xff)]);
  let len = NLMSG_HDRLEN + 4;
  for (const [, v] of attrs) len += align4(4 + v.length);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, len, HOST_LE);
  dv.setUint16(4, NFLOG_CONFIG_TYPE, HOST_LE);
  dv.setUint16(6, NLM_F_REQUEST | NLM_F_ACK, HOST_LE);
  dv.setUint32(8, seq >>> 0, HOST_LE);
  dv.setUint32(12, 0, HOST_LE); // nlmsg_pid 0: to the kernel
  out[16] = family;
  out[17] = NFNETLINK_V0;
  dv.setUint16(18, group, false); // res_id, big-endian
  let off = NLMSG_HDRLEN + 4;
  for (const [type, v] of attrs) {
    dv.setUint16(off, 4 + v.length, HOST_LE);
    dv.setUint16(off + 2, type, HOST_LE);
    out.set(v, off + 4);
    off += align4(4 + v.length);
  }
  return out;
}

function writeBe32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
function be32Bytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  writeBe32(b, 0, v);
  return b;
}
