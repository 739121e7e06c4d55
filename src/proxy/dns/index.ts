/**
 * The transparent DNS proxy that enforces `rules.dns` and feeds toFQDNs.
 *
 *   pod DNS ─steered─► DnsProxy.handleUdp / handleTcp (dns-proxy.ts)
 *     ├─ dns-wire: parse (limits, FORMERR/NOTIMP), REFUSED for denied names
 *     ├─ forward to the original destination (dns-upstream / dns-tcp)
 *     ├─ learn A/AAAA through CNAMEs ─► name cache (src/fqdn) ─► onLearned ─► datapath
 *     │     (the answer waits ≤ holdMs for it, unless all its IPs are confirmed)
 *     └─ DnsEvent per query and response ─► Hubble L7 DNS flows, metrics
 *
 * UDP moves in batches both ways (proxy/transparent: recvmmsg, sendmmsg);
 * bench/dns measures the whole path. IPv4 transport only (AAAA answers are learned).
 */
export { DnsProxy, type DnsProxyStats } from './dns-proxy.ts';
export type { DnsEvent, OpenUpstreamSocket, UpstreamSocket, UpstreamSocketOptions } from './dns-types.ts';
