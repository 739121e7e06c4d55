/**
 * Per-resource history of committed changes, kept so that a watch can resume
 * from a resourceVersion it was given earlier (by a list, a previous watch
 * event or a bookmark).
 *
 * Invariant: every event of this resource with rv > `evictedThrough` is in the
 * ring. A watch from rv ≥ evictedThrough can therefore be served without a gap;
 * an older rv gets 410 Expired, exactly the contract informers expect ("if the
 * requested resourceVersion is too old, relist"). After a restart the ring
 * starts empty with evictedThrough = the restored counter, so every RV handed
 * out by the previous process (except the last) is expired.
 *
 * A fixed array with a moving head, not Array.shift: pushing is O(1) with no
 * reallocation on the write path.
 */

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent<T> {
  rv: number;
  type: EventType;
  object: T;
  /** The object before this change (MODIFIED only); needed to turn a change that
   *  moves an object into or out of a watch's selector into ADDED / DELETED. */
  previous: T | undefined;
}

export class EventHistory<T> {
  readonly #ring: (StoredEvent<T> | undefined)[];
  #head = 0;
  #size = 0;
  #evictedThrough: number;

  constructor(capacity: number, startRV: number) {
    this.#ring = new Array<StoredEvent<T> | undefined>(Math.max(0, capacity)).fill(undefined);
    this.#evictedThrough = startRV;
  }

  /** The oldest resourceVersion a watch may still start from. */
  get evictedThrough(): number { return this.#evictedThrough; }

  push(ev: StoredEvent<T>): void {
    const cap = this.#ring.length;
    if (cap === 0) { this.#evictedThrough = ev.rv; return; }
    if (this.#size === cap) {
      this.#evictedThrough = this.#ring[this.#head]!.rv;
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % cap;
      this.#size--;
    }
    this.#ring[(this.#head + this.#size) % cap] = ev;
    this.#size++;
  }

  /** Events with rv > `rv`, oldest first; undefined when some of them were evicted. */
  since(rv: number): StoredEvent<T>[] | undefined {
    if (rv < this.#evictedThrough) return undefined;
    const out: StoredEvent<T>[] = [];
    const cap = this.#ring.length;
    for (let i = 0; i < this.#size; i++) {
      const ev = this.#ring[(this.#head + i) % cap]!;
      if (ev.rv > rv) out.push(ev);
    }
    return out;
  }
}
