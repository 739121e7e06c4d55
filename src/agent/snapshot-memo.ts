/**
 * Answers the policy engine gave for one snapshot, by key: floods of packets,
 * queries and flow records between the same peers ask the engine once.
 * A new snapshot starts empty (the old one's answers go with it); at most
 * `max` answers are kept per snapshot, then it starts over.
 */
import type { PolicySnapshot } from '../policy/index.ts';

export type SnapshotMemo<T> = (snap: PolicySnapshot, key: string, compute: () => T) => T;

export function snapshotMemo<T>(max: number): SnapshotMemo<T> {
  const bySnapshot = new WeakMap<PolicySnapshot, Map<string, T>>();
  return (snap, key, compute) => {
    let cache = bySnapshot.get(snap);
    if (!cache) bySnapshot.set(snap, (cache = new Map()));
    const hit = cache.get(key);
    if (hit !== undefined || cache.has(key)) return hit as T;
    if (cache.size >= max) cache.clear();
    const v = compute();
    cache.set(key, v);
    return v;
  };
}
