/**
 * Numeric identities for label sets.
 *
 * An identity is derived from a hash of the canonical label text, so every
 * agent that sees the same label set arrives at the same number without
 * asking anyone (Cilium coordinates through CiliumIdentity objects; in the lab
 * and for `policy trace` a deterministic hash gives the same stability). On a
 * collision the next free number is probed, so two agents could disagree only
 * if they saw colliding label sets in a different order.
 */
import type { LabelSet } from '../labels/index.ts';
import { MAX_ALLOCATED_IDENTITY, MIN_ALLOCATED_IDENTITY, RESERVED_LABELS } from './reserved.ts';

const SPAN = MAX_ALLOCATED_IDENTITY - MIN_ALLOCATED_IDENTITY + 1;

interface Allocation {
  id: number;
  labels: LabelSet;
  refs: number;
}

export class IdentityAllocator {
  readonly #byLabels = new Map<string, Allocation>();
  readonly #byId = new Map<number, Allocation>();

  constructor() {
    for (const [id, labels] of RESERVED_LABELS) {
      const a = { id, labels, refs: Number.POSITIVE_INFINITY };
      this.#byLabels.set(labels.canonical, a);
      this.#byId.set(id, a);
    }
  }

  /** Takes a reference on the identity of `labels`, allocating it on first use. */
  acquire(labels: LabelSet): number {
    const found = this.#byLabels.get(labels.canonical);
    if (found) {
      found.refs++;
      return found.id;
    }
    let id = MIN_ALLOCATED_IDENTITY + (fnv1a(labels.canonical) % SPAN);
    for (let probes = 0; this.#byId.has(id); probes++) {
      if (probes >= SPAN) throw new Error('identity space exhausted: more than 65,280 distinct label sets');
      id = id === MAX_ALLOCATED_IDENTITY ? MIN_ALLOCATED_IDENTITY : id + 1;
    }
    const a = { id, labels, refs: 1 };
    this.#byLabels.set(labels.canonical, a);
    this.#byId.set(id, a);
    return id;
  }

  /** Drops a reference; the identity is freed when the last user is gone. Returns true when freed. */
  release(id: number): boolean {
    const a = this.#byId.get(id);
    if (!a || !Number.isFinite(a.refs)) return false;
    if (--a.refs > 0) return false;
    this.#byId.delete(id);
    this.#byLabels.delete(a.labels.canonical);
    return true;
  }

  labelsOf(id: number): LabelSet | undefined {
    return this.#byId.get(id)?.labels;
  }

  /** Identities currently allocated, reserved ones included. */
  ids(): IterableIterator<number> {
    return this.#byId.keys();
  }
}

/** 32-bit FNV-1a over UTF-16 code units: tiny, fast, well spread for short strings. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
