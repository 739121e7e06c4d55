/**
 * What `apply` sends to change a live object: a JSON merge patch (RFC 7386)
 * computed three ways, as kubectl apply does (k8s.io/kubectl apply, "three-way
 * merge"):
 *
 *   last applied (annotation)  ─┐
 *   desired (the manifest)     ─┼─► patch: set what the manifest says that differs from live;
 *   live (the server's object) ─┘          null what the last apply set and the manifest dropped
 *
 * Fields nobody applied (defaults, what controllers filled in, labels added by
 * `palisade label`) are left alone. Lists are replaced whole, as merge patch does.
 * An empty patch means the object already is what the manifest says: "unchanged".
 */
import type { JsonObject } from './kube-client.ts';

/** kubectl's annotation: the manifest as last applied, so the next apply knows what it may remove. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** The merge patch taking `live` to `desired`, removing only what `lastApplied` put there. Empty when nothing changes. */
export function threeWayMergePatch(lastApplied: JsonObject | undefined, desired: JsonObject, live: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const [key, want] of Object.entries(desired)) {
    if (want === undefined) continue;
    const have = live[key];
    if (isJsonObject(want) && isJsonObject(have)) {
      const before = lastApplied?.[key];
      const sub = threeWayMergePatch(isJsonObject(before) ? before : undefined, want, have);
      if (Object.keys(sub).length > 0) patch[key] = sub;
    } else if (!deepEqual(want, have)) {
      patch[key] = want;
    }
  }
  for (const key of Object.keys(lastApplied ?? {})) {
    if (!(key in desired) && live[key] !== undefined) patch[key] = null;
  }
  return patch;
}

/** The last-applied configuration recorded on a live object, if any and readable. */
export function lastAppliedOf(live: { metadata?: { annotations?: Record<string, string> } }): JsonObject | undefined {
  const text = live.metadata?.annotations?.[LAST_APPLIED_ANNOTATION];
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isJsonObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
