/**
 * A UDP socket for TPROXY'd datagrams: the DNS proxy's UDP listener.
 *
 *   pod ─udp→ 10.96.0.10:53 ─► nft `tproxy ip to :PORT meta mark set 1` (prerouting)
 *     ─► policy route (fwmark 1 → table 100: local 0.0.0.0/0 dev lo)
 *     ─► our socket: 0.0.0.0:PORT, IP_TRANSPARENT, IP_RECVORIGDSTADDR
 *     ─libuv poll: readable─► drain: recvmmsg() 32 at a time (transparent-udp-io.ts)
 *        cmsg IP_ORIGDSTADDR = 10.96.0.10:53 ─► onDatagram({payload, src, origDst})
 *   reply(d, answer) ─► reply socket bound to 10.96.0.10:53 (IP_TRANSPARENT, SO_REUSEADDR)
 *     ─sendmmsg(pod, …) at the end of the callback─► the pod sees the answer come from the server it asked.
 *
 * Why a socket per original destination for replies, not sendmsg(IP_PKTINFO):
 * IP_PKTINFO's ipi_spec_dst can set a foreign *source address* on a
 * transparent socket (FLOWI_FLAG_ANYSRC), but not the *source port*: the
 * reply would leave from PORT, not 53, and the pod's resolver drops answers
 * from the wrong port. A socket bound to (server, 53) with IP_TRANSPARENT
 * gets both right. It never steals queries: TPROXY's socket lookup
 * (nf_tproxy_get_sock_v4) takes only *connected* UDP sockets in its
 * "established" step, and these are unconnected; the listener lookup then
 * finds ours by PORT. Reply sockets are cached per (address, port) and
 * closed after `replyIdleMs` unused. SO_REUSEADDR lets them coexist with
 * another socket on the same address (e.g. a node-local resolver that set it too).
 *
 * SO_MARK is not needed for this socket: TPROXY'd packets are steered in
 * prerouting, our replies leave through output. Upstream sockets (the
 * proxy's own queries) need a mark only when the steering rule could match
 * them, i.e. when the server is reached over `lo`; `openUdp`'s `mark`
 * option is for the steering rule to exclude (`meta mark 0x… return`).
 *
 * Replies queued while one callback runs leave together in one sendmmsg()
 * when it returns (a microtask, never a timer: no reply waits for another).
 * `openUdp` is the same machinery for a plain socket, and `openUdpFrom`
 * for the DNS proxy's upstream queries, each from its pod's address.
 *
 * Caveats: IPv4 only (an AF_INET6 twin would use IPV6_TRANSPARENT=75 and
 * IPV6_RECVORIGDSTADDR=74); needs CAP_NET_ADMIN (IP_TRANSPARENT); 64-bit Linux.
 */
import type { OpenUpstreamSocket, UpstreamSocket, UpstreamSocketOptions } from '../dns/index.ts';
import { assertNotRootNetns } from '../../kernel/index.ts';
import { BatchedSender, drainBatches } from './transparent-udp-io.ts';
import { RecvBatch } from './transparent-udp-mmsg.ts';
import {
  AF_INET,
  errnoName,
  ipv4Address,
  ipv4ToU32,
  IP_RECVORIGDSTADDR,
  IP_TRANSPARENT,
  MSG_DONTWAIT,
  SO_MARK,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_REUSEADDR,
  SO_SNDBUF,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_IP,
  SOL_SOCKET,
  sockaddrIn,
  sockaddrIp,
  sockaddrPort,
  udpLibc,
  writeSockaddrIn,
  type UdpLibc,
} from './transparent-udp-libc.ts';
import { addProxyPort, isProxyPort, removeProxyPort } from './proxy-ports.ts';

export interface UdpEndpoint {
  ip: string;
  port: number;
}

export interface TransparentDatagram {
  /** A copy: the receiver owns it. */
  payload: Buffer;
  src: UdpEndpoint;
  /** The destination the sender used, before TPROXY (IP_ORIGDSTADDR). */
  origDst: UdpEndpoint;
}

export interface TransparentUdpStats {
  received: number;
  replies: number;
  /** Datagrams without an IP_ORIGDSTADDR: not steered here (dropped). */
  noOrigDst: number;
  /** Datagrams whose original destination is a proxy port: sent to a proxy directly (dropped). */
  notSteered: number;
  /** Datagrams larger than the receive buffer (dropped). */
  truncated: number;
  /** Send failures (EAGAIN on a full send buffer included): the reply is lost. */
  sendErrors: number;
  /** Reply sockets that could not be bound to an original destination. */
  replySocketErrors: number;
  /** Reply sockets open now. */
  replySockets: number;
}

export interface TransparentUdp {
  readonly port: number;
  readonly stats: Readonly<TransparentUdpStats>;
  /** Answers datagram `d`: from d.origDst to d.src. */
  reply(d: TransparentDatagram, payload: Uint8Array): void;
  /** Sends `payload` from srcIp:srcPort (any address, transparent) to dstIp:dstPort. */
  sendFrom(srcIp: string, srcPort: number, dstIp: string, dstPort: number, payload: Uint8Array): void;
  close(): Promise<void>;
}

export interface TransparentUdpOptions {
  /** Default 0.0.0.0. */
  bindIp?: string;
  /** SO_RCVBUFFORCE. Default 4 MiB. */
  recvBufferBytes?: number;
  /** Reply sockets unused this long are closed. Default 30 s. */
  replyIdleMs?: number;
  /** Most reply sockets kept open; the least recently used goes first. Default 256. */
  maxReplySockets?: number;
  /** SO_MARK on every socket (the listener and reply sockets). Default none. */
  mark?: number;
  /** Tests only: skip the root-namespace guard. */
  allowRootNetns?: boolean;
  /**
   * A proxy's listener (default): its port joins the proxy ports, so a
   * datagram aimed at it (not steered) is dropped. False for a socket that
   * takes datagrams sent to it directly.
   */
  proxyListener?: boolean;
}

const MAX_DATAGRAM = 65536;
/** Datagrams per recvmmsg(). Slots are MAX_DATAGRAM each, but only the pages a datagram touches become resident. */
const RECV_BATCH = 32;

/**
 * Opens the listener on `port` (0: the kernel picks; read `.port`) in the
 * caller's network namespace. `onDatagram` runs on the event loop for each
 * datagram and must not throw (a throw is caught and the datagram dropped).
 */
export async function openTransparentUdp(
  port: number,
  onDatagram: (d: TransparentDatagram) => void,
  opts: TransparentUdpOptions = {},
): Promise<TransparentUdp> {
  if (!opts.allowRootNetns) assertNotRootNetns('transparent UDP socket');
  const libc = udpLibc();
  const bindIp = opts.bindIp ?? '0.0.0.0';
  const fd = openSocket(libc, { transparent: true, reuseAddr: true, mark: opts.mark, recvOrigDst: true });
  try {
    setBuffer(libc, fd, SO_RCVBUFFORCE, SO_RCVBUF, opts.recvBufferBytes ?? 4 << 20);
    const sa = sockaddrIn(bindIp, port);
    if (libc.bind(fd, sa, 16) < 0) throw sysError(`bind(${bindIp}:${port})`, libc.errno());
    const len = Int32Array.of(16);
    if (libc.getsockname(fd, sa, len) < 0) throw sysError('getsockname', libc.errno());
    const socket = new TransparentUdpSocket(libc, fd, sockaddrIp(sa, 0), sockaddrPort(sa, 0), onDatagram, opts);
    if (opts.proxyListener !== false) addProxyPort(socket.port);
    return socket;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/** The DNS proxy's upstream socket contract (src/fqdn), which this socket serves. */
export type UdpSocketOptions = UpstreamSocketOptions;

/** A plain (non-transparent) UDP socket bound to 0.0.0.0:0, read and written in batches: `send` queues, and what one callback queued leaves in one sendmmsg() when it returns. */
export interface UdpSocket extends UpstreamSocket {
  /** Sends at once with sendto(); false when the kernel refused it. */
  sendNow(ip: string, port: number, payload: Uint8Array): boolean;
}

/**
 * Opens a plain non-blocking UDP socket (synchronously). `onDatagram` gets
 * each datagram (a copy the receiver owns) with its sender; it must not throw.
 */
export function openUdp(onDatagram: (payload: Buffer, from: UdpEndpoint) => void, opts: UdpSocketOptions = {}): UdpSocket {
  const libc = udpLibc();
  const fd = openSocket(libc, { transparent: false, reuseAddr: false, mark: opts.mark, recvOrigDst: false });
  const sa = sockaddrIn('0.0.0.0', 0);
  const len = Int32Array.of(16);
  if (opts.recvBufferBytes !== undefined) setBuffer(libc, fd, SO_RCVBUFFORCE, SO_RCVBUF, opts.recvBufferBytes);
  if (opts.sendBufferBytes !== undefined) setBuffer(libc, fd, SO_SNDBUF, SO_SNDBUF, opts.sendBufferBytes);
  let batch: RecvBatch;
  let sender: BatchedSender;
  try {
    if (libc.bind(fd, sa, 16) < 0 || libc.getsockname(fd, sa, len) < 0) throw sysError('bind(0.0.0.0:0)', libc.errno());
    batch = new RecvBatch(RECV_BATCH, MAX_DATAGRAM);
    sender = new BatchedSender(libc, { onSent: () => {}, onError: opts.onSendError ?? ((): void => {}) });
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  const to = new Uint8Array(16);
  let closed = false;
  const watch = watchDatagrams(libc, fd, batch, onDatagram, () => closed);
  return {
    port: sockaddrPort(sa, 0),
    send: (ip, port, payload, token = 0) => {
      const dst = ipv4Address(ip);
      // A proxy port is never an upstream (the proxy would be asking itself).
      if (!closed && !isProxyPort(port)) sender.send(fd, dst, port, payload, token);
    },
    sendNow: (ip, port, payload) => !closed && !isProxyPort(port) && libc.sendto(fd, payload, payload.length, MSG_DONTWAIT, sockaddrIn(ip, port, to), 16) >= 0,
    unref: () => watch.unref(),
    close: () => {
      if (closed) return;
      sender.close();
      closed = true;
      watch.close(); // stop polling before the fd number can be reused
      libc.close(fd);
      batch.free();
    },
  };
}

/**
 * Reads `fd` in batches through `batch` (read synchronously, so sockets may
 * share one), each datagram a copy with its sender, until `isClosed()`.
 */
function watchDatagrams(
  libc: UdpLibc,
  fd: number,
  batch: RecvBatch,
  onDatagram: (payload: Buffer, from: UdpEndpoint) => void,
  isClosed: () => boolean,
): { close(): void; unref(): void } {
  const b = batch.bytes;
  const onEntry = (i: number, n: number): void => {
    if (n > batch.slotBytes) return;
    const name = batch.nameOffset(i);
    try {
      onDatagram(Buffer.copyBytesFrom(b, batch.dataOffset(i), n), { ip: sockaddrIp(b, name), port: sockaddrPort(b, name) });
    } catch {
      // The consumer's bug must not stop the reader.
    }
  };
  return libc.watchReadable(fd, () => drainBatches(libc, fd, batch, onEntry, isClosed));
}

/** The receive vector and send queue every openUdpFrom socket shares: made with the first socket, freed with the last. */
interface SharedUdpIo {
  readonly batch: RecvBatch;
  readonly sender: BatchedSender;
  /** Per fd: whom a refused datagram is reported to. */
  readonly onError: Map<number, (token: number, errno: number) => void>;
  users: number;
}
let sharedIo: SharedUdpIo | undefined;

function acquireSharedIo(libc: UdpLibc): SharedUdpIo {
  if (sharedIo) {
    sharedIo.users++;
    return sharedIo;
  }
  const onError = new Map<number, (token: number, errno: number) => void>();
  const batch = new RecvBatch(RECV_BATCH, MAX_DATAGRAM);
  const sender = new BatchedSender(libc, { onSent: () => {}, onError: (token, errno, fd) => onError.get(fd)?.(token, errno) });
  sharedIo = { batch, sender, onError, users: 1 };
  return sharedIo;
}

function releaseSharedIo(io: SharedUdpIo): void {
  if (--io.users > 0) return;
  io.sender.close();
  io.batch.free();
  if (sharedIo === io) sharedIo = undefined;
}

/**
 * A UDP socket in a pod's name, for the DNS proxy's upstream queries: bound
 * to `opts.source` (IP_TRANSPARENT, port 0: the kernel's pick) and connected
 * to `opts.peer`, so the server and its ingress policy see the pod. The
 * datapath hands the peer's answers to this socket, not to the pod (legacy:
 * `socket transparent` in prerouting; eBPF: the connected socket its sk
 * lookup finds). Connected, so it takes only that peer's datagrams, never
 * the pod's own traffic from the same address. A node holds one per pod and
 * server, so all share one receive vector and one send queue: `send` queues,
 * and what one callback queued leaves in sendmmsg() when it returns. Throws
 * when the socket cannot be made: the caller must never fall back to the
 * node's address.
 */
export const openUdpFrom: OpenUpstreamSocket = (onDatagram, opts) => {
  const { source, peer } = opts;
  if (source === undefined || peer === undefined) throw new Error('openUdpFrom: needs the source (a pod\'s address) and the peer');
  // A proxy port is never an upstream (the proxy would be asking itself).
  if (isProxyPort(peer.port)) throw new Error(`transparent UDP: ${peer.ip}:${peer.port} is a proxy port, never an upstream`);
  const libc = udpLibc();
  const fd = openSocket(libc, { transparent: true, reuseAddr: false, mark: opts.mark, recvOrigDst: false });
  const sa = new Uint8Array(16);
  let port: number;
  try {
    if (opts.recvBufferBytes !== undefined) setBuffer(libc, fd, SO_RCVBUFFORCE, SO_RCVBUF, opts.recvBufferBytes);
    if (opts.sendBufferBytes !== undefined) setBuffer(libc, fd, SO_SNDBUF, SO_SNDBUF, opts.sendBufferBytes);
    if (libc.bind(fd, sockaddrIn(source, 0, sa), 16) < 0) throw sysError(`bind(${source}:0)`, libc.errno());
    if (libc.connect(fd, sockaddrIn(peer.ip, peer.port), 16) < 0) throw sysError(`connect(${peer.ip}:${peer.port})`, libc.errno());
    if (libc.getsockname(fd, sa, Int32Array.of(16)) < 0) throw sysError('getsockname', libc.errno());
    port = sockaddrPort(sa, 0);
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  const io = acquireSharedIo(libc);
  if (opts.onSendError) io.onError.set(fd, opts.onSendError);
  let closed = false;
  const watch = watchDatagrams(libc, fd, io.batch, onDatagram, () => closed);
  const peerU32 = ipv4Address(peer.ip);
  return {
    port,
    send: (_ip, _port, payload, token = 0) => {
      if (!closed) io.sender.send(fd, peerU32, peer.port, payload, token);
    },
    unref: () => watch.unref(),
    close: () => {
      if (closed) return;
      io.sender.flush(); // what is queued may be this socket's
      closed = true;
      watch.close(); // stop polling before the fd number can be reused
      io.onError.delete(fd);
      libc.close(fd);
      releaseSharedIo(io);
    },
  };
};

function openSocket(
  libc: UdpLibc,
  o: { transparent: boolean; reuseAddr: boolean; mark: number | undefined; recvOrigDst: boolean },
): number {
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw sysError('socket(AF_INET, SOCK_DGRAM)', libc.errno());
  const one = Int32Array.of(1);
  try {
    if (o.reuseAddr && libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) throw sysError('SO_REUSEADDR', libc.errno());
    if (o.transparent && libc.setsockopt(fd, SOL_IP, IP_TRANSPARENT, one, 4) < 0) {
      throw sysError('IP_TRANSPARENT (needs CAP_NET_ADMIN)', libc.errno());
    }
    if (o.recvOrigDst && libc.setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, one, 4) < 0) throw sysError('IP_RECVORIGDSTADDR', libc.errno());
    if (o.mark !== undefined && libc.setsockopt(fd, SOL_SOCKET, SO_MARK, Int32Array.of(o.mark), 4) < 0) {
      throw sysError('SO_MARK (needs CAP_NET_ADMIN)', libc.errno());
    }
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  return fd;
}

function setBuffer(libc: UdpLibc, fd: number, force: number, plain: number, bytes: number): void {
  const v = Int32Array.of(bytes);
  if (libc.setsockopt(fd, SOL_SOCKET, force, v, 4) === 0) return;
  libc.setsockopt(fd, SOL_SOCKET, plain, v, 4); // capped at rmem_max without CAP_NET_ADMIN; best effort
}

function sysError(what: string, errno: number): Error {
  return new Error(`transparent UDP: ${what} failed: ${errnoName(errno)}`);
}

interface ReplySocket {
  fd: number;
  lastUsed: number;
}

class TransparentUdpSocket implements TransparentUdp {
  readonly port: number;
  readonly stats: TransparentUdpStats = {
    received: 0, replies: 0, noOrigDst: 0, notSteered: 0, truncated: 0, sendErrors: 0, replySocketErrors: 0, replySockets: 0,
  };
  readonly #libc: UdpLibc;
  readonly #fd: number;
  readonly #bindIp: string;
  readonly #bindU32: number;
  readonly #batch = new RecvBatch(RECV_BATCH, MAX_DATAGRAM);
  readonly #sender: BatchedSender;
  readonly #onDatagram: (d: TransparentDatagram) => void;
  readonly #watch: { close(): void };
  /** (address u32 × 65536 + port) → socket. */
  readonly #replies = new Map<number, ReplySocket>();
  readonly #replyIdleMs: number;
  readonly #maxReplies: number;
  readonly #mark: number | undefined;
  readonly #proxyListener: boolean;
  readonly #sweep: NodeJS.Timeout;
  #closed = false;

  constructor(libc: UdpLibc, fd: number, bindIp: string, port: number, onDatagram: (d: TransparentDatagram) => void, o: TransparentUdpOptions) {
    this.#libc = libc;
    this.#fd = fd;
    this.#bindIp = bindIp;
    this.#bindU32 = ipv4ToU32(bindIp);
    this.port = port;
    this.#onDatagram = onDatagram;
    this.#replyIdleMs = o.replyIdleMs ?? 30_000;
    this.#maxReplies = o.maxReplySockets ?? 256;
    this.#mark = o.mark;
    this.#proxyListener = o.proxyListener !== false;
    this.#sender = new BatchedSender(libc, {
      onSent: (n) => void (this.stats.replies += n),
      onError: () => void this.stats.sendErrors++,
    });
    this.#watch = libc.watchReadable(fd, this.#drain);
    this.#sweep = setInterval(() => this.#closeIdle(), Math.max(1000, this.#replyIdleMs / 2));
    this.#sweep.unref();
  }

  readonly #stop = (): boolean => this.#closed;
  readonly #drain = (): void => drainBatches(this.#libc, this.#fd, this.#batch, this.#onEntry, this.#stop);

  readonly #onEntry = (i: number, n: number): void => {
    const batch = this.#batch;
    if (n > batch.slotBytes) {
      this.stats.truncated++;
      return;
    }
    this.stats.received++;
    const b = batch.bytes;
    const od = batch.origDstOffset(i);
    if (od < 0) {
      this.stats.noOrigDst++;
      return;
    }
    // Steering keeps the pod's destination: a proxy port there means the datagram was aimed at a proxy.
    if (isProxyPort(sockaddrPort(b, od))) {
      this.stats.notSteered++;
      return;
    }
    const origDst: UdpEndpoint = { ip: sockaddrIp(b, od), port: sockaddrPort(b, od) };
    const name = batch.nameOffset(i);
    const d: TransparentDatagram = {
      payload: Buffer.copyBytesFrom(b, batch.dataOffset(i), n),
      src: { ip: sockaddrIp(b, name), port: sockaddrPort(b, name) },
      origDst,
    };
    try {
      this.#onDatagram(d);
    } catch {
      // The consumer's bug must not stop the reader.
    }
  };

  reply(d: TransparentDatagram, payload: Uint8Array): void {
    this.sendFrom(d.origDst.ip, d.origDst.port, d.src.ip, d.src.port, payload);
  }

  sendFrom(srcIp: string, srcPort: number, dstIp: string, dstPort: number, payload: Uint8Array): void {
    if (this.#closed) return;
    const dst = ipv4Address(dstIp);
    const fd = this.#replySocket(ipv4ToU32(srcIp), srcPort);
    if (fd < 0) return;
    this.#sender.send(fd, dst, dstPort, payload, 0);
  }

  #replySocket(ip: number, port: number): number {
    if (ip < 0) {
      this.stats.replySocketErrors++;
      return -1;
    }
    const key = ip * 65536 + port;
    const now = performance.now();
    const have = this.#replies.get(key);
    if (have) {
      have.lastUsed = now;
      return have.fd;
    }
    if (ip === this.#bindU32 && port === this.port) return this.#fd;
    let fd = -1;
    try {
      fd = openSocket(this.#libc, { transparent: true, reuseAddr: true, mark: this.#mark, recvOrigDst: false });
      setBuffer(this.#libc, fd, SO_RCVBUFFORCE, SO_RCVBUF, 4096); // it never reads: keep what it might queue small
      setBuffer(this.#libc, fd, SO_SNDBUF, SO_SNDBUF, 1 << 20);
      const sa = new Uint8Array(16);
      writeSockaddrIn(sa, 0, ip, port);
      if (this.#libc.bind(fd, sa, 16) < 0) throw sysError(`bind(${sockaddrIp(sa, 0)}:${port})`, this.#libc.errno());
    } catch {
      if (fd >= 0) this.#libc.close(fd);
      this.stats.replySocketErrors++;
      return -1;
    }
    if (this.#replies.size >= this.#maxReplies) this.#evictLeastRecent();
    this.#replies.set(key, { fd, lastUsed: now });
    this.stats.replySockets = this.#replies.size;
    return fd;
  }

  #evictLeastRecent(): void {
    let oldestKey: number | undefined;
    let oldest = Infinity;
    for (const [k, r] of this.#replies) {
      if (r.lastUsed < oldest) {
        oldest = r.lastUsed;
        oldestKey = k;
      }
    }
    if (oldestKey === undefined) return;
    this.#sender.flush(); // queued replies may be the evicted socket's
    this.#libc.close(this.#replies.get(oldestKey)!.fd);
    this.#replies.delete(oldestKey);
  }

  #closeIdle(): void {
    const cutoff = performance.now() - this.#replyIdleMs;
    this.#sender.flush();
    for (const [k, r] of this.#replies) {
      if (r.lastUsed >= cutoff) continue;
      this.#libc.close(r.fd);
      this.#replies.delete(k);
    }
    this.stats.replySockets = this.#replies.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#sender.close(); // what is queued still leaves
    this.#closed = true;
    if (this.#proxyListener) removeProxyPort(this.port);
    clearInterval(this.#sweep);
    this.#watch.close(); // stop polling before the fd number can be reused
    this.#libc.close(this.#fd);
    for (const r of this.#replies.values()) this.#libc.close(r.fd);
    this.#replies.clear();
    this.stats.replySockets = 0;
    this.#batch.free();
  }
}
