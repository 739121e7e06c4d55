/**
 * DatapathState → the contents of the eBPF datapath's state maps (pure; no I/O).
 *
 *   snapshot endpoints, node addresses, policy CIDRs ──► ipcache   prefix → identity
 *   FQDN-learned addresses (state.fqdnIps)           ──► ipcache   /32 → FQDN identity (fqdn-identities.ts)
 *   local endpoints (+ ifindex, endpoint id)         ──► endpoints, ep_ifindex
 *   compiled policy of each local endpoint           ──► policy    {ep, dir, peer, proto, port} → allow|deny|redirect
 *   pod addresses inside Kubernetes ipBlocks         ──► ipblock_pods  address → ipBlock identity (ipblock-identities.ts)
 *   ServiceEntry list                                ──► services, svc_slots, backends
 *
 * Policy semantics stay the engine's (src/policy/compiled.ts); this file only
 * spreads each compiled entry over map keys:
 *   - peers: the identities its selectors select (0 = any peer); CIDR peers
 *     become local CIDR identities (cidr-identities.ts), toFQDNs peers the
 *     identities of the addresses learned for them (fqdn-identities.ts). A
 *     selection of `world` covers every CIDR and FQDN identity too (Cilium's
 *     CIDR identities carry reserved:world). A Kubernetes ipBlock that
 *     selects pods also becomes the ipBlock identities of the pod addresses
 *     inside it, which the BPF program finds by the peer's address.
 *   - ports: one key per port; a range is expanded up to PORT_RANGE_CAP
 *     ports, beyond which an allow stops (fail closed) and a deny widens to
 *     the whole protocol (fail closed too); both are reported. Named ports
 *     resolve against the destination pod: the subject's own on ingress, each
 *     selected peer identity's pods on egress.
 *   - L7 entries become redirects to the node's proxy: `http` on TCP to
 *     state.httpProxyPort, `dns` on UDP and TCP to state.dnsProxyPort. With
 *     no such proxy they are left out (dropped: fail closed) and reported.
 *   - entries landing on the same key merge: deny over allow over redirect
 *     (compiled.ts: "allow entries without L7 win over L7 ones"); BPF probes
 *     every key a packet could match, so an allow on a wider key wins too.
 */
import type { CompiledEntry, DirectionPolicy, EndpointInfo, PolicySnapshot, PortSpec } from '../../policy/index.ts';
import { IDENTITY_HOST, IDENTITY_REMOTE_NODE, IDENTITY_WORLD } from '../../identity/index.ts';
import type { DatapathState, ServiceEntry } from '../types.ts';
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
  POLICY_REDIRECT,
  policyKey,
  policyValue,
  PROTO,
  slotKey,
  type StateMapName,
  svcKey,
  svcValue,
  u32Value,
} from './maps.ts';
import { CidrIdentities, collectPolicyCidrs, localEntries, normaliseCidr } from './cidr-identities.ts';
import { IpBlockIdentities } from './ipblock-identities.ts';
import { collectFqdnSelectors, FqdnIdentities, type AddressMemo } from './fqdn-identities.ts';
import type { NameMatcher } from '../../fqdn/index.ts';

export const PORT_RANGE_CAP = 1024;

/** Stable small numbers the maps use; the datapath seeds them from the kernel's maps. */
export interface IdSource {
  endpointId(ip: string): number;
  serviceId(frontendKey: string): number;
  backendId(ip: string, port: number): number;
  /** 0..FQDN_IDENTITY_COUNT-1 for a membership of FQDN-learned addresses (fqdn-identities.ts). */
  fqdnIdentity(membership: string): number;
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
  /** FQDN address memberships → identity (the datapath keeps their numbers stable). */
  fqdnMemberships: ReadonlyMap<string, number>;
  /** FQDN-learned addresses in the ipcache. */
  fqdnAddresses: number;
  /** What the next render may reuse when only learned addresses changed. */
  basis: RenderBasis;
}

/** Everything a render derived from inputs other than the learned addresses. */
interface RenderBasis {
  snapshot: PolicySnapshot;
  /** The other inputs, as text: equal text, equal render. */
  inputs: string;
  ifindexes: ReadonlyMap<string, number>;
  fqdnSelectors: ReadonlyMap<string, readonly NameMatcher[]>;
  prefixes: readonly string[];
  /** ipcache without learned addresses, and the /32s of pods and nodes (which learned addresses never replace). */
  ipcache: MapContents;
  clusterKeys: ReadonlySet<string>;
  addressMemo: AddressMemo;
}

const inputsOf = (s: DatapathState): string =>
  JSON.stringify([s.services, s.localEndpoints, s.ownAddresses, s.peerAddresses, s.httpProxyPort ?? null, s.dnsProxyPort ?? null]);

function ipcacheWithLearned(b: RenderBasis, fqdns: FqdnIdentities): MapContents {
  const out = new Map(b.ipcache);
  for (const [ip, id] of fqdns.addresses()) {
    const k = fqdns.keyOf(ip);
    if (!b.clusterKeys.has(k)) out.set(k, ipcacheValue(id));
  }
  return out;
}

/**
 * The DNS proxy's path: when nothing but the learned addresses changed and
 * they make no new identity (a new address of a name in force joins the
 * identity its name has), the previous render stands but for the ipcache's
 * learned /32s — no policy is rendered again. Null when a full render is due.
 */
function renderLearnedOnly(s: DatapathState, prev: RenderedState, ids: IdSource, ifindexOf: (ifname: string) => number): RenderedState | null {
  const b = prev.basis;
  if (b.snapshot !== s.snapshot || b.inputs !== inputsOf(s)) return null;
  for (const [name, ifindex] of b.ifindexes) if (ifindexOf(name) !== ifindex) return null; // a veth was recreated
  // Addresses that come and go leave their memo entries behind: start over when it outgrows the sets.
  if (b.addressMemo.size > 4 * prev.fqdnAddresses + 1024) b.addressMemo.clear();
  const fqdns = new FqdnIdentities(b.fqdnSelectors, s.fqdnIps, b.prefixes, (m) => ids.fqdnIdentity(m), b.addressMemo);
  const m = fqdns.memberships();
  if (m.size !== prev.fqdnMemberships.size) return null;
  for (const [k, id] of m) if (prev.fqdnMemberships.get(k) !== id) return null;
  return { ...prev, maps: { ...prev.maps, ipcache: ipcacheWithLearned(b, fqdns) }, fqdnMemberships: m, fqdnAddresses: fqdns.size };
}

/**
 * `prev`: the last render, when the caller wants an apply whose only change
 * is learned addresses to cost a map diff and no policy render.
 */
export function renderEbpfState(s: DatapathState, ids: IdSource, ifindexOf: (ifname: string) => number, prev?: RenderedState | null): RenderedState {
  if (prev) {
    const quick = renderLearnedOnly(s, prev, ids, ifindexOf);
    if (quick) return quick;
  }
  const maps: Record<StateMapName, MapContents> = {
    ipcache: new Map(),
    endpoints: new Map(),
    ep_ifindex: new Map(),
    policy: new Map(),
    ipblock_pods: new Map(),
    services: new Map(),
    svc_slots: new Map(),
    backends: new Map(),
  };
  const locals = s.localEndpoints.filter((l) => s.snapshot.endpoint(l.key) && !l.ip.includes(':'));
  const prefixes = collectPolicyCidrs(s.snapshot, locals);
  const cidrs = new CidrIdentities(prefixes);
  const fqdnSelectors = collectFqdnSelectors(s.snapshot, locals);
  const fqdns = new FqdnIdentities(fqdnSelectors, s.fqdnIps, prefixes, (m) => ids.fqdnIdentity(m));
  const ipBlocks = new IpBlockIdentities(
    [...localEntries(s.snapshot, locals)].flatMap((c) => c.entry.peers.cidrs),
    s.snapshot.endpoints(),
  );
  for (const [ip, id] of ipBlocks.addresses()) maps.ipblock_pods.set(endpointKey(ip), u32Value(id));

  // CIDRs, then pods and nodes (an equal /32 of a policy CIDR is theirs),
  // then learned addresses where no pod or node is (a /32 of a policy CIDR
  // is replaced: the address's membership carries the prefix).
  const base: MapContents = new Map();
  const clusterKeys = new Set<string>();
  for (const [cidr, id] of cidrs.entries()) {
    const [addr, len] = cidr.split('/');
    base.set(ipcacheKey(addr!, Number(len)), ipcacheValue(id));
  }
  const cluster = (ip: string, id: number): void => {
    const k = ipcacheKey(ip, 32);
    base.set(k, ipcacheValue(id));
    clusterKeys.add(k);
  };
  for (const ip of s.peerAddresses) if (!ip.includes(':')) cluster(ip, IDENTITY_REMOTE_NODE);
  for (const ip of s.ownAddresses) if (!ip.includes(':')) cluster(ip, IDENTITY_HOST);
  const byIdentity = new Map<number, EndpointInfo[]>();
  for (const ep of s.snapshot.endpoints()) {
    for (const ip of ep.ips) if (!ip.includes(':')) cluster(ip, ep.identity);
    const list = byIdentity.get(ep.identity) ?? [];
    list.push(ep);
    byIdentity.set(ep.identity, list);
  }
  const basis: RenderBasis = { snapshot: s.snapshot, inputs: inputsOf(s), ifindexes: new Map(), fqdnSelectors, prefixes, ipcache: base, clusterKeys, addressMemo: fqdns.memo };
  maps.ipcache = ipcacheWithLearned(basis, fqdns);

  const endpoints: RenderedEndpoint[] = [];
  const skipped: string[] = [];
  for (const local of s.localEndpoints) {
    const ep = s.snapshot.endpoint(local.key);
    const policy = s.snapshot.policyOf(local.key);
    const ifindex = ifindexOf(local.hostIfname);
    (basis.ifindexes as Map<string, number>).set(local.hostIfname, ifindex);
    if (!ep || !policy || local.ip.includes(':') || ifindex === 0) {
      skipped.push(local.key);
      continue;
    }
    const epId = ids.endpointId(local.ip);
    const keys = new Map<string, string>();
    const unenforceable: string[] = [];
    const ctx: EntryContext = { state: s, snap: s.snapshot, subject: ep, byIdentity, cidrs, fqdns, ipBlocks, unenforceable };
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
    for (const [k, v] of keys) maps.policy.set(k, v);
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
  return { maps, endpoints, skipped, services, serviceProblems, fqdnMemberships: fqdns.memberships(), fqdnAddresses: fqdns.size, basis };
}

// ------------------------------------------------------------ policy

interface EntryContext {
  state: DatapathState;
  snap: PolicySnapshot;
  subject: EndpointInfo;
  byIdentity: ReadonlyMap<number, readonly EndpointInfo[]>;
  cidrs: CidrIdentities;
  fqdns: FqdnIdentities;
  ipBlocks: IpBlockIdentities;
  unenforceable: string[];
}

interface Triple {
  peer: number;
  proto: number;
  port: number;
}

/** Merge order of entries on one key: deny over allow over redirect. */
const ACTION_RANK: Record<number, number> = { [POLICY_DENY]: 3, [POLICY_ALLOW]: 2, [POLICY_REDIRECT]: 1 };

/** The L7 protocols each proxy takes, and where it listens. */
function redirectOf(state: DatapathState, protocol: 'http' | 'dns'): { port: number | undefined; protos: readonly number[] } {
  return protocol === 'http' ? { port: state.httpProxyPort, protos: [PROTO.TCP] } : { port: state.dnsProxyPort, protos: [PROTO.UDP, PROTO.TCP] };
}

function renderDirection(ctx: EntryContext, d: DirectionPolicy, dir: 'ingress' | 'egress', epId: number, keys: Map<string, string>): void {
  const dirNum = dir === 'ingress' ? DIR_INGRESS : DIR_EGRESS;
  const rank = new Map<string, number>();
  const put = (t: Triple, action: number, proxyPort = 0): void => {
    const k = policyKey({ peer: t.peer, epId, port: t.port, proto: t.proto, dir: dirNum });
    // "If there are any DENY policies that match the request, deny the request."
    if ((rank.get(k) ?? 0) >= ACTION_RANK[action]!) return;
    rank.set(k, ACTION_RANK[action]!);
    keys.set(k, policyValue(action, proxyPort));
  };
  for (const c of d.deny) for (const t of entryTriples(ctx, c, dir, true)) put(t, POLICY_DENY);
  for (const c of d.allow) {
    const l7 = c.entry.l7;
    if (l7 === null) {
      for (const t of entryTriples(ctx, c, dir, false)) put(t, POLICY_ALLOW);
      continue;
    }
    const proxy = redirectOf(ctx.state, l7.protocol);
    if (proxy.port === undefined) {
      ctx.unenforceable.push(`${c.entry.origin.path}: L7 ${l7.protocol} rules (no ${l7.protocol.toUpperCase()} proxy on this node): dropped`);
      continue;
    }
    // Other protocols of the entry's ports reach no proxy: left out, so dropped (as legacy's `meta l4proto tcp tproxy`).
    for (const t of entryTriples(ctx, c, dir, false)) if (proxy.protos.includes(t.proto)) put(t, POLICY_REDIRECT, proxy.port);
  }
}

function entryPeers(ctx: EntryContext, c: CompiledEntry): number[] {
  const p = c.entry.peers;
  if (p.any) return [0];
  const ids = new Set<number>();
  for (const s of c.selections) for (const i of s) ids.add(i);
  if (ids.has(IDENTITY_WORLD)) {
    for (const id of ctx.cidrs.all()) ids.add(id);
    for (const id of ctx.fqdns.all()) ids.add(id);
  }
  for (const cidr of p.cidrs) {
    if (cidr.cidr.includes(':')) continue; // IPv6 peers: the datapath is IPv4-only
    const excepts = cidr.exceptCidrs.filter((e) => !e.includes(':'));
    for (const id of ctx.cidrs.within(cidr.cidr, excepts)) ids.add(id);
    const c4 = normaliseCidr(cidr.cidr);
    if (c4) for (const id of ctx.fqdns.within(c4, excepts.map(normaliseCidr).filter((e): e is string => e !== null))) ids.add(id);
    // A Kubernetes ipBlock: the pod addresses inside it, by their ipBlock identities.
    for (const id of ctx.ipBlocks.selectedBy(cidr)) ids.add(id);
  }
  // toFQDNs: the addresses the DNS proxy learned for its names, nothing before.
  if (p.fqdns.length > 0) for (const id of ctx.fqdns.selectedBy(p.fqdns)) ids.add(id);
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
        const dests =
          dir === 'ingress' ? [ctx.subject] : peer === 0 ? [...ctx.snap.endpoints()] : (ctx.byIdentity.get(peer) ?? ctx.ipBlocks.endpointsOf(peer) ?? []);
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
