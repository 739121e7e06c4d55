/**
 * FQDN policy: which DNS names a rule allows, the transparent DNS proxy that
 * enforces it, and the name → IP cache that toFQDNs selectors are made of.
 *
 *   toFQDNs / rules.dns ──► compileFqdnSelector() ──► NameMatcher.matches(name.)
 *
 *   pod DNS ─TPROXY─► DnsProxy.handleUdp / handleTcp (dns-proxy.ts)
 *     ├─ dns-wire: parse (limits, FORMERR/NOTIMP), REFUSED for denied names
 *     ├─ forward to the original destination (dns-upstream / upstreamTcp)
 *     ├─ learn A/AAAA through CNAMEs ─► fqdnCache (name-cache.ts) ─► onLearned ─► datapath
 *     │     (the answer waits ≤ holdMs for it, unless     └─ expiry / cap ─► onForgotten
 *     │      all its IPs are confirmed in the datapath)
 *
 *   UDP moves in batches both ways (datapath/transparent-udp.ts: recvmmsg,
 *   sendmmsg at the end of each callback); bench/dns measures the whole path.
 *     └─ DnsEvent per query and response ─► Hubble L7 DNS flows, metrics
 *
 * Caveats: IPv4 transport only (AAAA answers are learned); the default
 * upstream sends from the node's address, not the pod's.
 */
export {
  normaliseName,
  patternToRegexSource,
  compileMatchPattern,
  compileMatchName,
  compileFqdnSelector,
  fqdnSelectorKey,
  type NameMatcher,
} from './matchpattern.ts';
export { DnsProxy, type DnsProxyOptions, type DnsProxyStats } from './dns-proxy.ts';
export { NameCache, type CacheEntry, type NameCacheEntry, type NameCacheOptions } from './name-cache.ts';
export { UdpUpstream, UpstreamTimeoutError, type UdpUpstreamOptions, type UpstreamWaiter } from './dns-upstream.ts';
export { handleTcpDns, type DnsTcpContext } from './dns-tcp.ts';
export {
  parseQuery,
  parseAnswer,
  buildReply,
  buildHeaderReply,
  DNS_LIMITS,
  RCODE,
  type DnsQuery,
  type DnsAnswer,
  type MalformedReason,
} from './dns-wire.ts';
export type { Transport as DnsTransport } from './dns-wire.ts';
export type { DnsDatagram, DnsEvent, DnsEventReason, DnsReplySink, DnsVerdict, UdpEndpoint, OpenUpstreamSocket, UpstreamSocket, UpstreamSocketOptions } from './dns-types.ts';
