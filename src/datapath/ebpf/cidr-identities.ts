/**
 * Local identities for the prefixes policies name (pure; no I/O).
 *
 *   toCIDR / toCIDRSet / fromCIDR… of local endpoints' policies
 *     ─► collectPolicyCidrs ─► one identity per prefix (1<<24 + n, Cilium's
 *        local scope) ─► ipcache prefix entries; policy keys per entry
 *
 * "CIDR rules only ever select addresses outside the cluster" holds by
 * longest-prefix match: pods and nodes have /32 entries of their own.
 */
import { fnv1a, IDENTITY_WORLD } from '../../identity/index.ts';
import type { CompiledEntry, PolicySnapshot } from '../../policy/index.ts';
import type { LocalEndpoint } from '../types.ts';

export const LOCAL_IDENTITY_BASE = 1 << 24;

/** Each compiled entry of the local endpoints' policies, once per identity (endpoints of one identity share a policy). */
export function* localEntries(snap: PolicySnapshot, locals: readonly LocalEndpoint[]): Generator<CompiledEntry> {
  const seen = new Set<number>();
  for (const l of locals) {
    const p = snap.policyOf(l.key);
    if (!p || seen.has(p.identity)) continue;
    seen.add(p.identity);
    for (const d of [p.ingress, p.egress]) {
      yield* d.deny;
      yield* d.allow;
    }
  }
}

/** Every IPv4 prefix the policy of a local endpoint names (peers and excepts), but 0.0.0.0/0. */
export function collectPolicyCidrs(snap: PolicySnapshot, locals: readonly LocalEndpoint[]): string[] {
  const out = new Set<string>();
  for (const c of localEntries(snap, locals)) {
    for (const cidr of c.entry.peers.cidrs) {
      for (const text of [cidr.cidr, ...cidr.exceptCidrs]) {
        const n = normaliseCidr(text);
        if (n && n !== '0.0.0.0/0') out.add(n);
      }
    }
  }
  return [...out].sort();
}

/** `a.b.c.d/n` with the host bits cleared; null for IPv6 or nonsense. */
export function normaliseCidr(text: string): string | null {
  const [addr, lenText] = text.includes('/') ? text.split('/') : [text, '32'];
  const len = Number(lenText);
  const parts = (addr ?? '').split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255) || !Number.isInteger(len) || len < 0 || len > 32) return null;
  const n = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const m = (n & mask) >>> 0;
  return `${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}/${len}`;
}

export function cidrRange(c: string): [number, number] {
  const [addr, len] = c.split('/');
  const p = addr!.split('.').map(Number);
  const start = ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
  const size = 2 ** (32 - Number(len));
  return [start, start + size - 1];
}

/** Whether prefix `inner` lies inside prefix `outer` (both normalised). */
export const inside = (inner: string, outer: string): boolean => {
  const [a, b] = cidrRange(inner);
  const [c, d] = cidrRange(outer);
  return a >= c && b <= d;
};

/** One local identity per policy prefix, stable for a given prefix while no two prefixes collide. */
export class CidrIdentities {
  readonly #ids = new Map<string, number>();

  constructor(prefixes: readonly string[]) {
    const used = new Set<number>();
    for (const p of prefixes) {
      let id = LOCAL_IDENTITY_BASE + (fnv1a(p) & 0xffff);
      while (used.has(id)) id = id + 1 >= LOCAL_IDENTITY_BASE + 0x10000 ? LOCAL_IDENTITY_BASE : id + 1;
      used.add(id);
      this.#ids.set(p, id);
    }
  }

  entries(): IterableIterator<[string, number]> {
    return this.#ids.entries();
  }

  all(): IterableIterator<number> {
    return this.#ids.values();
  }

  /**
   * The identities a packet's address can have when it lies in `cidr` and
   * outside every `except`: each policy prefix inside cidr and not inside an
   * except (the ipcache gives an address its longest prefix), and world for
   * addresses under no prefix at all when cidr is everything.
   */
  within(cidr: string, excepts: readonly string[]): number[] {
    const c = normaliseCidr(cidr);
    if (!c) return [];
    const ex = excepts.map(normaliseCidr).filter((e): e is string => e !== null);
    const out: number[] = c === '0.0.0.0/0' ? [IDENTITY_WORLD] : [];
    for (const [p, id] of this.#ids) if (inside(p, c) && !ex.some((e) => inside(p, e))) out.push(id);
    return out;
  }
}
