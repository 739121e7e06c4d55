/**
 * The libc calls a transparent (TPROXY) UDP socket needs, through koffi:
 * Node's dgram can neither set IP_TRANSPARENT before bind() nor read the
 * IP_ORIGDSTADDR control message. Every socket here is SOCK_NONBLOCK;
 * readiness comes from libuv (`koffi.node.poll`) as in nflog-libc.ts.
 *
 * recvmsg() works on one native block laid out once per socket (no
 * marshalling per call): msghdr, the peer's sockaddr_in, one iovec, the
 * control buffer and the data buffer, all at fixed offsets, read back through
 * a koffi.view of the same memory.
 */
import koffi from 'koffi';
import { watchReadable } from './libuv-poll.ts';
import { libcLibrary, socketLibc } from './libc.ts';

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
export const MSG_CTRUNC = 0x08;

export { ERRNO, errnoName } from './libc.ts';

/** What the transparent socket needs of libc: narrow, so a fake costs nothing. */
export interface UdpLibc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, addrlen: number): number;
  getsockname(fd: number, addr: Uint8Array, addrlen: Int32Array): number;
  setsockopt(fd: number, level: number, name: number, value: Int32Array, len: number): number;
  /** `msg` is a native pointer (koffi.alloc), see RecvBlock. */
  recvmsg(fd: number, msg: unknown, flags: number): number;
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrlen: number): number;
  close(fd: number): number;
  errno(): number;
  watchReadable(fd: number, onReadable: () => void): { close(): void };
}

let bound: UdpLibc | undefined;

export function udpLibc(): UdpLibc {
  if (bound) return bound;
  const libc = libcLibrary();
  const getsockname = libc.func('int getsockname(int fd, void *addr, _Inout_ int *addrlen)');
  const recvmsg = libc.func('intptr_t recvmsg(int fd, void *msg, int flags)');
  const sendto = libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)');
  bound = {
    ...socketLibc(),
    getsockname: (fd, a, l) => getsockname(fd, a, l) as number,
    recvmsg: (fd, m, f) => Number(recvmsg(fd, m, f)),
    sendto: (fd, b, l, f, a, al) => Number(sendto(fd, b, l, f, a, al)),
    watchReadable,
  };
  return bound;
}


/** struct sockaddr_in { u16 family (host order); u16 port (network); u32 addr (network); u8 zero[8] } */
export function sockaddrIn(ip: string, port: number, out: Uint8Array = new Uint8Array(16)): Uint8Array {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${ip}`);
  out.fill(0);
  out[0] = AF_INET & 0xff;
  out[1] = AF_INET >> 8;
  out[2] = (port >> 8) & 0xff;
  out[3] = port & 0xff;
  for (let i = 0; i < 4; i++) {
    const n = Number(parts[i]);
    if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`not an IPv4 address: ${ip}`);
    out[4 + i] = n;
  }
  return out;
}

/**
 * One recvmsg() block in native memory:
 *
 *   0    struct msghdr (56): name*, namelen(u32), iov*, iovlen(size_t), control*, controllen(size_t), flags(i32)
 *   64   struct sockaddr_in (16)        — the sender
 *   80   struct iovec (16): base*, len  — → DATA
 *   128  control (CONTROL_BYTES)        — cmsghdr{len(size_t) level(i32) type(i32)} + sockaddr_in
 *   DATA payload (dataBytes)
 *
 * Only for 64-bit Linux (LP64), which is what Palisade runs on.
 */
export class RecvBlock {
  static readonly NAME = 64;
  static readonly IOV = 80;
  static readonly CONTROL = 128;
  static readonly CONTROL_BYTES = 128;
  static readonly DATA = 256;
  readonly ptr: unknown;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly dataBytes: number;
  #freed = false;

  constructor(dataBytes: number) {
    if (process.arch !== 'x64' && process.arch !== 'arm64') throw new Error(`transparent UDP: unsupported arch ${process.arch}`);
    this.dataBytes = dataBytes;
    const total = RecvBlock.DATA + dataBytes;
    this.ptr = koffi.alloc('uint8_t', total);
    const ab = koffi.view(this.ptr, total);
    this.bytes = new Uint8Array(ab);
    this.view = new DataView(ab);
    const base = koffi.address(this.ptr);
    this.view.setBigUint64(0, base + BigInt(RecvBlock.NAME), true);
    this.view.setBigUint64(16, base + BigInt(RecvBlock.IOV), true);
    this.view.setBigUint64(24, 1n, true);
    this.view.setBigUint64(32, base + BigInt(RecvBlock.CONTROL), true);
    this.view.setBigUint64(RecvBlock.IOV, base + BigInt(RecvBlock.DATA), true);
    this.view.setBigUint64(RecvBlock.IOV + 8, BigInt(dataBytes), true);
  }

  /** Resets the in/out lengths recvmsg() changes; call before each recvmsg(). */
  reset(): void {
    this.view.setUint32(8, 16, true); // msg_namelen
    this.view.setBigUint64(40, BigInt(RecvBlock.CONTROL_BYTES), true); // msg_controllen
    this.view.setInt32(48, 0, true); // msg_flags
  }

  get flags(): number {
    return this.view.getInt32(48, true);
  }

  /** Offset of the IP_ORIGDSTADDR sockaddr_in in the block, or -1. */
  origDstOffset(): number {
    const clen = Number(this.view.getBigUint64(40, true));
    let off = 0;
    while (off + 16 <= clen) {
      const at = RecvBlock.CONTROL + off;
      const len = Number(this.view.getBigUint64(at, true));
      if (len < 16 || off + len > clen) return -1;
      const level = this.view.getInt32(at + 8, true);
      const type = this.view.getInt32(at + 12, true);
      if (level === SOL_IP && type === IP_ORIGDSTADDR && len >= 16 + 8) return at + 16;
      off += (len + 7) & ~7; // CMSG_ALIGN
    }
    return -1;
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    koffi.free(this.ptr);
  }
}

/** Dotted quad of the sockaddr_in at `off`. */
export function sockaddrIp(b: Uint8Array, off: number): string {
  return `${b[off + 4]}.${b[off + 5]}.${b[off + 6]}.${b[off + 7]}`;
}

export function sockaddrPort(b: Uint8Array, off: number): number {
  return (b[off + 2]! << 8) | b[off + 3]!;
}
