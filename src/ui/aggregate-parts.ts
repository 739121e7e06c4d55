/**
 * The aggregator's building blocks: bounded counters, a per-second rate
 * window and a ring of time buckets. Each update is O(1) and allocates
 * nothing on the common path; output (sorted lists, points) is built only
 * when a snapshot is.
 */
import type { Count, SeriesPoint } from './api.ts';

/** The key that collects what no longer fits in a bounded counter. */
export const OTHER = '(other)';

/** Counts per key, at most `max` keys; past that, new keys count under "(other)". */
export class BoundedCounts {
  readonly #m = new Map<string, number>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  add(key: string, n = 1): void {
    const m = this.#m;
    const v = m.get(key);
    if (v !== undefined) m.set(key, v + n);
    else if (m.size < this.#max) m.set(key, n);
    else m.set(OTHER, (m.get(OTHER) ?? 0) + n);
  }

  /** Most first (ties by key), at most `limit`. */
  top(limit = Infinity): Count[] {
    const out: Count[] = [];
    for (const [key, count] of this.#m) out.push({ key, count });
    out.sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out.length > limit ? out.slice(0, limit) : out;
  }
}

/** Events per second over the last `seconds` whole seconds (a slot per second). */
export class RateWindow {
  readonly #counts: Uint32Array;
  readonly #secs: Float64Array;

  constructor(seconds: number) {
    this.#counts = new Uint32Array(seconds);
    this.#secs = new Float64Array(seconds).fill(-1);
  }

  add(sec: number, n = 1): void {
    const i = sec % this.#counts.length;
    if (this.#secs[i] === sec) this.#counts[i] = (this.#counts[i] as number) + n;
    else if ((this.#secs[i] as number) < sec) {
      this.#secs[i] = sec;
      this.#counts[i] = n;
    }
    // older than the window: not a rate any more
  }

  /** Per second over the window ending with second `nowSec` (inclusive). */
  rate(nowSec: number): number {
    const w = this.#counts.length;
    let sum = 0;
    for (let i = 0; i < w; i++) {
      const s = this.#secs[i] as number;
      if (s > nowSec - w && s <= nowSec) sum += this.#counts[i] as number;
    }
    return sum / w;
  }
}

/** A ring of `n` buckets of `bucketMs` each, every bucket a small record of counts by key. */
export class BucketSeries {
  readonly #bucketMs: number;
  readonly #t: Float64Array;
  readonly #values: Record<string, number>[];

  constructor(n: number, bucketMs: number) {
    this.#bucketMs = bucketMs;
    this.#t = new Float64Array(n).fill(-1);
    this.#values = Array.from({ length: n }, () => ({}));
  }

  add(tMs: number, key: string, n = 1): void {
    const start = tMs - (tMs % this.#bucketMs);
    const i = Math.floor(start / this.#bucketMs) % this.#t.length;
    const at = this.#t[i] as number;
    if (at !== start) {
      if (at > start) return; // older than the ring
      this.#t[i] = start;
      this.#values[i] = {};
    }
    const v = this.#values[i] as Record<string, number>;
    v[key] = (v[key] ?? 0) + n;
  }

  /** Every bucket of the window ending at `nowMs`, oldest first; empty buckets as `{}`. */
  points(nowMs: number): SeriesPoint[] {
    const n = this.#t.length;
    const last = nowMs - (nowMs % this.#bucketMs);
    const out: SeriesPoint[] = [];
    for (let k = n - 1; k >= 0; k--) {
      const start = last - k * this.#bucketMs;
      const i = Math.floor(start / this.#bucketMs) % n;
      out.push({ t: start, values: this.#t[i] === start ? { ...(this.#values[i] as Record<string, number>) } : {} });
    }
    return out;
  }
}

/** The newest `n` items, newest first on read. */
export class Newest<T> {
  readonly #items: T[] = [];
  #next = 0;
  readonly #n: number;

  constructor(n: number) {
    this.#n = n;
  }

  push(x: T): void {
    if (this.#items.length < this.#n) this.#items.push(x);
    else this.#items[this.#next] = x;
    this.#next = (this.#next + 1) % this.#n;
  }

  newestFirst(): T[] {
    const out: T[] = [];
    const len = this.#items.length;
    for (let k = 1; k <= len; k++) out.push(this.#items[(this.#next - k + len * 2) % len] as T);
    return out;
  }
}
