/**
 * DNS over TCP through the transparent proxy: one pod connection (handed to
 * us already accepted, its local address being the real server's) carries
 * any number of two-byte-length-prefixed messages (RFC 1035 §4.2.2,
 * RFC 7766 §8). Each message goes through the same phases as a datagram:
 *
 *   frame ─► check (parse, authorise) ─► REFUSED/FORMERR frame back
 *                                    └─► upstream TCP connection (one per pod connection, opened lazily)
 *   upstream frame ─► match by ID ─► complete (learn, hold) ─► frame back to the pod
 *
 * RFC 7766 §6.2.1.1: queries may be pipelined and answers sent in any
 * order; the client matches them by ID, so we do too (FIFO per ID if a
 * client reuses one). Bounds: `maxInFlight` per connection (reading pauses
 * above it), an idle timeout (RFC 7766 §6.2.3), and an upstream that stays
 * silent for `upstreamTimeoutMs` with queries pending fails them all with
 * SERVFAIL.
 */
import type net from 'node:net';
import type { DnsQuery } from './dns-wire.ts';
import type { DnsEventReason, UdpEndpoint } from './dns-types.ts';

/** What the TCP relay needs of the proxy (DnsProxy provides it). */
export interface DnsTcpContext {
  /** A query to forward, a reply to send at once, or null to drop. */
  check(msg: Buffer, pod: UdpEndpoint, server: UdpEndpoint): DnsQuery | Buffer | null;
  /** The upstream answer → bytes for the pod, after learning and holding. Never rejects. */
  complete(pod: UdpEndpoint, server: UdpEndpoint, q: DnsQuery, query: Buffer, answer: Buffer, t0: number): Promise<Buffer>;
  /** SERVFAIL for a query the upstream did not answer, with its event. */
  failed(pod: UdpEndpoint, server: UdpEndpoint, q: DnsQuery, query: Buffer, reason: DnsEventReason, t0: number): Buffer;
  /** A connection to the server in the pod's name (it never rejects synchronously). */
  upstreamTcp(server: UdpEndpoint, pod: UdpEndpoint): Promise<net.Socket>;
  readonly idleMs: number;
  readonly upstreamTimeoutMs: number;
  readonly maxInFlight: number;
}

interface InFlight {
  q: DnsQuery;
  query: Buffer;
  t0: number;
}

/** Splits a byte stream into length-prefixed messages; `onMessage` gets each as its own Buffer. */
class FrameReader {
  #buf: Buffer | null = null;
  readonly onMessage: (m: Buffer) => void;
  constructor(onMessage: (m: Buffer) => void) {
    this.onMessage = onMessage;
  }

  push(chunk: Buffer): void {
    const b = this.#buf ? Buffer.concat([this.#buf, chunk]) : chunk;
    let off = 0;
    while (b.length - off >= 2) {
      const len = (b[off]! << 8) | b[off + 1]!;
      if (b.length - off - 2 < len) break;
      // Copy out: the chunk's memory is Node's and `b` may be reused.
      this.onMessage(Buffer.from(b.subarray(off + 2, off + 2 + len)));
      off += 2 + len;
    }
    this.#buf = off === b.length ? null : b.subarray(off);
  }
}

function frame(msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(msg.length + 2);
  out[0] = msg.length >> 8;
  out[1] = msg.length & 0xff;
  msg.copy(out, 2);
  return out;
}

/**
 * Serves one accepted pod connection until either side closes. `server` is
 * the real DNS server (the socket's local address under TPROXY).
 */
export function handleTcpDns(socket: net.Socket, server: UdpEndpoint, ctx: DnsTcpContext): void {
  const pod: UdpEndpoint = { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
  const inFlight = new Map<number, InFlight[]>();
  let count = 0;
  let upstream: net.Socket | null = null;
  let connecting: Promise<net.Socket> | null = null;
  let closed = false;
  /** The pod half-closed: finish what it asked, then end (needs the server's allowHalfOpen). */
  let ended = false;
  /** Forwarded queries not answered to the pod yet. */
  let outstanding = 0;

  const send = (msg: Buffer): void => {
    if (!closed && socket.writable) socket.write(frame(msg));
  };
  const answered = (msg: Buffer): void => {
    outstanding--;
    send(msg);
    if (ended && outstanding === 0 && !closed) socket.end();
  };

  const take = (id: number): InFlight | undefined => {
    const l = inFlight.get(id);
    const f = l?.shift();
    if (l && l.length === 0) inFlight.delete(id);
    if (f) {
      count--;
      if (count < ctx.maxInFlight && socket.isPaused()) socket.resume();
    }
    return f;
  };

  const failAll = (reason: DnsEventReason): void => {
    for (const l of inFlight.values()) for (const f of l) answered(ctx.failed(pod, server, f.q, f.query, reason, f.t0));
    inFlight.clear();
    count = 0;
    if (socket.isPaused()) socket.resume();
  };

  const onUpstreamMessage = (answer: Buffer): void => {
    if (answer.length < 2) return;
    const f = take((answer[0]! << 8) | answer[1]!);
    if (!f) return; // not ours (or late): ignore
    void ctx.complete(pod, server, f.q, f.query, answer, f.t0).then(answered);
  };

  const openUpstream = (): Promise<net.Socket> => {
    if (upstream) return Promise.resolve(upstream);
    connecting ??= ctx.upstreamTcp(server, pod).then((s) => {
      upstream = s;
      connecting = null;
      const reader = new FrameReader(onUpstreamMessage);
      s.on('data', (c: Buffer) => reader.push(c));
      s.setTimeout(ctx.upstreamTimeoutMs, () => {
        if (count > 0) {
          failAll('upstream-timeout');
          s.destroy();
        }
      });
      const gone = (): void => {
        if (upstream === s) upstream = null;
        if (count > 0) failAll('upstream-error');
      };
      s.on('error', gone);
      s.on('close', gone);
      if (closed) s.destroy();
      return s;
    });
    return connecting;
  };

  const onMessage = (msg: Buffer): void => {
    const t0 = performance.now();
    const r = ctx.check(msg, pod, server);
    if (r === null) return;
    if (Buffer.isBuffer(r)) return send(r);
    const f: InFlight = { q: r, query: msg, t0 };
    const l = inFlight.get(r.id);
    if (l) l.push(f);
    else inFlight.set(r.id, [f]);
    outstanding++;
    if (++count >= ctx.maxInFlight) socket.pause();
    openUpstream().then(
      (s) => {
        if (s.writable) s.write(frame(msg));
      },
      () => {
        // Connect failed: everything queued for this connection fails with it.
        connecting = null;
        failAll('upstream-error');
      },
    );
  };

  const reader = new FrameReader(onMessage);
  socket.setNoDelay(true);
  socket.setTimeout(ctx.idleMs, () => socket.destroy());
  socket.on('data', (c: Buffer) => reader.push(c));
  socket.on('error', () => {});
  socket.on('end', () => {
    ended = true;
    if (outstanding === 0) socket.end();
  });
  socket.on('close', () => {
    closed = true;
    upstream?.destroy();
    inFlight.clear();
  });
}
