/**
 * The libc calls a transparent (TPROXY) UDP socket needs, through koffi:
 * Node's dgram can neither set IP_TRANSPARENT before bind() nor read the
 * IP_ORIGDSTADDR control message. Every socket here is SOCK_NONBLOCK;
 * readiness comes from libuv (`koffi.node.poll`) as in nflog-libc.ts.
 *
 * recvmmsg()/sendmmsg() work on native vectors laid out once per socket
 * (transparent-udp-mmsg.ts): no marshalling per call, pointers passed as
 * plain numbers. Addresses cross into JavaScript as host-order u32s; their
 * dotted-quad text is interned, so a busy socket does not build the same
 * few strings again for every datagram.
 */
import { watchReadable, libcLibrary, socketLibc } from '../../kernel/index.ts';

export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_RCVBUF = 8;
export const SO_SNDBUF = 7;
export const SO_RCVBUFFORCE = 33;
export const SO_MARK = 36;
export const SOL_IP = 0;
export const IP_TRANSPARENT = 19;
export const IP_RECVORIGDSTADDR = 20;
export const IP_ORIGDSTADDR = 20;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;

export { ERRNO, errnoName } from '../../kernel/index.ts';

/** What the transparent socket needs of libc: narrow, so a fake costs nothing. */
export interface UdpLibc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, addrlen: number): number;
  /** On a UDP socket: sets its one peer (the kernel then takes datagrams from that address only). */
  connect(fd: number, addr: Uint8Array, addrlen: number): number;
  getsockname(fd: number, addr: Uint8Array, addrlen: Int32Array): number;
  setsockopt(fd: number, level: number, name: number, value: Int32Array, len: number): number;
  /** `vec`: address of a struct mmsghdr array (RecvBatch); returns datagrams received or -1. */
  recvmmsg(fd: number, vec: number, vlen: number, flags: number): number;
  /** `vec`: address of a struct mmsghdr array (SendBatch); returns datagrams sent or -1. */
  sendmmsg(fd: number, vec: number, vlen: number, flags: number): number;
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrlen: number): number;
  close(fd: number): number;
  errno(): number;
  watchReadable(fd: number, onReadable: () => void): { close(): void; unref(): void };
}

let bound: UdpLibc | undefined;

export function udpLibc(): UdpLibc {
  if (bound) return bound;
  const libc = libcLibrary();
  const getsockname = libc.func('int getsockname(int fd, void *addr, _Inout_ int *addrlen)');
  const connect = libc.func('int connect(int fd, const void *addr, uint32_t addrlen)');
  const recvmmsg = libc.func('int recvmmsg(int fd, uintptr_t vec, unsigned int vlen, int flags, uintptr_t timeout)');
  const sendmmsg = libc.func('int sendmmsg(int fd, uintptr_t vec, unsigned int vlen, int flags)');
  const sendto = libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)');
  bound = {
    ...socketLibc(),
    getsockname: (fd, a, l) => getsockname(fd, a, l) as number,
    connect: (fd, a, l) => connect(fd, a, l) as number,
    recvmmsg: (fd, v, n, f) => recvmmsg(fd, v, n, f, 0) as number,
    sendmmsg: (fd, v, n, f) => sendmmsg(fd, v, n, f) as number,
    sendto: (fd, b, l, f, a, al) => Number(sendto(fd, b, l, f, a, al)),
    watchReadable,
  };
  return bound;
}


/** struct sockaddr_in { u16 family (host order); u16 port (network); u32 addr (network); u8 zero[8] } */
export function sockaddrIn(ip: string, port: number, out: Uint8Array = new Uint8Array(16)): Uint8Array {
  writeSockaddrIn(out, 0, ipv4Address(ip), port);
  return out;
}

/** `a.b.c.d` as a host-order u32; a RangeError naming the text when it is not a dotted quad. */
export function ipv4Address(ip: string): number {
  const a = ipv4ToU32(ip);
  if (a < 0) throw new RangeError(`not an IPv4 address: ${ip}`);
  return a;
}

/** Writes a sockaddr_in for `ip` (host-order u32) and `port` at `off`. */
export function writeSockaddrIn(out: Uint8Array, off: number, ip: number, port: number): void {
  out[off] = AF_INET & 0xff;
  out[off + 1] = AF_INET >> 8;
  out[off + 2] = (port >> 8) & 0xff;
  out[off + 3] = port & 0xff;
  out[off + 4] = ip >>> 24;
  out[off + 5] = (ip >>> 16) & 0xff;
  out[off + 6] = (ip >>> 8) & 0xff;
  out[off + 7] = ip & 0xff;
  out.fill(0, off + 8, off + 16);
}

/** `a.b.c.d` as a host-order u32 (a number ≥ 0), or -1 when it is not a dotted quad. No allocation. */
export function ipv4ToU32(ip: string): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 255 || ++dots > 3) return -1;
      v = v * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      part = part * 10 + (c - 0x30);
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return v * 256 + part;
}

const ipTexts = new Map<number, string>();
const IP_TEXTS_MAX = 65536;

/** The dotted quad of a host-order u32, interned (a bounded cache: cleared when full). */
export function ipv4Text(ip: number): string {
  let t = ipTexts.get(ip);
  if (t === undefined) {
    t = `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
    if (ipTexts.size >= IP_TEXTS_MAX) ipTexts.clear();
    ipTexts.set(ip, t);
  }
  return t;
}

/** The address of the sockaddr_in at `off`, as a host-order u32. */
export function sockaddrU32(b: Uint8Array, off: number): number {
  return ((b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!) >>> 0;
}

/** Dotted quad of the sockaddr_in at `off` (interned). */
export function sockaddrIp(b: Uint8Array, off: number): string {
  return ipv4Text(sockaddrU32(b, off));
}

export function sockaddrPort(b: Uint8Array, off: number): number {
  return (b[off + 2]! << 8) | b[off + 3]!;
}
