/**
 * Packets that nftables logs to an NFLOG group (`log group <N> prefix "<tag>"`),
 * read from Node over netlink: the per-packet source of datapath flow events.
 *
 *   nft rule ─log group N─► nfnetlink_log instance (this netns, group N)
 *     ─netlink unicast─► our AF_NETLINK socket (SOCK_NONBLOCK, SO_RCVBUF)
 *     ─libuv poll: readable─► drain: recv() until EAGAIN (bounded per tick)
 *     ─parseNflogMessages─► NflogPacket ─► onPacket
 *
 * Configuration (one NFULNL_MSG_CONFIG, applied atomically with the BIND):
 * copy mode PACKET with a small copy range (headers are all a flow needs),
 * qthresh 1 and timeout 0 so every packet is sent at once, NFULNL_CFG_F_SEQ
 * so gaps in the per-group sequence count exactly how many messages the
 * kernel dropped.
 *
 * Losses: when the socket's receive buffer is full the kernel drops the
 * message and the next recv() fails once with ENOBUFS (once per congestion:
 * the kernel reports it again only after the queue was read empty); that is
 * counted in `stats.overruns` and reading goes on. `stats.lost` counts the
 * dropped messages themselves (sequence gaps, reported at once to `onLost`),
 * and `onDrainedAfterOverrun` lets the caller reveal a burst's tail.
 *
 * Caveats:
 * - The socket, and so the group, belongs to the network namespace of the
 *   calling process; only one socket per namespace may bind a group (EBUSY).
 * - Nothing else is needed in the namespace: nfnetlink_log delivers
 *   `log group` packets without any nf_log sysctl. PF_UNBIND/PF_BIND
 *   (`bindProtocolFamily`) are only needed before Linux 3.17, and they are not
 *   free: they make nfnetlink_log the namespace's default IPv4 logger
 *   (net.netfilter.nf_log.2), so they are off by default.
 * - IPv4 payloads are digested; other payloads come with `ip` undefined.
 */
import { assertNotRootNetns } from '../../kernel/index.ts';
import {
  AF_NETLINK,
  ERRNO,
  errnoName,
  MSG_DONTWAIT,
  MSG_TRUNC,
  NETLINK_NETFILTER,
  netlinkLibc,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOL_SOCKET,
  type NetlinkLibc,
} from './nflog-libc.ts';
import {
  buildConfigMessage,
  NFULNL_CFG_CMD_BIND,
  NFULNL_CFG_CMD_PF_BIND,
  NFULNL_CFG_CMD_PF_UNBIND,
  NFULNL_CFG_F_SEQ,
  NFULNL_COPY_PACKET,
  NFULNL_COPY_RANGE_MAX,
  parseNflogMessages,
  type NflogConfig,
  type NflogPacket,
} from './nflog-wire.ts';

export { parseIpPacket, parseNflogMessages } from './nflog-wire.ts';
export type { NflogPacket } from './nflog-wire.ts';

export interface NflogStats {
  /** Packets handed to onPacket. */
  received: number;
  /** Messages or datagrams dropped because they could not be parsed. */
  malformed: number;
  /** ENOBUFS from recv(): the kernel dropped messages because we were slow. */
  overruns: number;
  /** Messages the kernel dropped, from gaps in the per-group sequence. */
  lost: number;
}

export interface NflogReader {
  readonly group: number;
  readonly stats: Readonly<NflogStats>;
  /** Set when reading stopped on an unexpected socket error (the reader is then closed). */
  readonly error: Error | undefined;
  /** Stops reading at once and releases the group (closing the socket unbinds it). Idempotent. */
  close(): Promise<void>;
}

export interface NflogOptions {
  /** Bytes of each packet to copy (from the network header). Default 128. */
  copyRange?: number;
  /** Socket receive buffer (SO_RCVBUFFORCE, so beyond rmem_max). Default 4 MiB. */
  bufferBytes?: number;
  /** Send PF_UNBIND/PF_BIND for AF_INET first (pre-3.17 kernels). Default false. */
  bindProtocolFamily?: boolean;
  /** Called with the size of each sequence gap as soon as it is found (also added to `stats.lost`). */
  onLost?: (messages: number) => void;
  /**
   * Called when the socket has been read empty after an overrun. A gap shows
   * only before a later message, so the tail of a burst stays hidden until
   * something else is logged: a caller that can make the datapath log one
   * packet (a probe) reveals it. The queue is empty at this moment, so that
   * packet fits; if it is dropped all the same, that is a new overrun and
   * this is called again.
   */
  onDrainedAfterOverrun?: () => void;
}

const AF_INET = 2;
const AF_UNSPEC = 0;
const DEFAULT_COPY_RANGE = 128;
const DEFAULT_BUFFER_BYTES = 4 << 20;
/** Kernel-side batch buffer: at least NLMSG_GOODSIZE (ERANGE below), per-message skbs are trimmed. */
const NLBUFSIZ = 8192;
/** Larger than any datagram nfnetlink_log can build (copy range ≤ 64 KiB + metadata). */
const RECV_BUFFER_BYTES = 128 << 10;
/** Datagrams read per readable event before yielding to the event loop. */
const MAX_DATAGRAMS_PER_TICK = 512;
const ACK_TIMEOUT_MS = 2000;

/**
 * Opens a reader on NFLOG group `group` in the caller's network namespace.
 * `onPacket` runs synchronously on the event loop for each packet, must not
 * throw, and must copy what it keeps (the packet object is its own; the
 * receive buffer behind it is reused).
 */
export async function openNflog(
  group: number,
  onPacket: (p: NflogPacket) => void,
  opts: NflogOptions = {},
): Promise<NflogReader> {
  if (!Number.isInteger(group) || group < 0 || group > 0xffff) throw new RangeError(`nflog: bad group ${group}`);
  const copyRange = opts.copyRange ?? DEFAULT_COPY_RANGE;
  if (!Number.isInteger(copyRange) || copyRange < 1 || copyRange > NFULNL_COPY_RANGE_MAX) {
    throw new RangeError(`nflog: bad copyRange ${copyRange}`);
  }
  const bufferBytes = opts.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  assertNotRootNetns('nflog reader');
  const libc = netlinkLibc();
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (fd < 0) throw sysError('socket(AF_NETLINK, NETLINK_NETFILTER)', libc.errno());
  let reader: NetlinkNflogReader | undefined;
  try {
    setReceiveBuffer(libc, fd, bufferBytes);
    const sa = new Uint8Array(12); // struct sockaddr_nl { u16 family; u16 pad; u32 pid = 0 (kernel picks); u32 groups = 0 }
    new DataView(sa.buffer).setUint16(0, AF_NETLINK, true);
    if (libc.bind(fd, sa, sa.length) < 0) throw sysError('bind(AF_NETLINK)', libc.errno());
    reader = new NetlinkNflogReader(libc, fd, group, onPacket, opts);
    if (opts.bindProtocolFamily) {
      // Pre-3.17 idiom; errors are irrelevant on newer kernels.
      await reader.configure(AF_INET, 0, { cmd: NFULNL_CFG_CMD_PF_UNBIND }).catch(() => {});
      await reader.configure(AF_INET, 0, { cmd: NFULNL_CFG_CMD_PF_BIND }).catch(() => {});
    }
    await reader
      .configure(AF_UNSPEC, group, {
        cmd: NFULNL_CFG_CMD_BIND,
        copyMode: NFULNL_COPY_PACKET,
        copyRange,
        nlbufsiz: NLBUFSIZ,
        timeout: 0,
        qthresh: 1,
        flags: NFULNL_CFG_F_SEQ,
      })
      .catch((err: unknown) => {
        // nfulnl_recv_config: an instance owned by another portid gives EPERM
        // (checked before BIND's own EBUSY); EPERM is also what a caller
        // without CAP_NET_ADMIN gets.
        if (err instanceof Error && /EPERM|EBUSY/.test(err.message)) {
          throw new Error(
            `nflog: cannot bind group ${group}: already bound by another socket in this network namespace, or no CAP_NET_ADMIN`,
            { cause: err },
          );
        }
        throw err;
      });
    return reader;
  } catch (err) {
    if (reader) await reader.close();
    else libc.close(fd);
    throw err;
  }
}

function setReceiveBuffer(libc: NetlinkLibc, fd: number, bytes: number): void {
  const v = Int32Array.of(bytes);
  if (libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, v, 4) === 0) return;
  // Without CAP_NET_ADMIN: capped at net.core.rmem_max.
  if (libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, v, 4) < 0) throw sysError('setsockopt(SO_RCVBUF)', libc.errno());
}

function sysError(what: string, errno: number): Error {
  return new Error(`nflog: ${what} failed: ${errnoName(errno)}`);
}

interface PendingAck {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class NetlinkNflogReader implements NflogReader {
  readonly group: number;
  readonly stats: NflogStats = { received: 0, malformed: 0, overruns: 0, lost: 0 };
  #error: Error | undefined;
  readonly #libc: NetlinkLibc;
  readonly #fd: number;
  readonly #buf = new Uint8Array(RECV_BUFFER_BYTES);
  readonly #onPacket: (p: NflogPacket) => void;
  readonly #onLost: ((messages: number) => void) | undefined;
  readonly #onDrainedAfterOverrun: (() => void) | undefined;
  /** An overrun was read since the socket was last read empty. */
  #overrunPending = false;
  readonly #watch: { close(): void };
  readonly #pendingAcks = new Map<number, PendingAck>();
  #seq = 1;
  /** Sequence number the next packet should carry; -1 before the first. */
  #nextPacketSeq = -1;
  #closed = false;

  constructor(libc: NetlinkLibc, fd: number, group: number, onPacket: (p: NflogPacket) => void, opts: NflogOptions) {
    this.#libc = libc;
    this.#fd = fd;
    this.group = group;
    this.#onPacket = onPacket;
    this.#onLost = opts.onLost;
    this.#onDrainedAfterOverrun = opts.onDrainedAfterOverrun;
    this.#watch = libc.watchReadable(fd, this.#drain);
  }

  get error(): Error | undefined {
    return this.#error;
  }

  /** Sends one config request and resolves on its ACK (rejects with the errno). */
  configure(family: number, group: number, c: NflogConfig): Promise<void> {
    const seq = this.#seq++;
    const msg = buildConfigMessage(seq, family, group, c);
    return new Promise<void>((resolve, reject) => {
      if (this.#closed) return reject(new Error('nflog: reader closed'));
      if (this.#libc.send(this.#fd, msg, msg.length, 0) < 0) {
        return reject(sysError('send(NFULNL_MSG_CONFIG)', this.#libc.errno()));
      }
      const timer = setTimeout(() => {
        this.#pendingAcks.delete(seq);
        reject(new Error(`nflog: no ACK for config request ${seq}`));
      }, ACK_TIMEOUT_MS);
      this.#pendingAcks.set(seq, { resolve, reject, timer });
      // The kernel answers inside send(): the ACK is usually queued already.
      this.#drain();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch.close(); // stop polling before the fd number can be reused
    this.#libc.close(this.#fd);
    for (const [, p] of this.#pendingAcks) {
      clearTimeout(p.timer);
      p.reject(new Error('nflog: reader closed'));
    }
    this.#pendingAcks.clear();
  }

  readonly #drain = (): void => {
    const libc = this.#libc;
    const buf = this.#buf;
    for (let i = 0; i < MAX_DATAGRAMS_PER_TICK && !this.#closed; i++) {
      const n = libc.recv(this.#fd, buf, buf.length, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        const errno = libc.errno();
        if (errno === ERRNO['EAGAIN'] || errno === ERRNO['EWOULDBLOCK']) {
          if (this.#overrunPending) {
            this.#overrunPending = false;
            this.#onDrainedAfterOverrun?.();
          }
          return;
        }
        if (errno === ERRNO['EINTR']) continue;
        if (errno === ERRNO['ENOBUFS']) {
          this.stats.overruns++;
          this.#overrunPending = true;
          continue;
        }
        this.#error = sysError('recv', errno);
        void this.close();
        return;
      }
      if (n > buf.length) {
        this.stats.malformed++; // datagram larger than our buffer: truncated, untrustworthy
        continue;
      }
      parseNflogMessages(buf.subarray(0, n), this.#handlePacket, this.#handleMalformed, this.#handleAck);
    }
  };

  readonly #handlePacket = (p: NflogPacket): void => {
    if (p.group !== this.group) return;
    if (p.seq !== undefined) {
      if (this.#nextPacketSeq >= 0 && p.seq !== this.#nextPacketSeq) {
        const gap = (p.seq - this.#nextPacketSeq) >>> 0;
        this.stats.lost += gap;
        this.#onLost?.(gap);
      }
      this.#nextPacketSeq = (p.seq + 1) >>> 0;
    }
    this.stats.received++;
    this.#onPacket(p);
  };

  readonly #handleMalformed = (): void => {
    this.stats.malformed++;
  };

  readonly #handleAck = (seq: number, error: number): void => {
    const p = this.#pendingAcks.get(seq);
    if (!p) return;
    this.#pendingAcks.delete(seq);
    clearTimeout(p.timer);
    if (error === 0) p.resolve();
    else p.reject(sysError(`config request ${seq}`, -error));
  };
}
