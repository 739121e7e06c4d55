/**
 * Local identities for the addresses toFQDNs selectors allow (pure; no I/O).
 *
 *   DNS proxy learns name → IPs ─► agent ─► apply(state)
 *     state.fqdnIps(selectors), once per selector set in local policy
 *       ─► each address: {selector keys that hold it} + {policy prefixes around it}
 *       ─► one identity per distinct such membership (1<<24 + 0x10000 + n)
 *       ─► ipcache /32 → identity; policy keys {peer: identity, proto, port}
 *
 * Identities follow memberships, not addresses: a newly learned address of a
 * name already in force usually joins an existing identity, so the apply
 * that follows writes one ipcache entry and no policy key — the cheap path
 * the DNS proxy waits on before it releases the answer. An address leaving
 * every set loses its /32: new connections to it see world (or its CIDR)
 * again, while established ones live on in the CT, which judges only first
 * packets.
 *
 * Rules from compiled.ts kept here: "CIDR and FQDN rules only ever select
 * addresses outside the cluster" (the renderer writes pods' and nodes' /32s
 * after these, so they win); a CIDR rule covering a learned address still
 * selects it (the /32 hides the prefix's identity, so the membership carries
 * the prefixes); and `world` selects every one of them.
 */
import { fqdnSelectorKey, type NameMatcher } from '../../fqdn/index.ts';
import type { PolicySnapshot } from '../../policy/index.ts';
import type { DatapathState, LocalEndpoint } from '../types.ts';
import { cidrRange, LOCAL_IDENTITY_BASE, localEntries } from './cidr-identities.ts';
import { ipcacheKey } from './maps.ts';

/** FQDN identities sit above the CIDR ones (LOCAL_IDENTITY_BASE + 0..0xffff). */
export const FQDN_IDENTITY_BASE = LOCAL_IDENTITY_BASE + 0x10000;
export const FQDN_IDENTITY_COUNT = 0x10000;

/** The toFQDNs selector sets of local endpoints' policies, by fqdnSelectorKey. */
export function collectFqdnSelectors(snap: PolicySnapshot, locals: readonly LocalEndpoint[]): Map<string, readonly NameMatcher[]> {
  const out = new Map<string, readonly NameMatcher[]>();
  for (const c of localEntries(snap, locals)) {
    const f = c.entry.peers.fqdns;
    if (f.length === 0) continue;
    const key = fqdnSelectorKey(f);
    if (!out.has(key)) out.set(key, f);
  }
  return out;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

const ipNumber = (ip: string): number => {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
};

/**
 * What one address costs to work out, kept between applies while the policy
 * prefixes stay the same: its prefixes, its ipcache key, and the membership
 * text it had last (most addresses keep theirs, and a reused string is
 * hashed once).
 */
export type AddressMemo = Map<string, { prefixes: string; keyHex: string; keys: string; membership: string }>;

export class FqdnIdentities {
  /** address → identity */
  readonly #addresses = new Map<string, number>();
  /** membership text → identity, selector keys, prefixes */
  readonly #members = new Map<string, { id: number; keys: ReadonlySet<string>; prefixes: ReadonlySet<string> }>();
  readonly #ids = new Map<string, number>();
  readonly memo: AddressMemo;

  /**
   * `identityOf(membership)` numbers memberships (0..FQDN_IDENTITY_COUNT-1),
   * stably while they exist (the datapath keeps them between applies).
   */
  constructor(
    selectors: ReadonlyMap<string, readonly NameMatcher[]>,
    fqdnIps: DatapathState['fqdnIps'],
    policyPrefixes: readonly string[],
    identityOf: (membership: string) => number,
    /** Per-address work of earlier applies with the same policyPrefixes. */
    memo: AddressMemo = new Map(),
  ) {
    this.memo = memo;
    // address → the selector keys holding it: one key (the usual case) as a string, more as an array.
    const keysOf = new Map<string, string | string[]>();
    for (const [key, sel] of selectors) {
      for (const ip of fqdnIps?.(sel) ?? []) {
        if (ip.includes(':')) continue; // IPv6: the datapath is IPv4-only
        const have = keysOf.get(ip);
        if (have === undefined) keysOf.set(ip, key);
        else if (typeof have === 'string') keysOf.set(ip, [have, key]);
        else have.push(key);
      }
    }
    if (keysOf.size === 0) return;
    let ranges: (readonly [string, number, number])[] | null = null;
    for (const [ip, held] of keysOf) {
      const keys = typeof held === 'string' ? held : held.sort().join(' ');
      let known = memo.get(ip);
      if (!known) {
        if (!IPV4.test(ip)) continue; // not an address at all
        ranges ??= policyPrefixes.map((p) => [p, ...cidrRange(p)] as const);
        let prefixes = '';
        if (ranges.length > 0) {
          const n = ipNumber(ip);
          prefixes = ranges
            .filter(([, a, b]) => n >= a && n <= b)
            .map(([p]) => p)
            .join(' ');
        }
        known = { prefixes, keyHex: ipcacheKey(ip, 32), keys: '', membership: '' };
        memo.set(ip, known);
      }
      if (known.keys !== keys) {
        known.keys = keys;
        known.membership = `${keys}|${known.prefixes}`;
      }
      let m = this.#members.get(known.membership);
      if (!m) {
        const id = FQDN_IDENTITY_BASE + identityOf(known.membership);
        m = { id, keys: new Set(keys.split(' ')), prefixes: new Set(known.prefixes ? known.prefixes.split(' ') : []) };
        this.#members.set(known.membership, m);
        this.#ids.set(known.membership, id);
      }
      this.#addresses.set(ip, m.id);
    }
  }

  /** address → identity, for /32 ipcache entries. */
  addresses(): IterableIterator<[string, number]> {
    return this.#addresses.entries();
  }

  /** The ipcache key of a learned address (hex, as maps.ts writes it). */
  keyOf(ip: string): string {
    return this.memo.get(ip)?.keyHex ?? ipcacheKey(ip, 32);
  }

  get size(): number {
    return this.#addresses.size;
  }

  /** membership text → identity (what the datapath keeps stable). */
  memberships(): ReadonlyMap<string, number> {
    return this.#ids;
  }

  all(): number[] {
    return [...this.#members.values()].map((m) => m.id);
  }

  /** Identities of the addresses a toFQDNs selector set allows. */
  selectedBy(selectors: readonly NameMatcher[]): number[] {
    const key = fqdnSelectorKey(selectors);
    return [...this.#members.values()].filter((m) => m.keys.has(key)).map((m) => m.id);
  }

  /** Identities of learned addresses inside `cidr` and outside every except (all normalised). */
  within(cidr: string, excepts: readonly string[]): number[] {
    return [...this.#members.values()]
      .filter((m) => (cidr === '0.0.0.0/0' || m.prefixes.has(cidr)) && !excepts.some((e) => m.prefixes.has(e)))
      .map((m) => m.id);
  }
}
