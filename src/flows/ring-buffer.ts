/**
 * The per-node flow ring: a fixed array written round and round, as Hubble's
 * container/ring. Every push has a sequence number (`written` before the push);
 * the slot of sequence s is `s & mask`. Readers hold sequence numbers, not
 * slots, so they can tell when the writer has lapped them:
 *
 *   oldest = max(0, written - capacity)     readable: [oldest, written)
 *
 * A reader whose next sequence is below `oldest` has lost `oldest - next`
 * events; the ring counts them under HUBBLE_RING_BUFFER. Producers that drop
 * events before they reach the ring (a full perf buffer, a full queue) report
 * them with `recordLost`.
 *
 * Invariants: push allocates nothing (the two arrays are preallocated); the
 * ring is single-threaded (JS), so a reader never sees half a push.
 */
import assert from 'node:assert/strict';
import type { LostEventSource } from './flow.ts';

export const DEFAULT_RING_CAPACITY = 8192;

export class FlowRing<T> {
  readonly capacity: number;
  readonly #mask: number;
  readonly #items: (T | undefined)[];
  /** Epoch ms of each slot's item, for since/until reads without touching the items. */
  readonly #times: Float64Array;
  #written = 0;
  readonly #lost = new Map<LostEventSource, number>();

  constructor(capacity = DEFAULT_RING_CAPACITY) {
    assert(Number.isInteger(capacity) && capacity >= 1, `ring capacity must be a positive integer, got ${capacity}`);
    // Power of two, so a slot is `seq & mask` rather than a division.
    let cap = 1;
    while (cap < capacity) cap *= 2;
    this.capacity = cap;
    this.#mask = cap - 1;
    this.#items = new Array<T | undefined>(cap).fill(undefined);
    this.#times = new Float64Array(cap);
  }

  /** How many items were ever pushed: the sequence number the next push gets. */
  get written(): number {
    return this.#written;
  }

  /** The oldest sequence number still readable. */
  get oldest(): number {
    return this.#written > this.capacity ? this.#written - this.capacity : 0;
  }

  get size(): number {
    return this.#written - this.oldest;
  }

  push(item: T, timeMs: number): void {
    const slot = this.#written & this.#mask;
    this.#items[slot] = item;
    this.#times[slot] = timeMs;
    this.#written++;
  }

  /** The item of a sequence number, or undefined when overwritten or not yet written. */
  at(seq: number): T | undefined {
    if (seq < this.oldest || seq >= this.#written) return undefined;
    return this.#items[seq & this.#mask];
  }

  timeAt(seq: number): number {
    if (seq < this.oldest || seq >= this.#written) return NaN;
    return this.#times[seq & this.#mask] ?? NaN;
  }

  /** The last n items, oldest first. */
  *last(n: number): IterableIterator<T> {
    const end = this.#written;
    for (let s = Math.max(this.oldest, end - n); s < end; s++) {
      const item = this.at(s);
      if (item !== undefined) yield item;
    }
  }

  /**
   * Items with since ≤ time ≤ until, oldest first. Producers on several
   * sockets are not perfectly ordered, so this scans rather than bisects
   * (8,192 float compares: microseconds).
   */
  *range(sinceMs = -Infinity, untilMs = Infinity): IterableIterator<T> {
    const end = this.#written;
    for (let s = this.oldest; s < end; s++) {
      const t = this.#times[s & this.#mask] ?? NaN;
      if (t >= sinceMs && t <= untilMs) {
        const item = this.at(s);
        if (item !== undefined) yield item;
      }
    }
  }

  /** The first sequence at or after `from` whose time is ≥ sinceMs (or `written`). */
  firstSince(sinceMs: number, from = this.oldest): number {
    const end = this.#written;
    for (let s = Math.max(from, this.oldest); s < end; s++) if ((this.#times[s & this.#mask] ?? NaN) >= sinceMs) return s;
    return end;
  }

  recordLost(source: LostEventSource, n = 1): void {
    this.#lost.set(source, (this.#lost.get(source) ?? 0) + n);
  }

  /** Lost events by source since the ring was made. */
  lost(): Record<string, number> {
    return Object.fromEntries(this.#lost);
  }
}
