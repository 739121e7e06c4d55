/**
 * The proxy's way to the real DNS server over UDP. Each query leaves under a
 * fresh random ID and its answer is matched back by (socket, ID, server
 * address, question), then given the pod's ID again — so the pod gets the
 * server's bytes unchanged.
 *
 *   send(pod, server, query, waiter) ─ID→random─► socket of (pod, server) ─(sendmmsg with the rest of the batch)─► server
 *   that socket ◄─ answers (recvmmsg) ─ match pending[(socket,ID)], check source + question ─ID→pod's─► waiter.onAnswer
 *
 * Where queries leave from (`from`):
 * - 'pod' (the agent's): from the querying pod's own address, as Cilium's DNS
 *   proxy sends them, so the server's ingress policy judges the pod's
 *   identity and its logs show the real client. One socket per pod and
 *   server (transparent, bound to the pod's address, connected to the
 *   server), made on first use, closed after `idleMs` with nothing pending,
 *   at most `maxSockets` (the least recently used idle one makes room; with
 *   none idle the query fails). A socket that cannot be made fails the query
 *   (UpstreamSocketError): it never leaves from the node's address instead.
 * - 'node': a few shared sockets of the node's own (tests, tools).
 *
 * Why shared sockets per pod and not one per query: a socket per query costs
 * a bind() and a close() each, too much at 20k queries/s; random IDs over
 * random ephemeral ports keep blind spoofing as hard as a stub resolver's.
 * Why the agent hands in libc sockets (src/datapath openUdpFrom) rather than
 * dgram: a batch of queries leaves in one sendmmsg() and a batch of answers
 * comes in one recvmmsg(), with no per-datagram lookup, nextTick or send request.
 * Why a waiter object and not a promise: the proxy's fast path answers in
 * the same callback that read the answer, with nothing queued in between.
 * Timeouts are swept by one coarse timer (100 ms), not a timer per query.
 */
import { randomFillSync } from 'node:crypto';
import { constants } from 'node:os';
import { openDgramSocket } from './dgram-socket.ts';
import type { OpenUpstreamSocket, UdpEndpoint, UpstreamSocket } from './dns-types.ts';

export interface UdpUpstreamOptions {
  /** Queries leave from their pod's address ('pod') or the node's ('node'). Default 'pod'. */
  from?: 'pod' | 'node';
  /** 'node': sockets in the pool. Default 4. */
  sockets?: number;
  /** 'pod': sockets open at most (≤ 16384). Default 1024. */
  maxSockets?: number;
  /** 'pod': sockets one pod may hold (one per server it asks), so one pod cannot take the pool. Default 8. */
  maxSocketsPerPod?: number;
  /** 'pod': a socket with nothing pending and unused this long is closed. Default 30 s. */
  idleMs?: number;
  /**
   * How sockets are made: the agent hands in the datapath's batched ones
   * (openUdpFrom for 'pod'). Default: dgram, which cannot send from a pod's
   * address ('pod' queries then fail, as they must).
   */
  openSocket?: OpenUpstreamSocket;
}

/** Who gets the outcome of one send(): exactly one of the two is called, once. */
export interface UpstreamWaiter {
  /** The answer, under the pod's ID again (the receiver owns it). */
  onAnswer(answer: Buffer): void;
  onError(err: Error): void;
}

/** One socket: a pod's to one server ('pod'), or one of the node's shared ones. */
interface Slot {
  /** Its number in pending keys (slot × 65536 + ID). */
  readonly index: number;
  readonly socket: UpstreamSocket;
  /** 'pod': the pod's address and the socket's server; '' and null for the node's. */
  readonly source: string;
  readonly server: UdpEndpoint | null;
  pending: number;
  lastUsed: number;
}

interface Pending {
  waiter: UpstreamWaiter;
  slot: Slot;
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

/** No socket could carry the query in its pod's name (not made, or none free): it was not sent. */
export class UpstreamSocketError extends Error {}

/** Random IDs drawn this many at a time from the CSPRNG. */
const ID_POOL = 2048;
/** Slot × 65536 + ID stays a small integer (V8 Smi, below 2^30). */
const MAX_SLOTS = 16384;
/**
 * Receive and send buffer bytes per socket: a cap, not an allocation. A busy
 * pod's answers wait here while the proxy is off the CPU (at 5,000 answers/s,
 * 1 MiB lost some in bench/dns; each small datagram costs ~2 KiB of it).
 */
const SOCKET_BUFFER = 1 << 22;

export class UdpUpstream {
  readonly #from: 'pod' | 'node';
  readonly #open: OpenUpstreamSocket;
  /** By index; undefined: free. */
  readonly #slots: (Slot | undefined)[] = [];
  readonly #freeSlots: number[] = [];
  /** 'pod': a pod's sockets, one per server it asks (a short list). */
  readonly #byPod = new Map<string, Slot[]>();
  readonly #maxSockets: number;
  readonly #maxPerPod: number;
  readonly #idleMs: number;
  /** key = slot index × 65536 + upstream ID */
  readonly #pending = new Map<number, Pending>();
  readonly #sweep: NodeJS.Timeout;
  readonly #ids = new Uint16Array(ID_POOL);
  #nextId = ID_POOL;
  #next = 0;
  #lastIdleCheck = 0;
  #closed = false;
  readonly counters = {
    sent: 0, answered: 0, timeouts: 0, mismatched: 0, sendErrors: 0,
    /** 'pod': sockets that could not be made, and queries that found none free (not sent). */
    socketErrors: 0, poolFull: 0,
    /** 'pod': sockets open now. */
    sockets: 0,
  };

  constructor(opts: UdpUpstreamOptions = {}) {
    this.#from = opts.from ?? 'pod';
    this.#open = opts.openSocket ?? openDgramSocket;
    this.#maxSockets = Math.min(opts.maxSockets ?? 1024, MAX_SLOTS);
    this.#maxPerPod = opts.maxSocketsPerPod ?? 8;
    this.#idleMs = opts.idleMs ?? 30_000;
    if (this.#from === 'node') for (let i = 0, n = opts.sockets ?? 4; i < n; i++) this.#openSlot('', null);
    this.#sweep = setInterval(() => this.#expire(), 100);
    this.#sweep.unref();
  }

  /**
   * Sends pod `podIp`'s query (`payload`, its question ending at
   * `questionEnd`) to `server`; the outcome goes to `waiter`, possibly before
   * this returns (an error found at once). `payload` must stay unchanged until then.
   */
  send(podIp: string, server: UdpEndpoint, payload: Buffer, timeoutMs: number, questionEnd: number, waiter: UpstreamWaiter): void {
    if (this.#closed) return waiter.onError(new Error('DNS upstream closed'));
    const now = performance.now();
    let slot: Slot;
    if (this.#from === 'node') {
      slot = this.#slots[this.#next++ % this.#slots.length]!;
    } else {
      try {
        slot = this.#podSlot(podIp, server);
      } catch (err) {
        return waiter.onError(err as Error);
      }
    }
    const base = slot.index * 65536;
    let id = this.#randomId();
    for (let tries = 0; this.#pending.has(base + id) && tries < 64; tries++) id = this.#randomId();
    if (this.#pending.has(base + id)) return waiter.onError(new Error('DNS upstream: no free query ID'));
    const key = base + id;
    this.#pending.set(key, { waiter, slot, query: payload, questionEnd, server, deadline: now + timeoutMs });
    slot.pending++;
    slot.lastUsed = now;
    this.counters.sent++;
    // The socket copies the datagram at once: lend it the upstream ID, then give the pod's back.
    const podId0 = payload[0]!;
    const podId1 = payload[1]!;
    payload[0] = id >> 8;
    payload[1] = id & 0xff;
    try {
      slot.socket.send(server.ip, server.port, payload, key);
    } catch (err) {
      if (this.#settle(key)) waiter.onError(err as Error);
    } finally {
      payload[0] = podId0;
      payload[1] = podId1;
    }
  }

  /** send() as a promise: the answer under the pod's ID. */
  forward(podIp: string, server: UdpEndpoint, payload: Buffer, timeoutMs: number, questionEnd = payload.length): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => this.send(podIp, server, payload, timeoutMs, questionEnd, { onAnswer: resolve, onError: reject }));
  }

  /** The pod's socket to `server`: its own, a new one, or an error (counted). */
  #podSlot(podIp: string, server: UdpEndpoint): Slot {
    const list = this.#byPod.get(podIp);
    if (list) {
      for (let i = 0; i < list.length; i++) {
        const s = list[i]!;
        if (s.server!.port === server.port && s.server!.ip === server.ip) return s;
      }
    }
    const full = list && list.length >= this.#maxPerPod ? !this.#evictIdle(list) : this.counters.sockets >= this.#maxSockets && !this.#evictIdle(this.#slots);
    if (full) {
      this.counters.poolFull++;
      throw new UpstreamSocketError(`DNS upstream: all ${this.#maxSockets} sockets are busy; not sent from ${podIp}`);
    }
    try {
      return this.#openSlot(podIp, { ip: server.ip, port: server.port });
    } catch (err) {
      this.counters.socketErrors++;
      throw new UpstreamSocketError(`DNS upstream: no socket from ${podIp} to ${server.ip}:${server.port}: ${(err as Error).message}`);
    }
  }

  #openSlot(source: string, server: UdpEndpoint | null): Slot {
    let slot: Slot | undefined = undefined;
    const socket = this.#open((msg, from) => this.#onMessage(slot!, msg, from), {
      ...(server ? { source, peer: server } : {}),
      recvBufferBytes: SOCKET_BUFFER,
      sendBufferBytes: SOCKET_BUFFER,
      onSendError: (key, errno) => this.#onSendError(key, errno),
    });
    socket.unref();
    const index = this.#freeSlots.pop() ?? this.#slots.length;
    slot = { index, socket, source, server, pending: 0, lastUsed: performance.now() };
    this.#slots[index] = slot;
    if (server) {
      const list = this.#byPod.get(source);
      if (list) list.push(slot);
      else this.#byPod.set(source, [slot]);
      this.counters.sockets++;
    }
    return slot;
  }

  #closeSlot(slot: Slot): void {
    slot.socket.close();
    this.#slots[slot.index] = undefined;
    this.#freeSlots.push(slot.index);
    const list = this.#byPod.get(slot.source);
    if (list) {
      const i = list.indexOf(slot);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#byPod.delete(slot.source);
      this.counters.sockets--;
    }
  }

  /** Closes the least recently used socket of `among` with nothing pending; false when every one waits for answers. */
  #evictIdle(among: readonly (Slot | undefined)[]): boolean {
    let oldest: Slot | undefined;
    for (const s of among) if (s && s.pending === 0 && (!oldest || s.lastUsed < oldest.lastUsed)) oldest = s;
    if (!oldest) return false;
    this.#closeSlot(oldest);
    return true;
  }

  #randomId(): number {
    if (this.#nextId === ID_POOL) {
      randomFillSync(this.#ids);
      this.#nextId = 0;
    }
    return this.#ids[this.#nextId++]!;
  }

  /** Takes `key` out of pending (and its slot's count); the entry, if it was there. */
  #settle(key: number): Pending | undefined {
    const p = this.#pending.get(key);
    if (!p) return undefined;
    this.#pending.delete(key);
    p.slot.pending--;
    return p;
  }

  #onMessage(slot: Slot, msg: Buffer, from: UdpEndpoint): void {
    if (msg.length < 12) return void this.counters.mismatched++;
    const key = slot.index * 65536 + ((msg[0]! << 8) | msg[1]!);
    const p = this.#pending.get(key);
    if (!p || p.slot !== slot || from.ip !== p.server.ip || from.port !== p.server.port || !questionMatches(p.query, p.questionEnd, msg)) {
      this.counters.mismatched++;
      return;
    }
    this.#settle(key);
    msg[0] = p.query[0]!;
    msg[1] = p.query[1]!;
    this.counters.answered++;
    p.waiter.onAnswer(msg);
  }

  #onSendError(key: number, errno: number): void {
    this.counters.sendErrors++;
    const p = this.#settle(key);
    if (!p) return;
    // Later, not now: this can run inside send(), while the query still carries the upstream ID.
    queueMicrotask(() => p.waiter.onError(new Error(`DNS upstream ${p.server.ip}:${p.server.port}: send failed: ${errnoName(errno)}`)));
  }

  #expire(): void {
    const now = performance.now();
    for (const [key, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#settle(key);
      this.counters.timeouts++;
      p.waiter.onError(new UpstreamTimeoutError(p.server));
    }
    if (this.#from === 'pod' && now - this.#lastIdleCheck >= 1000) {
      this.#lastIdleCheck = now;
      const cutoff = now - this.#idleMs;
      for (const s of this.#slots) if (s && s.pending === 0 && s.lastUsed < cutoff) this.#closeSlot(s);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const s of this.#slots) s?.socket.close();
    this.#slots.length = 0;
    this.#byPod.clear();
    this.counters.sockets = 0;
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
