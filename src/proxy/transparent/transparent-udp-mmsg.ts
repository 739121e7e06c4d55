/**
 * recvmmsg() / sendmmsg() vectors in native memory, for the datapath's UDP
 * sockets: one syscall (and one koffi call) moves a whole batch of
 * datagrams, instead of one recvmsg() per datagram plus the EAGAIN that
 * ends each drain. Everything is laid out once per socket, so the packet
 * path writes lengths and addresses into fixed offsets and allocates nothing.
 *
 *   0                 struct mmsghdr[count] (64 each): msghdr (56) + msg_len (u32) + pad
 *   AUX               per entry: sockaddr_in (16), iovec (16), control (RecvBatch only)
 *   DATA              per entry: slotBytes of payload
 *
 *   struct msghdr (LP64): 0 name*  8 namelen(u32)  16 iov*  24 iovlen  32 control*  40 controllen  48 flags(i32)
 *
 * Only for 64-bit Linux (LP64), which is what Palisade runs on.
 */
import koffi from 'koffi';
import { IP_ORIGDSTADDR, SOL_IP, writeSockaddrIn } from './transparent-udp-libc.ts';

const MMSGHDR = 64;
const NAME = 16;
const IOV = 16;

/** Native memory for `bytes` bytes: the pointer's address as a number, and views of it. */
class NativeBlock {
  readonly ptr: unknown;
  readonly address: number;
  readonly bytes: Uint8Array;
  readonly u32: Uint32Array;
  readonly view: DataView;
  #freed = false;

  constructor(bytes: number) {
    if (process.arch !== 'x64' && process.arch !== 'arm64') throw new Error(`UDP batches: unsupported arch ${process.arch}`);
    this.ptr = koffi.alloc('uint8_t', bytes);
    // Below 2^47 on x86-64 and arm64 Linux: exact as a number, which koffi takes for uintptr_t.
    this.address = Number(koffi.address(this.ptr));
    const ab = koffi.view(this.ptr, bytes);
    this.bytes = new Uint8Array(ab);
    this.u32 = new Uint32Array(ab);
    this.view = new DataView(ab);
  }

  /** A 64-bit little-endian field holding an address or size. */
  set64(off: number, v: number): void {
    this.u32[off >> 2] = v % 0x1_0000_0000;
    this.u32[(off >> 2) + 1] = Math.floor(v / 0x1_0000_0000);
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    koffi.free(this.ptr);
  }
}

/**
 * A recvmmsg() vector: `count` datagrams of up to `slotBytes` each, with the
 * sender's address and room for an IP_ORIGDSTADDR control message.
 */
export class RecvBatch {
  static readonly CONTROL_BYTES = 64;
  readonly count: number;
  readonly slotBytes: number;
  readonly block: NativeBlock;
  readonly #aux: number;
  readonly #data: number;
  static readonly #AUX_BYTES = NAME + IOV + RecvBatch.CONTROL_BYTES;

  constructor(count: number, slotBytes: number) {
    this.count = count;
    this.slotBytes = slotBytes;
    this.#aux = count * MMSGHDR;
    this.#data = this.#aux + count * RecvBatch.#AUX_BYTES;
    const b = (this.block = new NativeBlock(this.#data + count * slotBytes));
    for (let i = 0; i < count; i++) {
      const m = i * MMSGHDR;
      const name = this.nameOffset(i);
      b.set64(m, b.address + name);
      b.set64(m + 16, b.address + name + NAME);
      b.set64(m + 24, 1);
      b.set64(m + 32, b.address + name + NAME + IOV);
      b.set64(name + NAME, b.address + this.dataOffset(i));
      b.set64(name + NAME + 8, slotBytes);
    }
    this.reset(count);
  }

  get address(): number {
    return this.block.address;
  }

  get bytes(): Uint8Array {
    return this.block.bytes;
  }

  /** Restores the in/out lengths recvmmsg() changed in the first `n` entries; call before each recvmmsg(). */
  reset(n: number): void {
    const u = this.block.u32;
    for (let i = 0; i < n; i++) {
      const m = (i * MMSGHDR) >> 2;
      u[m + 2] = NAME; // msg_namelen
      u[m + 10] = RecvBatch.CONTROL_BYTES; // msg_controllen (low word; the high word stays 0)
      u[m + 12] = 0; // msg_flags
    }
  }

  /** The datagram's real length (recvmmsg with MSG_TRUNC); more than slotBytes means it was cut. */
  length(i: number): number {
    return this.block.u32[((i * MMSGHDR) >> 2) + 14]!;
  }

  nameOffset(i: number): number {
    return this.#aux + i * RecvBatch.#AUX_BYTES;
  }

  dataOffset(i: number): number {
    return this.#data + i * this.slotBytes;
  }

  /** Offset of entry i's IP_ORIGDSTADDR sockaddr_in in `bytes`, or -1. */
  origDstOffset(i: number): number {
    const v = this.block.view;
    const clen = v.getUint32(i * MMSGHDR + 40, true);
    const control = this.nameOffset(i) + NAME + IOV;
    let off = 0;
    while (off + 16 <= clen) {
      const at = control + off;
      const len = v.getUint32(at, true);
      if (len < 16 || v.getUint32(at + 4, true) !== 0 || off + len > clen) return -1;
      const level = v.getInt32(at + 8, true);
      const type = v.getInt32(at + 12, true);
      if (level === SOL_IP && type === IP_ORIGDSTADDR && len >= 16 + 8) return at + 16;
      off += (len + 7) & ~7; // CMSG_ALIGN
    }
    return -1;
  }

  /** Tests: writes entry i's control length as recvmmsg() would. */
  setControlLength(i: number, len: number): void {
    this.block.set64(i * MMSGHDR + 40, len);
  }

  /** Tests: the control area of entry i. */
  controlOffset(i: number): number {
    return this.nameOffset(i) + NAME + IOV;
  }

  free(): void {
    this.block.free();
  }
}

/**
 * A sendmmsg() vector: up to `count` datagrams of up to `slotBytes` each,
 * queued with add() (the payload is copied in) and sent by the owner.
 */
export class SendBatch {
  readonly count: number;
  readonly slotBytes: number;
  readonly block: NativeBlock;
  readonly #aux: number;
  readonly #data: number;
  #n = 0;

  constructor(count: number, slotBytes: number) {
    this.count = count;
    this.slotBytes = slotBytes;
    this.#aux = count * MMSGHDR;
    this.#data = this.#aux + count * (NAME + IOV);
    const b = (this.block = new NativeBlock(this.#data + count * slotBytes));
    for (let i = 0; i < count; i++) {
      const m = i * MMSGHDR;
      const name = this.#aux + i * (NAME + IOV);
      b.set64(m, b.address + name);
      b.u32[(m + 8) >> 2] = NAME;
      b.set64(m + 16, b.address + name + NAME);
      b.set64(m + 24, 1);
      b.set64(name + NAME, b.address + this.#data + i * slotBytes);
    }
  }

  /** Datagrams queued. */
  get length(): number {
    return this.#n;
  }

  get full(): boolean {
    return this.#n === this.count;
  }

  /** Address of entry i, for sendmmsg(fd, addressOf(i), length - i, …). */
  addressOf(i: number): number {
    return this.block.address + i * MMSGHDR;
  }

  /** Queues `payload` (≤ slotBytes) to ip:port (`ip` as a host-order u32); false when full or too large. */
  add(ip: number, port: number, payload: Uint8Array): boolean {
    if (this.#n === this.count || payload.length > this.slotBytes) return false;
    const i = this.#n++;
    const b = this.block;
    const name = this.#aux + i * (NAME + IOV);
    writeSockaddrIn(b.bytes, name, ip, port);
    b.set64(name + NAME + 8, payload.length);
    b.bytes.set(payload, this.#data + i * this.slotBytes);
    return true;
  }

  clear(): void {
    this.#n = 0;
  }

  free(): void {
    this.block.free();
  }
}
