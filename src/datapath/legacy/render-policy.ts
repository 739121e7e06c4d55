/**
 * Compiled endpoint policy → nftables rules (pure; no I/O).
 *
 * Each rule first loads the peer's identity into the packet mark from the
 * ipcache map (world, 2, when the address is unknown), then tests identity
 * sets, prefixes and ports. Order follows the engine's precedence
 * (src/policy/compiled.ts): deny entries, then allow entries, then the
 * direction's default. On egress an allow `return`s, so the destination's
 * ingress chain still runs for pod-to-pod traffic on the same node; on
 * ingress it `accept`s.
 *
 * L7 entries are not allowed here: prerouting steers their traffic (TPROXY)
 * to the node's HTTP or DNS proxy, which decides each request. toFQDNs
 * entries match a named set of the addresses the DNS proxy learned for the
 * selected names. What cannot be decided (an L7 protocol with no proxy
 * running) is left out and so dropped — fail closed.
 */
import { createHash } from 'node:crypto';
import type { CompiledEntry, DirectionPolicy, EndpointInfo, PolicySnapshot, PortSpec } from '../../policy/index.ts';
import type { NameMatcher } from '../../fqdn/index.ts';
import { IDENTITY_WORLD, MAX_ALLOCATED_IDENTITY, MIN_ALLOCATED_IDENTITY } from '../../identity/index.ts';
import { cidrContains } from '../../policy/index.ts';
import { PROXY_MARK } from '../constants.ts';
import { logAllow, logDrop, logRedirect, type NftDirection } from './log-prefix.ts';

export interface RenderedDirection {
  rules: string[];
  /** Prerouting rules that steer L7 traffic to the node's proxy (TPROXY); null when there is none. */
  proxyRules: string[] | null;
  enforced: boolean;
  unenforceable: string[];
}

/** A short, stable, nft-safe id for an endpoint (chain and counter names). */
export function endpointChainId(key: string): string {
  return 'e' + createHash('sha256').update(key).digest('hex').slice(0, 12);
}

export const counterName = (id: string, dir: NftDirection, reason: 'deny' | 'denied'): string =>
  `${id}_${dir === 'ingress' ? 'in' : 'eg'}_${reason}`;

/** Where L7 traffic goes, and the nft set that holds a toFQDNs selector's addresses. */
export interface RenderContext {
  httpProxyPort?: number;
  dnsProxyPort?: number;
  fqdnSet(selectors: readonly NameMatcher[]): string;
}

/** The transport protocols each L7 proxy speaks. */
const L7_TRANSPORTS = { http: ['tcp'], dns: ['udp', 'tcp'] } as const;

export function renderDirection(
  snap: PolicySnapshot,
  subject: EndpointInfo,
  dir: DirectionPolicy,
  direction: NftDirection,
  rc: RenderContext,
): RenderedDirection {
  const id = endpointChainId(subject.key);
  const peerField = direction === 'egress' ? 'daddr' : 'saddr';
  const allowVerdict = direction === 'egress' ? 'return' : 'accept';
  const rules = [`meta mark set ${IDENTITY_WORLD}`, `meta mark set ip ${peerField} map @ipcache`];
  const unenforceable: string[] = [];
  const matches = (c: CompiledEntry, onlyProto?: 'tcp' | 'udp', problems = unenforceable): string[] =>
    entryMatches(snap, subject, c, direction, problems, rc, onlyProto);
  for (const c of dir.deny) {
    for (const m of matches(c)) {
      rules.push(`${m}counter name "${counterName(id, direction, 'deny')}" ${logDrop(id, direction, 'deny')}drop`);
    }
  }
  // Steering to the HTTP proxy, in the order the engine decides: a matching
  // deny or L4 allow leaves the packet to the filter chains; an L7 entry sends
  // it to the proxy, which checks each request.
  const proxy: string[] = [];
  for (const c of dir.allow) {
    const l7 = c.entry.l7;
    if (l7 === null) {
      for (const m of matches(c)) rules.push(`${m}${logAllow(id, direction)}${allowVerdict}`);
      continue;
    }
    const port = l7.protocol === 'http' ? rc.httpProxyPort : rc.dnsProxyPort;
    if (port === undefined) {
      unenforceable.push(`${c.entry.origin.path}: L7 ${l7.protocol} rules (no proxy for it): dropped`);
      continue;
    }
    for (const proto of L7_TRANSPORTS[l7.protocol]) {
      // A new connection's first packet is logged as redirected (a policy verdict), then every packet is steered.
      for (const m of matches(c, proto)) proxy.push(`${m}ct state new ${logRedirect(id, direction)}`, `${m}tproxy ip to :${port} meta mark set ${PROXY_MARK} accept`);
    }
  }
  rules.push(dir.enforced ? `counter name "${counterName(id, direction, 'denied')}" ${logDrop(id, direction, 'denied')}drop` : allowVerdict);
  let proxyRules: string[] | null = null;
  if (proxy.length > 0) {
    const passThrough: string[] = [];
    for (const c of dir.deny) for (const m of matches(c, undefined, [])) passThrough.push(`${m}return`);
    for (const c of dir.allow) {
      if (c.entry.l7 === null) for (const m of matches(c, undefined, [])) passThrough.push(`${m}return`);
    }
    proxyRules = [rules[0]!, rules[1]!, ...passThrough, ...proxy];
  }
  return { rules, proxyRules, enforced: dir.enforced, unenforceable };
}

/** Every `<l3> <l4> ` prefix the entry matches; empty when it matches nothing nftables can express. */
function entryMatches(
  snap: PolicySnapshot,
  subject: EndpointInfo,
  c: CompiledEntry,
  direction: NftDirection,
  unenforceable: string[],
  rc: RenderContext,
  onlyProto?: 'tcp' | 'udp',
): string[] {
  const peerField = direction === 'egress' ? 'daddr' : 'saddr';
  const l3: string[] = [];
  const peers = c.entry.peers;
  const ids = new Set<number>();
  for (const s of c.selections) for (const i of s) ids.add(i);
  if (peers.any) l3.push('');
  else {
    if (ids.size > 0) l3.push(`meta mark { ${[...ids].sort((a, b) => a - b).join(', ')} } `);
    for (const cidr of peers.cidrs) {
      if (cidr.cidr.includes(':')) continue; // IPv6 peers: the lab is IPv4-only
      const except = cidr.exceptCidrs.filter((e) => !e.includes(':'));
      // The address decides; the identity only says who may be selected by
      // address at all: the world, and pods too for a Kubernetes ipBlock.
      const who = cidr.selectsPods ? POD_OR_WORLD_MARKS : `${IDENTITY_WORLD}`;
      l3.push(`meta mark ${who} ip ${peerField} ${cidr.cidr} ${except.length ? `ip ${peerField} != { ${except.join(', ')} } ` : ''}`);
    }
    // Like CIDRs, names only ever select addresses outside the cluster.
    if (peers.fqdns.length > 0) l3.push(`meta mark ${IDENTITY_WORLD} ip ${peerField} @${rc.fqdnSet(peers.fqdns)} `);
  }
  if (l3.length === 0) return [];
  const l4 = portMatches(snap, subject, c, direction, ids, onlyProto);
  const out: string[] = [];
  for (const a of l3) for (const b of l4) out.push(a + b);
  return out;
}

const PROTO_ANY = '{ tcp, udp, sctp }';
/** Packet marks (identities) of the world and of pods: who a Kubernetes ipBlock selects by address (never nodes). */
const POD_OR_WORLD_MARKS = `{ ${IDENTITY_WORLD}, ${MIN_ALLOCATED_IDENTITY}-${MAX_ALLOCATED_IDENTITY} }`;

/** The L4 halves of an entry's matches; with `onlyProto`, only what that protocol can match (steering to a proxy). */
function portMatches(
  snap: PolicySnapshot,
  subject: EndpointInfo,
  c: CompiledEntry,
  direction: NftDirection,
  peerIds: ReadonlySet<number>,
  onlyProto?: 'tcp' | 'udp',
): string[] {
  const ports = c.entry.ports;
  if (ports === null) return [onlyProto ? `meta l4proto ${onlyProto} ` : ''];
  // Group numeric ports by protocol so one rule carries a set of them.
  const byProto = new Map<string, string[]>();
  const add = (proto: string, port: string): void => {
    const list = byProto.get(proto) ?? [];
    if (!list.includes(port)) list.push(port);
    byProto.set(proto, list);
  };
  for (const p of ports) {
    for (const [proto, port] of resolve(snap, subject, p, direction, peerIds, c)) add(proto, port);
  }
  const out: string[] = [];
  for (const [p, list] of byProto) {
    if (onlyProto && p !== onlyProto && p !== 'any') continue;
    const proto = onlyProto ?? p;
    const all = list.includes('*');
    if (proto === 'icmp' || proto === 'icmpv6') {
      out.push(all ? `meta l4proto ${proto} ` : `${proto} type { ${list.join(', ')} } `);
    } else if (proto === 'any') {
      out.push(all ? `meta l4proto ${PROTO_ANY} ` : `meta l4proto ${PROTO_ANY} th dport { ${list.join(', ')} } `);
    } else {
      out.push(all ? `meta l4proto ${proto} ` : `${proto} dport { ${list.join(', ')} } `);
    }
  }
  return out;
}

/** [protocol, port text] pairs for one spec; named ports resolve against the destination pods. */
function resolve(
  snap: PolicySnapshot,
  subject: EndpointInfo,
  p: PortSpec,
  direction: NftDirection,
  peerIds: ReadonlySet<number>,
  c: CompiledEntry,
): [string, string][] {
  const proto = p.protocol === 'ANY' ? 'any' : p.protocol.toLowerCase();
  if (p.name === undefined) {
    if (p.port === 0) return [[proto, '*']];
    return [[proto, p.endPort > p.port ? `${p.port}-${p.endPort}` : String(p.port)]];
  }
  // Ingress: the subject's own container ports. Egress: the ports that name has on
  // the peers the rule selects (each pod may map it differently), by identity or by address.
  const byAddress = c.entry.peers.cidrs.filter((cidr) => cidr.selectsPods);
  const selects = (e: EndpointInfo): boolean =>
    c.entry.peers.any || peerIds.has(e.identity) || byAddress.some((cidr) => e.ips.some((ip) => cidrContains(cidr, ip)));
  const sources: EndpointInfo[] = direction === 'ingress' ? [subject] : [...snap.endpoints()].filter(selects);
  const out: [string, string][] = [];
  for (const ep of sources) {
    for (const np of ep.namedPorts.get(p.name) ?? []) {
      if (p.protocol === 'ANY' || p.protocol === np.protocol) out.push([np.protocol.toLowerCase(), String(np.port)]);
    }
  }
  return out;
}
