/**
 * The packet loops of the datapath's UDP sockets, in batches:
 *
 *   readable ─► drainBatches: recvmmsg(32) ─► onEntry(i) per datagram ─► again while the batch came back full
 *   send(fd, dst, payload) ─► BatchedSender: copy into the sendmmsg vector
 *        └─ at the end of the current callback (queueMicrotask), when full, or before another fd: sendmmsg()
 *
 * Why a microtask and not a timer: nothing waits. A datagram queued while
 * handling a batch of queries or answers leaves as soon as that handler
 * returns, together with the rest of the batch; a datagram queued on its
 * own (an answer released by a promise) leaves at the end of that same
 * microtask checkpoint. Callers run inside Node callbacks (watchReadable
 * schedules with setImmediate for this reason), where microtasks are drained.
 */
import { ERRNO, MSG_DONTWAIT, MSG_TRUNC, writeSockaddrIn, type UdpLibc } from './transparent-udp-libc.ts';
import { SendBatch, type RecvBatch } from './transparent-udp-mmsg.ts';

/** recvmmsg() calls per readiness event: 8 × 32 = 256 datagrams, then the loop gets its turn back. */
const MAX_BATCHES_PER_WAKE = 8;
const EAGAIN = ERRNO['EAGAIN'];
const EWOULDBLOCK = ERRNO['EWOULDBLOCK'];
const EINTR = ERRNO['EINTR'];

/**
 * Reads what is queued on `fd` into `batch`, calling `onEntry(i, length)` for
 * each datagram in order (a length above batch.slotBytes means it was cut).
 * `onEntry` must not throw; `stop()` is checked between batches and entries.
 */
export function drainBatches(libc: UdpLibc, fd: number, batch: RecvBatch, onEntry: (i: number, length: number) => void, stop: () => boolean): void {
  let used = batch.count;
  for (let round = 0; round < MAX_BATCHES_PER_WAKE && !stop(); round++) {
    batch.reset(used);
    const n = libc.recvmmsg(fd, batch.address, batch.count, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      const errno = libc.errno();
      if (errno === EAGAIN || errno === EWOULDBLOCK || errno === EINTR) return;
      used = batch.count; // what a failed call left in the vector is not ours to know
      continue; // ICMP-reported errors (ECONNREFUSED…) are per-datagram: read on
    }
    for (let i = 0; i < n && !stop(); i++) onEntry(i, batch.length(i));
    // Fewer than asked: the queue was empty (a datagram that came since wakes the poll again).
    if (n < batch.count) return;
    used = n;
  }
}

export interface BatchedSenderEvents {
  /** `n` datagrams left. */
  onSent(n: number): void;
  /** The datagram queued with `token` on `fd` was refused by the kernel (errno); EAGAIN: the send buffer was full. */
  onError(token: number, errno: number, fd: number): void;
}

/** Up to this many datagrams per sendmmsg(). */
const SEND_BATCH = 64;
/** Larger payloads bypass the vector and go out alone with sendto(). */
const SEND_SLOT = 4096;

/**
 * Datagrams queued now, sent together: one sendmmsg() per fd run, at the
 * end of the current callback. Order per fd is kept.
 */
export class BatchedSender {
  readonly #libc: UdpLibc;
  readonly #batch = new SendBatch(SEND_BATCH, SEND_SLOT);
  readonly #tokens = new Float64Array(SEND_BATCH);
  readonly #events: BatchedSenderEvents;
  readonly #to = new Uint8Array(16);
  #fd = -1;
  #scheduled = false;
  #closed = false;

  constructor(libc: UdpLibc, events: BatchedSenderEvents) {
    this.#libc = libc;
    this.#events = events;
  }

  /** Queues `payload` from `fd` to `ip` (host-order u32):`port`; `token` names it in onError. */
  send(fd: number, ip: number, port: number, payload: Uint8Array, token: number): void {
    if (this.#closed) return;
    const b = this.#batch;
    if (b.length > 0 && fd !== this.#fd) this.flush();
    if (payload.length > b.slotBytes) {
      this.flush();
      writeSockaddrIn(this.#to, 0, ip, port);
      if (this.#libc.sendto(fd, payload, payload.length, MSG_DONTWAIT, this.#to, 16) < 0) this.#events.onError(token, this.#libc.errno(), fd);
      else this.#events.onSent(1);
      return;
    }
    this.#fd = fd;
    this.#tokens[b.length] = token;
    b.add(ip, port, payload);
    if (b.full) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** Sends what is queued now. */
  readonly flush = (): void => {
    this.#scheduled = false;
    const b = this.#batch;
    const n = b.length;
    if (n === 0 || this.#closed) return;
    let failed: number[] | undefined;
    let i = 0;
    while (i < n) {
      const r = this.#libc.sendmmsg(this.#fd, b.addressOf(i), n - i, MSG_DONTWAIT);
      if (r > 0) {
        this.#events.onSent(r);
        i += r;
        continue;
      }
      const errno = this.#libc.errno();
      if (errno === EINTR) continue;
      // The datagram at i failed (sendmmsg reports the first failure); a full buffer fails the rest too.
      const end = errno === EAGAIN || errno === EWOULDBLOCK ? n : i + 1;
      for (; i < end; i++) (failed ??= []).push(this.#tokens[i]!, errno);
    }
    b.clear();
    const fd = this.#fd;
    // Reported after the vector is free again: onError may queue more (e.g. an error reply).
    if (failed) for (let k = 0; k < failed.length; k += 2) this.#events.onError(failed[k]!, failed[k + 1]!, fd);
  };

  /** Flushes, then frees the vector; later sends are dropped. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#batch.free();
  }
}
