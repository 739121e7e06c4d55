/**
 * DatapathState → the contents of the eBPF datapath's state maps (pure; no I/O).
 *
 *   snapshot endpoints, node addresses, policy CIDRs ──► ipcache   prefix → identity
 *   local endpoints (+ ifindex, endpoint id)         ──► endpoints, ep_ifindex
 *   compiled policy of each local endpoint           ──► policy    {ep, dir, peer, proto, port} → allow|deny
 *   ServiceEntry list                                ──► services, svc_slots, backends
 *
 * Policy semantics stay the engine's (src/policy/compiled.ts); this file only
 * spreads each compiled entry over map keys:
 *   - peers: the identities its selectors select (0 = any peer); CIDR peers
 *     become local CIDR identities (1<<24 + n, Cilium's local scope) put in
 *     the ipcache for every policy prefix, so "CIDR rules only ever select
 *     addresses outside the cluster" holds by longest-prefix match: pods and
 *     nodes have /32 entries of their own. A selection of `world` covers
 *     every CIDR identity too (Cilium's CIDR identities carry reserved:world).
 *   - ports: one key per port; a range is expanded up to PORT_RANGE_CAP
 *     ports, beyond which an allow stops (fail closed) and a deny widens to
 *     the whole protocol (fail closed too); both are reported. Named ports
 *     resolve against the destination pod: the subject's own on ingress, each
 *     selected peer identity's pods on egress.
 *   - entries landing on the same key merge, deny over allow.
 * What BPF cannot decide yet is left out, so dropped, and reported: L7
 * rules (no proxy yet), toFQDNs (no DNS proxy yet) — as the legacy datapath.
 */
import type { CompiledEntry, DirectionPolicy, EndpointInfo, PolicySnapshot, PortSpec } from '../../policy/index.ts';
import { fnv1a, IDENTITY_HOST, IDENTITY_REMOTE_NODE, IDENTITY_WORLD } from '../../identity/index.ts';
import type { DatapathState, LocalEndpoint, ServiceEntry } from '../types.ts';
import {
  backendValue,
  DIR_EGRESS,
  DIR_INGRESS,
  endpointKey,
  endpointValue,
  EP_F_EGRESS_ENFORCED,
  EP_F_EGRESS_POLICY,
  EP_F_INGRESS_ENFORCED,
  EP_F_INGRESS_POLICY,
  ifindexKey,
  ipcacheKey,
  ipcacheValue,
  type MapContents,
  POLICY_ALLOW,
  POLICY_DENY,
  policyKey,
  policyValue,
  PROTO,
  slotKey,
  type StateMapName,
  svcKey,
  svcValue,
  u32Value,
} from './maps.ts';

export const PORT_RANGE_CAP = 1024;
export const LOCAL_IDENTITY_BASE = 1 << 24;

/** Stable small numbers the maps use; the datapath seeds them from the kernel's maps. */
export interface IdSource {
  endpointId(ip: string): number;
  serviceId(frontendKey: string): number;
  backendId(ip: string, port: number): number;
}

export interface RenderedEndpoint {
  key: string;
  ip: string;
  hostIfname: string;
  ifindex: number;
  epId: number;
  identity: number;
  flags: number;
  rules: number;
  unenforceable: string[];
}

export interface RenderedState {
  maps: Record<StateMapName, MapContents>;
  endpoints: RenderedEndpoint[];
  /** Local endpoints left out (no veth, no IPv4 address, unknown to the engine). */
  skipped: string[];
  services: number;
  serviceProblems: string[];
}

export function renderEbpfState(s: DatapathState, ids: IdSource, ifindexOf: (ifname: string) => number): RenderedState {
  const maps: Record<StateMapName, MapContents> = {
    ipcache: new Map(),
    endpoints: new Map(),
    ep_ifindex: new Map(),
    policy: new Map(),
    services: new Map(),
    svc_slots: new Map(),
    backends: new Map(),
  };
  const locals = s.localEndpoints.filter((l) => s.snapshot.endpoint(l.key) && !l.ip.includes(':'));
  const cidrs = new CidrIdentities(collectPolicyCidrs(s.snapshot, locals));
  // CIDRs first: pods and nodes overwrite an equal /32 of a policy CIDR.
  for (const [cidr, id] of cidrs.entries()) {
    const [addr, len] = cidr.split('/');
    maps.ipcache.set(ipcacheKey(addr!, Number(len)), ipcacheValue(id));
  }
  for (const ip of s.peerAddresses) if (!ip.includes(':')) maps.ipcache.set(ipcacheKey(ip, 32), ipcacheValue(IDENTITY_REMOTE_NODE));
  for (const ip of s.ownAddresses) if (!ip.includes(':')) maps.ipcache.set(ipcacheKey(ip, 32), ipcacheValue(IDENTITY_HOST));
  const byIdentity = new Map<number, EndpointInfo[]>();
  for (const ep of s.snapshot.endpoints()) {
    for (const ip of ep.ips) if (!ip.includes(':')) maps.ipcache.set(ipcacheKey(ip, 32), ipcacheValue(ep.identity));
    const list = byIdentity.get(ep.identity) ?? [];
    list.push(ep);
    byIdentity.set(ep.identity, list);
  }

  const endpoints: RenderedEndpoint[] = [];
  const skipped: string[] = [];
  for (const local of s.localEndpoints) {
    const ep = s.snapshot.endpoint(local.key);
    const policy = s.snapshot.policyOf(local.key);
    const ifindex = ifindexOf(local.hostIfname);
    if (!ep || !policy || local.ip.includes(':') || ifindex === 0) {
      skipped.push(local.key);
      continue;
    }
    const epId = ids.endpointId(local.ip);
    const keys = new Map<string, number>();
    const unenforceable: string[] = [];
    const ctx: EntryContext = { snap: s.snapshot, subject: ep, byIdentity, cidrs, unenforceable };
    let flags = 0;
    for (const [dir, d] of [
      ['ingress', policy.ingress],
      ['egress', policy.egress],
    ] as const) {
      if (!d.selected) continue;
      flags |= dir === 'ingress' ? EP_F_INGRESS_POLICY : EP_F_EGRESS_POLICY;
      if (d.enforced) flags |= dir === 'ingress' ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED;
      renderDirection(ctx, d, dir, epId, keys);
    }
    for (const [k, action] of keys) maps.policy.set(k, policyValue(action));
    const info = endpointValue({ ifindex, identity: ep.identity, epId, flags, ip: local.ip });
    maps.endpoints.set(endpointKey(local.ip), info);
    maps.ep_ifindex.set(ifindexKey(ifindex), info);
    endpoints.push({
      key: local.key,
      ip: local.ip,
      hostIfname: local.hostIfname,
      ifindex,
      epId,
      identity: ep.identity,
      flags,
      rules: keys.size,
      unenforceable: [...new Set(unenforceable)],
    });
  }

  const serviceProblems: string[] = [];
  let services = 0;
  for (const svc of s.services) {
    if (renderService(svc, ids, maps, serviceProblems)) services++;
  }
  return { maps, endpoints, skipped, services, serviceProblems };
}

// ------------------------------------------------------------ policy

interface EntryContext {
  snap: PolicySnapshot;
  subject: EndpointInfo;
  byIdentity: ReadonlyMap<number, readonly EndpointInfo[]>;
  cidrs: CidrIdentities;
  unenforceable: string[];
}

interface Triple {
  peer: number;
  proto: number;
  port: number;
}

function renderDirection(ctx: EntryContext, d: DirectionPolicy, dir: 'ingress' | 'egress', epId: number, keys: Map<string, number>): void {
  const dirNum = dir === 'ingress' ? DIR_INGRESS : DIR_EGRESS;
  const put = (t: Triple, action: number): void => {
    const k = policyKey({ peer: t.peer, epId, port: t.port, proto: t.proto, dir: dirNum });
    // "If there are any DENY policies that match the request, deny the request."
    if (keys.get(k) !== POLICY_DENY) keys.set(k, action);
  };
  for (const c of d.deny) for (const t of entryTriples(ctx, c, dir, true)) put(t, POLICY_DENY);
  for (const c of d.allow) {
    if (c.entry.l7 !== null) {
      ctx.unenforceable.push(`${c.entry.origin.path}: L7 ${c.entry.l7.protocol} rules (no proxy yet): dropped`);
      continue;
    }
    for (const t of entryTriples(ctx, c, dir, false)) put(t, POLICY_ALLOW);
  }
}

function entryPeers(ctx: EntryContext, c: CompiledEntry): number[] {
  const p = c.entry.peers;
  if (p.any) return [0];
  const ids = new Set<number>();
  for (const s of c.selections) for (const i of s) ids.add(i);
  if (ids.has(IDENTITY_WORLD)) for (const id of ctx.cidrs.all()) ids.add(id);
  for (const cidr of p.cidrs) {
    if (cidr.cidr.includes(':')) continue; // IPv6 peers: the datapath is IPv4-only
    for (const id of ctx.cidrs.within(cidr.cidr, cidr.exceptCidrs.filter((e) => !e.includes(':')))) ids.add(id);
  }
  if (p.fqdns.length > 0) ctx.unenforceable.push(`${c.entry.origin.path}: toFQDNs (no DNS proxy yet): dropped`);
  return [...ids].sort((a, b) => a - b);
}

function protoNumbers(p: PortSpec['protocol']): number[] {
  switch (p) {
    case 'ANY':
      return [PROTO.TCP, PROTO.UDP, PROTO.SCTP];
    case 'ICMPv6':
      return []; // IPv4-only datapath: nothing of it can match
    default:
      return [PROTO[p]];
  }
}

function entryTriples(ctx: EntryContext, c: CompiledEntry, dir: 'ingress' | 'egress', deny: boolean): Triple[] {
  const peers = entryPeers(ctx, c);
  if (peers.length === 0) return [];
  const ports = c.entry.ports;
  if (ports === null) return peers.map((peer) => ({ peer, proto: 0, port: 0 }));
  const out: Triple[] = [];
  const path = c.entry.origin.path;
  for (const spec of ports) {
    if (spec.name !== undefined) {
      // "the port that name has on the destination pod"
      for (const peer of peers) {
        const dests = dir === 'ingress' ? [ctx.subject] : peer === 0 ? [...ctx.snap.endpoints()] : (ctx.byIdentity.get(peer) ?? []);
        for (const ep of dests) {
          for (const np of ep.namedPorts.get(spec.name) ?? []) {
            if (spec.protocol !== 'ANY' && spec.protocol !== np.protocol) continue;
            for (const proto of protoNumbers(np.protocol)) out.push({ peer, proto, port: np.port });
          }
        }
      }
      continue;
    }
    for (const proto of protoNumbers(spec.protocol)) {
      if (spec.port === 0) {
        for (const peer of peers) out.push({ peer, proto, port: 0 });
        continue;
      }
      const last = Math.max(spec.port, spec.endPort);
      let end = last;
      if (last - spec.port + 1 > PORT_RANGE_CAP) {
        if (deny) {
          ctx.unenforceable.push(`${path}: deny of ports ${spec.port}-${last} is wider than ${PORT_RANGE_CAP} ports: every port of the protocol is denied`);
          for (const peer of peers) out.push({ peer, proto, port: 0 });
          continue;
        }
        end = spec.port + PORT_RANGE_CAP - 1;
        ctx.unenforceable.push(`${path}: ports ${end + 1}-${last} (range wider than ${PORT_RANGE_CAP} ports): dropped`);
      }
      for (let port = spec.port; port <= end; port++) for (const peer of peers) out.push({ peer, proto, port });
    }
  }
  return out;
}

// ------------------------------------------------------------ CIDR identities

function collectPolicyCidrs(snap: PolicySnapshot, locals: readonly LocalEndpoint[]): string[] {
  const out = new Set<string>();
  const seen = new Set<number>();
  for (const l of locals) {
    const p = snap.policyOf(l.key);
    if (!p || seen.has(p.identity)) continue;
    seen.add(p.identity);
    for (const d of [p.ingress, p.egress]) {
      for (const c of [...d.allow, ...d.deny]) {
        for (const cidr of c.entry.peers.cidrs) {
          for (const text of [cidr.cidr, ...cidr.exceptCidrs]) {
            const n = normaliseCidr(text);
            if (n && n !== '0.0.0.0/0') out.add(n);
          }
        }
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

function cidrRange(c: string): [number, number] {
  const [addr, len] = c.split('/');
  const p = addr!.split('.').map(Number);
  const start = ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
  const size = 2 ** (32 - Number(len));
  return [start, start + size - 1];
}

const inside = (inner: string, outer: string): boolean => {
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


// ------------------------------------------------------------ services

const SVC_PROTO: Record<ServiceEntry['protocol'], number | undefined> = { TCP: PROTO.TCP, UDP: PROTO.UDP, SCTP: undefined };

function renderService(svc: ServiceEntry, ids: IdSource, maps: Record<StateMapName, MapContents>, problems: string[]): boolean {
  const proto = SVC_PROTO[svc.protocol];
  if (proto === undefined || svc.clusterIP.includes(':')) {
    problems.push(`${svc.key}: ${svc.protocol === 'SCTP' ? 'SCTP' : 'IPv6'} ClusterIPs are not translated by the eBPF datapath`);
    return false;
  }
  const key = svcKey(svc.clusterIP, svc.port, proto);
  const svcId = ids.serviceId(key);
  const seen = new Set<string>();
  let slot = 0;
  for (const b of svc.backends) {
    if (b.ip.includes(':') || seen.has(`${b.ip}:${b.port}`)) continue;
    seen.add(`${b.ip}:${b.port}`);
    const bid = ids.backendId(b.ip, b.port);
    maps.backends.set(u32Value(bid), backendValue(b.ip, b.port));
    maps.svc_slots.set(slotKey(svcId, ++slot), u32Value(bid));
  }
  maps.services.set(key, svcValue(svcId, slot));
  return true;
}
