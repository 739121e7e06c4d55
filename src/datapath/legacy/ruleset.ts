/**
 * The whole nftables state of a node, rendered as data, and the transactions
 * that move the kernel from one such state to the next.
 *
 *   table inet palisade
 *     map ipcache       ip → identity (packet mark), every pod and node address
 *     set fq_<hash>     addresses of one toFQDNs selector (learned by the DNS proxy)
 *     map source_eps    local pod's node-side veth → jump <endpoint>_sc (every registered pod)
 *     map egress_eps    local pod ip → jump <endpoint>_eg   (only pods with egress policy)
 *     map ingress_eps   local pod ip → jump <endpoint>_in   (only pods with ingress policy)
 *     set proxy_ports   the node's proxy listeners
 *     chain source_check (prerouting, before conntrack) iifname vmap source_eps; other pod veths drop
 *     chain forward     established → accept; saddr vmap egress_eps; daddr vmap ingress_eps
 *     chain input       established → accept; unsteered → proxy_ports drop; saddr vmap egress_eps (pod → this node)
 *
 * Replies and established flows pass before any policy chain (conntrack), so
 * only the first packet of a connection is judged. Source addresses are
 * checked on every packet, before conntrack: a pod sending as another pod
 * (or as the world) would otherwise carry that identity through every policy.
 */
import { IDENTITY_HOST, IDENTITY_REMOTE_NODE } from '../../identity/index.ts';
import type { DatapathState } from '../types.ts';
import { createHash } from 'node:crypto';
import { fqdnSelectorKey, type NameMatcher } from '../../fqdn/index.ts';
import { isIPv4 } from 'node:net';
import { counterName, endpointChainId, renderDirection, type RenderContext } from './render-policy.ts';
import { logDrop, logForwarded, logProbe, type NftDirection } from './log-prefix.ts';
import { NFLOG_PROBE, PROXY_MARK } from '../constants.ts';

export const TABLE = 'inet palisade';

export interface EndpointRules {
  key: string;
  id: string;
  ip: string;
  egress: string[] | null;
  ingress: string[] | null;
  /** Steering to the HTTP proxy, matched by source (egress) or destination (ingress) in prerouting. */
  proxyEgress: string[] | null;
  proxyIngress: string[] | null;
  ingressEnforced: boolean;
  egressEnforced: boolean;
  unenforceable: string[];
}

/** What a local pod may send from: its node-side veth and its own address. */
export interface PodSource {
  key: string;
  id: string;
  ifname: string;
  ip: string;
}

export interface RulesetState {
  ipcache: Map<string, number>;
  endpoints: Map<string, EndpointRules>;
  /** Every local pod, policy or not, by endpoint id: the source check of its veth. */
  sources: Map<string, PodSource>;
  /** The ports the node's proxies listen on: only steered (TPROXY'd) traffic may reach them. */
  proxyPorts: Set<number>;
  /** `fq_<hash>` → the addresses its toFQDNs selector allows now. */
  fqdnSets: Map<string, Set<string>>;
}

/**
 * The node-side veth of every pod starts so (src/cni/pod-wiring.ts,
 * hostIfname): such a veth with no registered endpoint drops everything.
 */
export const POD_IFNAME_PREFIX = 'lxc';
/** Interface names as the kernel takes them; anything else never reaches an nft script. */
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
/** The drop reason of a packet whose source is not its pod's address (Cilium: DROP_INVALID_SIP, 132). */
export const INVALID_SOURCE_IP = 'INVALID_SOURCE_IP';
export const spoofCounterName = (id: string): string => `${id}_spoofed`;
/** Packets from a pod veth no endpoint is registered for (yet). */
export const UNREGISTERED_COUNTER = 'pod_if_unregistered';
const IPV6_LINK_HOUSEKEEPING = 'nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld-listener-done, mld2-listener-report';
/** Packets addressed to a proxy port that the datapath did not steer there. */
export const PROXY_UNSTEERED_COUNTER = 'proxy_unsteered';

/** The nft set of a toFQDNs selector: named by its stable key, so rules stay put while addresses come and go. */
export const fqdnSetName = (selectors: readonly NameMatcher[]): string =>
  'fq_' + createHash('sha256').update(fqdnSelectorKey(selectors)).digest('hex').slice(0, 16);

export function renderState(s: DatapathState): RulesetState {
  const ipcache = new Map<string, number>();
  for (const ip of s.peerAddresses) ipcache.set(ip, IDENTITY_REMOTE_NODE);
  for (const ip of s.ownAddresses) ipcache.set(ip, IDENTITY_HOST);
  for (const ep of s.snapshot.endpoints()) {
    for (const ip of ep.ips) if (!ip.includes(':')) ipcache.set(ip, ep.identity);
  }
  const fqdnSets = new Map<string, Set<string>>();
  const rc: RenderContext = {
    ...(s.httpProxyPort !== undefined ? { httpProxyPort: s.httpProxyPort } : {}),
    ...(s.dnsProxyPort !== undefined ? { dnsProxyPort: s.dnsProxyPort } : {}),
    fqdnSet(selectors) {
      const name = fqdnSetName(selectors);
      if (!fqdnSets.has(name)) fqdnSets.set(name, new Set([...(s.fqdnIps?.(selectors) ?? [])].filter((ip) => !ip.includes(':'))));
      return name;
    },
  };
  const sources = new Map<string, PodSource>();
  for (const local of s.localEndpoints) {
    // A registration without an IPv4 address or with a name nft cannot take
    // gets no entry: its veth then drops everything (fail closed).
    if (!isIPv4(local.ip) || !IFNAME_RE.test(local.hostIfname)) continue;
    const id = endpointChainId(local.key);
    sources.set(id, { key: local.key, id, ifname: local.hostIfname, ip: local.ip });
  }
  const proxyPorts = new Set([s.httpProxyPort, s.dnsProxyPort].filter((p) => p !== undefined));
  const endpoints = new Map<string, EndpointRules>();
  for (const local of s.localEndpoints) {
    const ep = s.snapshot.endpoint(local.key);
    const policy = s.snapshot.policyOf(local.key);
    if (!ep || !policy) continue;
    const render = (dir: NftDirection) => {
      const d = policy[dir];
      return d.selected ? renderDirection(s.snapshot, ep, d, dir, rc) : null;
    };
    const eg = render('egress');
    const ig = render('ingress');
    endpoints.set(local.key, {
      key: local.key,
      id: endpointChainId(local.key),
      ip: local.ip,
      egress: eg?.rules ?? null,
      ingress: ig?.rules ?? null,
      proxyEgress: eg?.proxyRules ?? null,
      proxyIngress: ig?.proxyRules ?? null,
      egressEnforced: eg?.enforced ?? false,
      ingressEnforced: ig?.enforced ?? false,
      unenforceable: [...(eg?.unenforceable ?? []), ...(ig?.unenforceable ?? [])],
    });
  }
  return { ipcache, endpoints, sources, proxyPorts, fqdnSets };
}

/**
 * The sending pod as the drop's prefix names it: its key (`namespace/name`),
 * as eBPF events carry it, since a spoofed source address names another pod.
 * Kubernetes names are safe in an nft string; a key that is not one, or too
 * long for a 127-byte NFLOG prefix, falls back to the endpoint id.
 */
const LOGGABLE_KEY_RE = /^[a-z0-9.-]+\/[a-z0-9.-]+$/;
/** 127 bytes less `d:` and `:eg:INVALID_SOURCE_IP`. */
const LOGGABLE_KEY_MAX = 104;
const senderInPrefix = (p: PodSource): string => (p.key.length <= LOGGABLE_KEY_MAX && LOGGABLE_KEY_RE.test(p.key) ? p.key : p.id);

/**
 * A pod's own address passes; anything else is counted and dropped, IPv4
 * logged for flows. The pods are IPv4-only, so an IPv6 source is never
 * theirs either (and NFLOG records carry IPv4 only).
 */
function sourceCheckRules(p: PodSource): string[] {
  const counter = `counter name "${spoofCounterName(p.id)}" `;
  return [`ip saddr ${p.ip} accept`, `meta nfproto ipv4 ${counter}${logDrop(senderInPrefix(p), 'egress', INVALID_SOURCE_IP)}drop`, `${counter}drop`];
}
const sourceChain = (id: string): string => `${id}_sc`;
const sourceElement = (p: PodSource): string => `"${p.ifname}" : jump ${sourceChain(p.id)}`;

/** Each endpoint has up to four chains, each reached through its own verdict map. */
type Slot = 'egress' | 'ingress' | 'proxyEgress' | 'proxyIngress';
const SLOTS: Slot[] = ['egress', 'ingress', 'proxyEgress', 'proxyIngress'];
const SUFFIX: Record<Slot, string> = { egress: 'eg', ingress: 'in', proxyEgress: 'pe', proxyIngress: 'pi' };
const VMAP: Record<Slot, string> = { egress: 'egress_eps', ingress: 'ingress_eps', proxyEgress: 'proxy_eg_eps', proxyIngress: 'proxy_in_eps' };
const chainName = (id: string, slot: Slot): string => `${id}_${SUFFIX[slot]}`;
const vmapName = (slot: Slot): string => VMAP[slot];
const DIRS = SLOTS;

function counters(e: EndpointRules): string[] {
  return (['egress', 'ingress'] as NftDirection[]).flatMap((d) => [counterName(e.id, d, 'deny'), counterName(e.id, d, 'denied')]);
}

/** Replaces the whole table in one transaction: used at start-up and to recover. */
export function fullTransaction(s: RulesetState): string {
  const out = [`add table ${TABLE}`, `delete table ${TABLE}`, `table ${TABLE} {`];
  // Sets first: chains refer to them.
  for (const [name, ips] of s.fqdnSets) out.push(`  set ${name} { type ipv4_addr;${ips.size ? ` elements = { ${[...ips].join(', ')} }` : ''} }`);
  out.push(`  set proxy_ports { type inet_service;${s.proxyPorts.size ? ` elements = { ${[...s.proxyPorts].join(', ')} }` : ''} }`);
  out.push(`  counter ${UNREGISTERED_COUNTER} { }`, `  counter ${PROXY_UNSTEERED_COUNTER} { }`);
  for (const p of s.sources.values()) {
    out.push(`  counter ${spoofCounterName(p.id)} { }`, `  chain ${sourceChain(p.id)} {`, ...sourceCheckRules(p).map((r) => `    ${r}`), '  }');
  }
  const sourceEls = [...s.sources.values()].map(sourceElement);
  out.push(`  map source_eps { type ifname : verdict;${sourceEls.length ? ` elements = { ${sourceEls.join(', ')} }` : ''} }`);
  for (const e of s.endpoints.values()) {
    for (const c of counters(e)) out.push(`  counter ${c} { }`);
    for (const d of DIRS) {
      const rules = e[d];
      if (rules) out.push(`  chain ${chainName(e.id, d)} {`, ...rules.map((r) => `    ${r}`), '  }');
    }
  }
  const ipcache = [...s.ipcache].map(([ip, id]) => `${ip} : ${id}`);
  out.push(`  map ipcache { type ipv4_addr : mark; flags interval;${ipcache.length ? ` elements = { ${ipcache.join(', ')} }` : ''} }`);
  for (const d of DIRS) {
    const els = [...s.endpoints.values()].filter((e) => e[d]).map((e) => `${e.ip} : jump ${chainName(e.id, d)}`);
    out.push(`  map ${vmapName(d)} { type ipv4_addr : verdict;${els.length ? ` elements = { ${els.join(', ')} }` : ''} }`);
  }
  out.push(
    // Before conntrack (raw): a spoofed packet never creates a connection, is
    // never steered to a proxy and never meets a policy chain.
    '  chain source_check {',
    '    type filter hook prerouting priority raw; policy accept;',
    // The pod kernel's own IPv6 housekeeping on the link (neighbour discovery,
    // multicast listener reports): link-local, reaches only this node, so it
    // is neither spoofing nor counted as such. Any other IPv6 is dropped below.
    `    meta nfproto ipv6 ip6 saddr { ::, fe80::/10 } ip6 daddr { fe80::/10, ff02::/16 } icmpv6 type { ${IPV6_LINK_HOUSEKEEPING} } accept`,
    '    iifname vmap @source_eps',
    `    iifname "${POD_IFNAME_PREFIX}*" counter name "${UNREGISTERED_COUNTER}" drop`,
    '  }',
    // TPROXY: packets of the proxies' own transparent connections come back to
    // this node; L7 ports of endpoints go to the proxy (proxy_*_eps chains).
    // After dstnat, so a connection to a Service address is steered by its backend.
    // `wildcard 0`: a connection of the proxies (bound to a pod's address), not
    // a listener (0.0.0.0) — a SYN addressed to a proxy port is not steering.
    // UDP: the answers to the DNS proxy's queries sent from a pod's address;
    // only replies (`ct direction reply`), so a pod's own query never lands on
    // the DNS proxy's reply socket bound to that server's address.
    '  chain prerouting {',
    '    type filter hook prerouting priority dstnat + 10; policy accept;',
    `    meta l4proto tcp socket transparent 1 socket wildcard 0 meta mark set ${PROXY_MARK} accept`,
    `    meta l4proto udp ct direction reply socket transparent 1 socket wildcard 0 meta mark set ${PROXY_MARK} accept`,
    '    ip saddr vmap @proxy_eg_eps',
    '    ip daddr vmap @proxy_in_eps',
    '  }',
    // A later chain on the same hook sees only what policy let through: one
    // record per forwarded connection (its first packet), for flows.
    '  chain probe {',
    '    type filter hook output priority filter; policy accept;',
    `    ip daddr ${NFLOG_PROBE.ip} udp dport ${NFLOG_PROBE.port} ${logProbe} drop`,
    '  }',
    '  chain forwarded {',
    '    type filter hook forward priority filter + 10; policy accept;',
    `    ct state new ${logForwarded}`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    '    ct state established,related accept',
    '    ip saddr vmap @egress_eps',
    '    ip daddr vmap @ingress_eps',
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    '    ct state established,related accept',
    // Steering keeps the original destination, so a proxy port as the
    // destination of an unmarked packet means the proxy was addressed directly.
    `    meta l4proto { tcp, udp } th dport @proxy_ports meta mark & ${PROXY_MARK} == 0 counter name "${PROXY_UNSTEERED_COUNTER}" drop`,
    // Steered to a proxy: the proxy decides, not the egress chain (whose L7 entries allow nothing).
    `    meta mark & ${PROXY_MARK} == ${PROXY_MARK} accept`,
    '    ip saddr vmap @egress_eps',
    '  }',
    '}',
  );
  return out.join('\n') + '\n';
}

/**
 * The smallest transaction from `prev` to `next`: ipcache element changes,
 * and for each endpoint whose rules changed, its chains flushed and refilled.
 * Returns null when nothing changed. One `nft -f`, so it applies atomically.
 */
export function diffTransaction(prev: RulesetState, next: RulesetState): { script: string; ipcacheChanges: number; endpoints: number } | null {
  const out: string[] = [];
  const del: string[] = [];
  const add: string[] = [];
  for (const [ip, id] of prev.ipcache) if (next.ipcache.get(ip) !== id) del.push(ip);
  for (const [ip, id] of next.ipcache) if (prev.ipcache.get(ip) !== id) add.push(`${ip} : ${id}`);
  // Removed or moved endpoints leave the vmaps first, then their chains go.
  const gone: EndpointRules[] = [];
  for (const [key, e] of prev.endpoints) {
    const n = next.endpoints.get(key);
    for (const d of DIRS) {
      if (e[d] && (!n || !n[d] || n.ip !== e.ip)) out.push(`delete element ${TABLE} ${vmapName(d)} { ${e.ip} }`);
    }
    if (!n) gone.push(e);
  }
  // Source checks: a veth leaves the map before its chain goes or its name is reused.
  for (const [id, p] of prev.sources) {
    const n = next.sources.get(id);
    if (!n || n.ifname !== p.ifname) out.push(`delete element ${TABLE} source_eps { "${p.ifname}" }`);
  }
  const goneProxyPorts = [...prev.proxyPorts].filter((port) => !next.proxyPorts.has(port));
  const newProxyPorts = [...next.proxyPorts].filter((port) => !prev.proxyPorts.has(port));
  if (goneProxyPorts.length) out.push(`delete element ${TABLE} proxy_ports { ${goneProxyPorts.join(', ')} }`);
  if (newProxyPorts.length) out.push(`add element ${TABLE} proxy_ports { ${newProxyPorts.join(', ')} }`);
  if (del.length) out.push(`delete element ${TABLE} ipcache { ${del.join(', ')} }`);
  if (add.length) out.push(`add element ${TABLE} ipcache { ${add.join(', ')} }`);
  // New sets and their elements before any rule refers to them; old sets go last, after their rules.
  let fqdnChanges = 0;
  for (const [name, ips] of next.fqdnSets) {
    const old = prev.fqdnSets.get(name);
    if (!old) out.push(`add set ${TABLE} ${name} { type ipv4_addr; }`);
    const gone = old ? [...old].filter((ip) => !ips.has(ip)) : [];
    const added = [...ips].filter((ip) => !old?.has(ip));
    if (gone.length) out.push(`delete element ${TABLE} ${name} { ${gone.join(', ')} }`);
    if (added.length) out.push(`add element ${TABLE} ${name} { ${added.join(', ')} }`);
    fqdnChanges += gone.length + added.length;
  }
  const touchedKeys = new Set<string>();
  for (const [id, n] of next.sources) {
    const p = prev.sources.get(id);
    if (!p) out.push(`add counter ${TABLE} ${spoofCounterName(id)}`, `add chain ${TABLE} ${sourceChain(id)}`);
    else if (p.ip !== n.ip) out.push(`flush chain ${TABLE} ${sourceChain(id)}`);
    if (!p || p.ip !== n.ip) for (const r of sourceCheckRules(n)) out.push(`add rule ${TABLE} ${sourceChain(id)} ${r}`);
    if (!p || p.ifname !== n.ifname) out.push(`add element ${TABLE} source_eps { ${sourceElement(n)} }`);
    if (!p || p.ip !== n.ip || p.ifname !== n.ifname) touchedKeys.add(n.key);
  }
  for (const [key, n] of next.endpoints) {
    const p = prev.endpoints.get(key);
    let touched = false;
    if (!p) for (const c of counters(n)) out.push(`add counter ${TABLE} ${c}`);
    for (const d of DIRS) {
      const rules = n[d];
      const same = p && p[d] && rules && p[d].length === rules.length && p[d].every((r, i) => r === rules[i]);
      if (rules && !same) {
        touched = true;
        out.push(`add chain ${TABLE} ${chainName(n.id, d)}`, `flush chain ${TABLE} ${chainName(n.id, d)}`);
        for (const r of rules) out.push(`add rule ${TABLE} ${chainName(n.id, d)} ${r}`);
      }
      if (rules && (!p || !p[d] || p.ip !== n.ip)) {
        touched = true;
        out.push(`add element ${TABLE} ${vmapName(d)} { ${n.ip} : jump ${chainName(n.id, d)} }`);
      }
      if (!rules && p?.[d]) {
        touched = true;
        out.push(`delete chain ${TABLE} ${chainName(n.id, d)}`);
      }
    }
    if (touched) touchedKeys.add(key);
  }
  for (const e of gone) {
    for (const d of DIRS) if (e[d]) out.push(`delete chain ${TABLE} ${chainName(e.id, d)}`);
    for (const c of counters(e)) out.push(`delete counter ${TABLE} ${c}`);
  }
  for (const id of prev.sources.keys()) {
    if (!next.sources.has(id)) out.push(`delete chain ${TABLE} ${sourceChain(id)}`, `delete counter ${TABLE} ${spoofCounterName(id)}`);
  }
  for (const name of prev.fqdnSets.keys()) if (!next.fqdnSets.has(name)) out.push(`delete set ${TABLE} ${name}`);
  if (out.length === 0) return null;
  return { script: out.join('\n') + '\n', ipcacheChanges: del.length + add.length + fqdnChanges, endpoints: touchedKeys.size };
}
