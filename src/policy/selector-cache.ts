/**
 * The selector cache: every distinct selector used by any rule, with the set
 * of identities it selects right now (Cilium's pkg/policy/selectorcache.go).
 *
 * Selections are copy-on-write: a change replaces the Set and bumps
 * `version`, so a compiled policy that captured a selection keeps an
 * immutable view, and comparing versions tells whether it is stale.
 * Methods named *Locked assume the caller (the engine) serialises all calls.
 */
import type { LabelSet, Selector } from '../labels/index.ts';

export interface CachedSelector {
  readonly selector: Selector;
  selection: ReadonlySet<number>;
  version: number;
  refs: number;
}

export class SelectorCache {
  readonly #entries = new Map<string, CachedSelector>();
  readonly #identities = new Map<number, LabelSet>();

  /** Takes a reference on `sel`, computing its selection on first use. */
  registerLocked(sel: Selector): CachedSelector {
    let c = this.#entries.get(sel.key);
    if (c === undefined) {
      const selection = new Set<number>();
      for (const [id, labels] of this.#identities) if (sel.matches(labels)) selection.add(id);
      c = { selector: sel, selection, version: 0, refs: 0 };
      this.#entries.set(sel.key, c);
    }
    c.refs++;
    return c;
  }

  unregisterLocked(sel: Selector): void {
    const c = this.#entries.get(sel.key);
    if (c !== undefined && --c.refs <= 0) this.#entries.delete(sel.key);
  }

  get(sel: Selector): CachedSelector | undefined {
    return this.#entries.get(sel.key);
  }

  /** Adds an identity; returns the selectors whose selection grew. */
  addIdentityLocked(id: number, labels: LabelSet): CachedSelector[] {
    this.#identities.set(id, labels);
    const changed: CachedSelector[] = [];
    for (const c of this.#entries.values()) {
      if (!c.selection.has(id) && c.selector.matches(labels)) {
        c.selection = new Set(c.selection).add(id);
        c.version++;
        changed.push(c);
      }
    }
    return changed;
  }

  /** Removes an identity; returns the selectors whose selection shrank. */
  removeIdentityLocked(id: number): CachedSelector[] {
    this.#identities.delete(id);
    const changed: CachedSelector[] = [];
    for (const c of this.#entries.values()) {
      if (c.selection.has(id)) {
        const next = new Set(c.selection);
        next.delete(id);
        c.selection = next;
        c.version++;
        changed.push(c);
      }
    }
    return changed;
  }

  labelsOf(id: number): LabelSet | undefined {
    return this.#identities.get(id);
  }

  get size(): number {
    return this.#entries.size;
  }
}
