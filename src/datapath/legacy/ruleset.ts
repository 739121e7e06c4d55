/**
 * The whole nftables state of a node, rendered as data, and the transactions
 * that move the kernel from one such state to the next.
 *
 *   table inet palisade
 *     map ipcache      ip → identity (packet mark), every pod and node address
 *     set fq_<hash>    addresses of one toFQDNs selector (learned by the DNS proxy)
 *     map egress_eps   local pod ip → jump <endpoint>_eg   (only pods with egress policy)
 *     map ingress_eps  local pod ip → jump <endpoint>_in   (only pods with ingress policy)
 *     chain forward    established → accept; saddr vmap egress_eps; daddr vmap ingress_eps
 *     chain input      established → accept; saddr vmap egress_eps   (pod → this node)
 *
 * Replies and established flows pass before any policy chain (conntrack), so
 * only the first packet of a connection is judged.
 */
import { IDENTITY_HOST, IDENTITY_REMOTE_NODE } from '../../identity/index.ts';
import type { DatapathState } from '../types.ts';
import { createHash } from 'node:crypto';
import { fqdnSelectorKey, type NameMatcher } from '../../fqdn/index.ts';
import { counterName, endpointChainId, NFLOG_GROUP, NFLOG_PROBE, PROXY_MARK, renderDirection, type NftDirection, type RenderContext } from './render-policy.ts';

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

export interface RulesetState {
  ipcache: Map<string, number>;
  endpoints: Map<string, EndpointRules>;
  /** `fq_<hash>` → the addresses its toFQDNs selector allows now. */
  fqdnSets: Map<string, Set<string>>;
}

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
  return { ipcache, endpoints, fqdnSets };
}

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
    // TPROXY: packets of the proxies' own transparent connections come back to
    // this node; L7 ports of endpoints go to the proxy (proxy_*_eps chains).
    // After dstnat, so a connection to a Service address is steered by its backend.
    '  chain prerouting {',
    '    type filter hook prerouting priority dstnat + 10; policy accept;',
    `    meta l4proto tcp socket transparent 1 meta mark set ${PROXY_MARK} accept`,
    '    ip saddr vmap @proxy_eg_eps',
    '    ip daddr vmap @proxy_in_eps',
    '  }',
    // A later chain on the same hook sees only what policy let through: one
    // record per forwarded connection (its first packet), for flows.
    '  chain probe {',
    '    type filter hook output priority filter; policy accept;',
    `    ip daddr ${NFLOG_PROBE.ip} udp dport ${NFLOG_PROBE.port} log group ${NFLOG_GROUP} prefix "p" drop`,
    '  }',
    '  chain forwarded {',
    '    type filter hook forward priority filter + 10; policy accept;',
    `    ct state new log group ${NFLOG_GROUP} prefix "f"`,
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
  let endpoints = 0;
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
    if (touched) endpoints++;
  }
  for (const e of gone) {
    for (const d of DIRS) if (e[d]) out.push(`delete chain ${TABLE} ${chainName(e.id, d)}`);
    for (const c of counters(e)) out.push(`delete counter ${TABLE} ${c}`);
  }
  for (const name of prev.fqdnSets.keys()) if (!next.fqdnSets.has(name)) out.push(`delete set ${TABLE} ${name}`);
  if (out.length === 0) return null;
  return { script: out.join('\n') + '\n', ipcacheChanges: del.length + add.length + fqdnChanges, endpoints };
}
