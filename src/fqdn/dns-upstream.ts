/**
 * The proxy's default way to the real DNS server over UDP: a few shared
 * sockets from the node's own address, each query sent under a fresh random
 * ID and its answer matched back by (socket, ID, server address, question),
 * then given the pod's ID again — so the pod gets the server's bytes unchanged.
 *
 *   forward(server, query) ─ID→random─► socket[k] ─► server
 *   socket[k] ◄─ answer ─ match pending[(k,ID)], check source + question ─ID→pod's─► resolve
 *
 * Why shared sockets and not one per query: a socket per query costs a
 * bind() and a close() each, too much at 20k queries/s; random IDs over a
 * few random ephemeral ports keep blind spoofing as hard as a stub resolver's.
 * Timeouts are swept by one coarse timer (100 ms), not a timer per query.
 *
 * Caveat: the upstream sees the node's address, not the pod's (DESIGN.md's
 * "connect onward with the pod's own source address" would need a
 * transparent socket per pod; pass your own `forwardUdp` for that).
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { UdpEndpoint } from './dns-types.ts';

export interface UdpUpstreamOptions {
  /** Sockets in the pool. Default 4. */
  sockets?: number;
}

interface Pending {
  resolve(b: Buffer): void;
  reject(e: Error): void;
  podId: number;
  server: UdpEndpoint;
  question: Buffer;
  deadline: number;
}

export class UpstreamTimeoutError extends Error {
  constructor(server: UdpEndpoint) {
    super(`DNS upstream ${server.ip}:${server.port} did not answer in time`);
  }
}

export class UdpUpstream {
  readonly #sockets: dgram.Socket[] = [];
  /** key = socket index << 16 | upstream ID */
  readonly #pending = new Map<number, Pending>();
  readonly #sweep: NodeJS.Timeout;
  #next = 0;
  #closed = false;
  readonly counters = { sent: 0, answered: 0, timeouts: 0, mismatched: 0, sendErrors: 0 };

  constructor(opts: UdpUpstreamOptions = {}) {
    const n = opts.sockets ?? 4;
    for (let i = 0; i < n; i++) {
      const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 22, sendBufferSize: 1 << 22 });
      s.on('message', (msg, rinfo) => this.#onMessage(i, msg, rinfo));
      s.on('error', () => {}); // ICMP errors surface as timeouts
      s.bind(0);
      s.unref();
      this.#sockets.push(s);
    }
    this.#sweep = setInterval(() => this.#expire(), 100);
    this.#sweep.unref();
  }

  /** The pod's query (`payload`, with its question ending at `questionEnd`) to `server`; resolves with the answer under the pod's ID. */
  forward(server: UdpEndpoint, payload: Buffer, timeoutMs: number, questionEnd = payload.length): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new Error('DNS upstream closed'));
    const k = this.#next++ % this.#sockets.length;
    let id = randomInt(0x10000);
    let key = (k << 16) | id;
    for (let tries = 0; this.#pending.has(key) && tries < 64; tries++) {
      id = randomInt(0x10000);
      key = (k << 16) | id;
    }
    if (this.#pending.has(key)) return Promise.reject(new Error('DNS upstream: no free query ID'));
    const out = Buffer.allocUnsafe(payload.length);
    payload.copy(out);
    out[0] = id >> 8;
    out[1] = id & 0xff;
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending.set(key, {
        resolve,
        reject,
        podId: (payload[0]! << 8) | payload[1]!,
        server,
        question: out.subarray(12, questionEnd),
        deadline: performance.now() + timeoutMs,
      });
      this.counters.sent++;
      this.#sockets[k]!.send(out, server.port, server.ip, (err) => {
        if (!err) return;
        this.counters.sendErrors++;
        const p = this.#pending.get(key);
        if (p) {
          this.#pending.delete(key);
          p.reject(err);
        }
      });
    });
  }

  #onMessage(k: number, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return void this.counters.mismatched++;
    const key = (k << 16) | (msg[0]! << 8) | msg[1]!;
    const p = this.#pending.get(key);
    if (!p || rinfo.address !== p.server.ip || rinfo.port !== p.server.port || !questionMatches(p.question, msg)) {
      this.counters.mismatched++;
      return;
    }
    this.#pending.delete(key);
    msg[0] = p.podId >> 8;
    msg[1] = p.podId & 0xff;
    this.counters.answered++;
    p.resolve(msg);
  }

  #expire(): void {
    const now = performance.now();
    for (const [key, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#pending.delete(key);
      this.counters.timeouts++;
      p.reject(new UpstreamTimeoutError(p.server));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const s of this.#sockets) s.close();
    for (const p of this.#pending.values()) p.reject(new Error('DNS upstream closed'));
    this.#pending.clear();
  }
}

/** The answer's question is the one sent (ASCII case-insensitive; header-only answers pass, parseAnswer judges them). */
function questionMatches(question: Buffer, msg: Buffer): boolean {
  if (((msg[4]! << 8) | msg[5]!) === 0) return true;
  if (msg.length < 12 + question.length) return false;
  for (let i = 0; i < question.length; i++) {
    const a = question[i]!;
    const b = msg[12 + i]!;
    if (a !== b && (a | 0x20) !== (b | 0x20)) return false;
  }
  return true;
}
