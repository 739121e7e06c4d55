/**
 * The proxy's default way to the real DNS server over UDP: a few shared
 * sockets from the node's own address, each query sent under a fresh random
 * ID and its answer matched back by (socket, ID, server address, question),
 * then given the pod's ID again — so the pod gets the server's bytes unchanged.
 *
 *   send(server, query, waiter) ─ID→random─► socket[k] ─(sendmmsg with the rest of the batch)─► server
 *   socket[k] ◄─ answers (recvmmsg) ─ match pending[(k,ID)], check source + question ─ID→pod's─► waiter.onAnswer
 *
 * Why shared sockets and not one per query: a socket per query costs a
 * bind() and a close() each, too much at 20k queries/s; random IDs over a
 * few random ephemeral ports keep blind spoofing as hard as a stub resolver's.
 * Why the agent hands in libc sockets (src/datapath openUdp) rather than
 * dgram: a batch of queries leaves in one sendmmsg() and a batch of answers
 * comes in one recvmmsg(), with no per-datagram lookup, nextTick or send request.
 * Why a waiter object and not a promise: the proxy's fast path answers in
 * the same callback that read the answer, with nothing queued in between.
 * Timeouts are swept by one coarse timer (100 ms), not a timer per query.
 *
 * Caveat: the upstream sees the node's address, not the pod's (DESIGN.md's
 * "connect onward with the pod's own source address" would need a
 * transparent socket per pod; pass your own `forwardUdp` for that).
 */
import { randomFillSync } from 'node:crypto';
import { constants } from 'node:os';
import { openDgramSocket } from './dgram-socket.ts';
import type { OpenUpstreamSocket, UdpEndpoint, UpstreamSocket } from './dns-types.ts';

export interface UdpUpstreamOptions {
  /** Sockets in the pool. Default 4. */
  sockets?: number;
  /** How sockets are made: the agent hands in the datapath's batched one. Default: dgram. */
  openSocket?: OpenUpstreamSocket;
}

/** Who gets the outcome of one send(): exactly one of the two is called, once. */
export interface UpstreamWaiter {
  /** The answer, under the pod's ID again (the receiver owns it). */
  onAnswer(answer: Buffer): void;
  onError(err: Error): void;
}

interface Pending {
  waiter: UpstreamWaiter;
  /** The pod's query as sent (its ID is the pod's): bytes [12, questionEnd) are the question. */
  query: Buffer;
  questionEnd: number;
  server: UdpEndpoint;
  deadline: number;
}

export class UpstreamTimeoutError extends Error {
  constructor(server: UdpEndpoint) {
    super(`DNS upstream ${server.ip}:${server.port} did not answer in time`);
  }
}

/** Random IDs drawn this many at a time from the CSPRNG. */
const ID_POOL = 2048;

export class UdpUpstream {
  readonly #sockets: UpstreamSocket[] = [];
  /** key = socket index << 16 | upstream ID */
  readonly #pending = new Map<number, Pending>();
  readonly #sweep: NodeJS.Timeout;
  readonly #ids = new Uint16Array(ID_POOL);
  #nextId = ID_POOL;
  #next = 0;
  #closed = false;
  readonly counters = { sent: 0, answered: 0, timeouts: 0, mismatched: 0, sendErrors: 0 };

  constructor(opts: UdpUpstreamOptions = {}) {
    const n = opts.sockets ?? 4;
    const open = opts.openSocket ?? openDgramSocket;
    for (let i = 0; i < n; i++) {
      const s = open((msg, from) => this.#onMessage(i, msg, from), {
        recvBufferBytes: 1 << 22,
        sendBufferBytes: 1 << 22,
        onSendError: (key, errno) => this.#onSendError(key, errno),
      });
      s.unref();
      this.#sockets.push(s);
    }
    this.#sweep = setInterval(() => this.#expire(), 100);
    this.#sweep.unref();
  }

  /**
   * Sends the pod's query (`payload`, its question ending at `questionEnd`)
   * to `server`; the outcome goes to `waiter`, possibly before this returns
   * (an error found at once). `payload` must stay unchanged until then.
   */
  send(server: UdpEndpoint, payload: Buffer, timeoutMs: number, questionEnd: number, waiter: UpstreamWaiter): void {
    if (this.#closed) return waiter.onError(new Error('DNS upstream closed'));
    const k = this.#next++ % this.#sockets.length;
    let id = this.#randomId();
    let key = (k << 16) | id;
    for (let tries = 0; this.#pending.has(key) && tries < 64; tries++) {
      id = this.#randomId();
      key = (k << 16) | id;
    }
    if (this.#pending.has(key)) return waiter.onError(new Error('DNS upstream: no free query ID'));
    this.#pending.set(key, { waiter, query: payload, questionEnd, server, deadline: performance.now() + timeoutMs });
    this.counters.sent++;
    // The socket copies the datagram at once: lend it the upstream ID, then give the pod's back.
    const podId0 = payload[0]!;
    const podId1 = payload[1]!;
    payload[0] = id >> 8;
    payload[1] = id & 0xff;
    try {
      this.#sockets[k]!.send(server.ip, server.port, payload, key);
    } catch (err) {
      this.#pending.delete(key);
      waiter.onError(err as Error);
    } finally {
      payload[0] = podId0;
      payload[1] = podId1;
    }
  }

  /** send() as a promise: the answer under the pod's ID. */
  forward(server: UdpEndpoint, payload: Buffer, timeoutMs: number, questionEnd = payload.length): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => this.send(server, payload, timeoutMs, questionEnd, { onAnswer: resolve, onError: reject }));
  }

  #randomId(): number {
    if (this.#nextId === ID_POOL) {
      randomFillSync(this.#ids);
      this.#nextId = 0;
    }
    return this.#ids[this.#nextId++]!;
  }

  #onMessage(k: number, msg: Buffer, from: UdpEndpoint): void {
    if (msg.length < 12) return void this.counters.mismatched++;
    const key = (k << 16) | (msg[0]! << 8) | msg[1]!;
    const p = this.#pending.get(key);
    if (!p || from.ip !== p.server.ip || from.port !== p.server.port || !questionMatches(p.query, p.questionEnd, msg)) {
      this.counters.mismatched++;
      return;
    }
    this.#pending.delete(key);
    msg[0] = p.query[0]!;
    msg[1] = p.query[1]!;
    this.counters.answered++;
    p.waiter.onAnswer(msg);
  }

  #onSendError(key: number, errno: number): void {
    this.counters.sendErrors++;
    const p = this.#pending.get(key);
    if (!p) return;
    this.#pending.delete(key);
    // Later, not now: this can run inside send(), while the query still carries the upstream ID.
    queueMicrotask(() => p.waiter.onError(new Error(`DNS upstream ${p.server.ip}:${p.server.port}: send failed: ${errnoName(errno)}`)));
  }

  #expire(): void {
    const now = performance.now();
    for (const [key, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#pending.delete(key);
      this.counters.timeouts++;
      p.waiter.onError(new UpstreamTimeoutError(p.server));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const s of this.#sockets) s.close();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.waiter.onError(new Error('DNS upstream closed'));
  }
}

/** The answer's question is the one sent (ASCII case-insensitive; header-only answers pass, parseAnswer judges them). */
function questionMatches(query: Buffer, questionEnd: number, msg: Buffer): boolean {
  if (((msg[4]! << 8) | msg[5]!) === 0) return true;
  if (msg.length < questionEnd) return false;
  for (let i = 12; i < questionEnd; i++) {
    const a = query[i]!;
    const b = msg[i]!;
    if (a !== b && (a | 0x20) !== (b | 0x20)) return false;
  }
  return true;
}

function errnoName(errno: number): string {
  for (const [name, v] of Object.entries(constants.errno)) if (v === errno) return name;
  return `errno ${errno}`;
}
