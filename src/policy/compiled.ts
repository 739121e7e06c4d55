/**
 * Compiled per-identity policy and the decision over it.
 *
 *   rules selecting identity I ──► compileEndpointPolicy() ──► EndpointPolicy
 *   EndpointPolicy + peer + proto/port ──► decide() ──► Decision (no allocation)
 *
 * Precedence, as Cilium's datapath looks a packet up (bpf/lib/policy.h):
 *   1. a matching deny entry denies, whatever allows ("If there are any DENY
 *      policies that match the request, deny the request");
 *   2. allow entries without L7 win over L7 ones on the same port ("L4
 *      allow-all wins"), the most specific first: L3+L4, then L4-only, then
 *      L3-only, then allow-all;
 *   3. otherwise matching L7 entries redirect to the proxy, which passes a
 *      request if any of their rules matches (L7 rules of a port are a union);
 *   4. otherwise the direction's default: deny when enforced, else allow.
 */
import type { CachedSelector } from './selector-cache.ts';
import type { Direction, MatchKind, PolicyRule, Protocol, RuleEntry, RuleOrigin } from './model.ts';
import { type NamedPorts, portsMatch } from './ports.ts';
import { cidrContains } from './cidr.ts';
import { IDENTITY_WORLD, MAX_ALLOCATED_IDENTITY, MIN_ALLOCATED_IDENTITY } from '../identity/index.ts';
import { normaliseName } from '../fqdn/index.ts';

/** What the engine knows of the other side of a connection. */
export interface Peer {
  readonly identity: number;
  /** Needed to match CIDR and FQDN rules against world peers. */
  readonly ip?: string;
  /** The peer pod's named ports (egress named-port rules resolve against them). */
  readonly namedPorts?: NamedPorts;
}

/** Names an IP was learnt for through the DNS proxy, fully qualified. */
export type FqdnLookup = (ip: string) => readonly string[];
export const NO_FQDNS: FqdnLookup = () => [];

export interface CompiledEntry {
  readonly entry: RuleEntry;
  readonly selections: readonly ReadonlySet<number>[];
  readonly match: MatchKind;
  /** Lower is more specific (precedence step 2). */
  readonly rank: number;
}

export interface DirectionPolicy {
  /** Some rule selecting the endpoint speaks about this direction. */
  readonly selected: boolean;
  /** Default-deny is on: traffic no entry allows is dropped. */
  readonly enforced: boolean;
  readonly enforcedBy: readonly RuleOrigin[];
  readonly deny: readonly CompiledEntry[];
  readonly allow: readonly CompiledEntry[];
}

export interface EndpointPolicy {
  readonly identity: number;
  readonly ingress: DirectionPolicy;
  readonly egress: DirectionPolicy;
  /** Equal fingerprints, equal policy: how the engine tells which endpoints changed. */
  readonly fingerprint: string;
}

export type Sentinel = { readonly sentinel: 'no-policy' | 'default-deny' | 'not-enforced' };
export type Decision = CompiledEntry | Sentinel;
export const NO_POLICY: Sentinel = Object.freeze({ sentinel: 'no-policy' });
export const DEFAULT_DENY: Sentinel = Object.freeze({ sentinel: 'default-deny' });
export const NOT_ENFORCED: Sentinel = Object.freeze({ sentinel: 'not-enforced' });

export function isSentinel(d: Decision): d is Sentinel {
  return 'sentinel' in d;
}

/** allowed unless a deny entry or default-deny decided it. */
export function decisionAllows(d: Decision): boolean {
  if (isSentinel(d)) return d !== DEFAULT_DENY;
  return !d.entry.deny;
}

function matchKind(e: RuleEntry): MatchKind {
  if (e.l7) return e.l7.protocol === 'http' ? 'l7/http' : 'l7/dns';
  if (e.peers.any) return e.ports === null ? 'all' : 'l4-only';
  return e.ports === null ? 'l3-only' : 'l3-l4';
}

const RANK: Record<MatchKind, number> = { 'l3-l4': 0, 'l4-only': 1, 'l3-only': 2, all: 3, 'l7/http': 4, 'l7/dns': 4, none: 9 };

export type SelectorLookup = (e: RuleEntry) => readonly CachedSelector[];

export function compileEndpointPolicy(identity: number, rules: readonly PolicyRule[], selectorsOf: SelectorLookup): EndpointPolicy {
  const fp: string[] = [];
  const compileDir = (dir: Direction): DirectionPolicy => {
    let selected = false;
    let enforced = false;
    const enforcedBy: RuleOrigin[] = [];
    const allow: CompiledEntry[] = [];
    const deny: CompiledEntry[] = [];
    for (const r of rules) {
      const d = r[dir];
      if (d === undefined) continue;
      selected = true;
      if (d.defaultDeny) {
        enforced = true;
        enforcedBy.push(r.origin);
      }
      fp.push(`${dir}|${r.origin.kind}|${r.origin.namespace ?? ''}|${r.origin.name}|${r.origin.path}|${d.defaultDeny}`);
      for (const e of d.entries) {
        const cached = selectorsOf(e);
        const m = matchKind(e);
        (e.deny ? deny : allow).push({ entry: e, selections: cached.map((c) => c.selection), match: m, rank: RANK[m] });
        fp.push(e.fingerprint, cached.map((c) => `${c.selector.key}@${c.version}`).join(';'));
      }
    }
    allow.sort((a, b) => a.rank - b.rank);
    return { selected, enforced, enforcedBy, allow, deny };
  };
  const ingress = compileDir('ingress');
  const egress = compileDir('egress');
  return { identity, ingress, egress, fingerprint: fp.join('\n') };
}

/** Identities of pods (the allocated, cluster-local range). */
export const isPodIdentity = (id: number): boolean => id >= MIN_ALLOCATED_IDENTITY && id <= MAX_ALLOCATED_IDENTITY;

/** Whether an entry's L3 part covers the peer. */
export function peerMatches(c: CompiledEntry, peer: Peer, fqdns: FqdnLookup): boolean {
  const p = c.entry.peers;
  if (p.any) return true;
  for (const s of c.selections) if (s.has(peer.identity)) return true;
  if (peer.ip === undefined) return false;
  // CIDR and FQDN rules select addresses outside the cluster; a Kubernetes
  // ipBlock (selectsPods) pod addresses as well, by address, not identity.
  // Nodes and other reserved identities are never selected by address.
  const world = peer.identity === IDENTITY_WORLD;
  if (!world && !isPodIdentity(peer.identity)) return false;
  for (const cidr of p.cidrs) if ((world || cidr.selectsPods) && cidrContains(cidr, peer.ip)) return true;
  if (!world) return false;
  if (p.fqdns.length > 0) {
    for (const name of fqdns(peer.ip)) {
      const n = normaliseName(name);
      for (const m of p.fqdns) if (m.matches(n)) return true;
    }
  }
  return false;
}

/**
 * The decision for one packet's direction. `namedPorts` are the destination
 * pod's: the subject's own on ingress, the peer's on egress.
 */
export function decide(
  dir: DirectionPolicy,
  peer: Peer,
  proto: Protocol,
  port: number,
  namedPorts: NamedPorts | undefined,
  fqdns: FqdnLookup,
): Decision {
  if (!dir.selected) return NO_POLICY;
  for (const c of dir.deny) {
    if (portsMatch(c.entry.ports, proto, port, namedPorts) && peerMatches(c, peer, fqdns)) return c;
  }
  // `allow` is sorted by rank, so the first hit is the most specific; L7 entries sort last.
  for (const c of dir.allow) {
    if (portsMatch(c.entry.ports, proto, port, namedPorts) && peerMatches(c, peer, fqdns)) return c;
  }
  return dir.enforced ? DEFAULT_DENY : NOT_ENFORCED;
}

/** Every entry (allow or deny, as asked) that covers the packet: for explanations and flow records. */
export function matchingEntries(
  list: readonly CompiledEntry[],
  peer: Peer,
  proto: Protocol,
  port: number,
  namedPorts: NamedPorts | undefined,
  fqdns: FqdnLookup,
): CompiledEntry[] {
  return list.filter((c) => portsMatch(c.entry.ports, proto, port, namedPorts) && peerMatches(c, peer, fqdns));
}
