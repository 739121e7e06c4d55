/**
 * The node's transparent DNS proxy, as the agent runs it:
 *
 *   datapath (TPROXY, UDP and TCP :15053) ──► DnsProxy (src/fqdn)
 *     query ──► PolicySnapshot.dnsRules(pod, server) ──► allowed? forward : REFUSED
 *     answer ──► name cache ──► onLearned ──► the agent puts new addresses in
 *                the datapath's toFQDNs sets ──► only then is the answer released
 *     events ──► L7 DNS flow records (and hubble_dns_* through the flow store)
 *
 * The name cache is saved in the node's run directory, so an agent restart
 * keeps allowing what pods resolved before it (until their TTLs end). While
 * nothing listens, steered queries are dropped and the pod's resolver retries:
 * failing closed.
 */
import type { Server } from 'node:net';
import { connectTransparent, listenTransparent, openTransparentUdp, openUdpFrom, type TransparentUdp } from '../proxy/transparent/index.ts';
import { type NameMatcher } from '../fqdn/index.ts';
import { DnsProxy, type DnsEvent } from '../proxy/dns/index.ts';
import { makeFlow, type Flow, type FlowStore, type Policy } from '../flows/index.ts';
import { endpointOf, knownNames, policies, type FlowContext } from './flow-events.ts';
import { snapshotMemo, type SnapshotMemo } from './snapshot-memo.ts';

export const DNS_PROXY_PORT = 15053;

export interface NodeDnsProxyOptions {
  ctx: FlowContext;
  flows: FlowStore;
  /** Where the name cache persists. */
  cacheFile: string;
  minTtl?: number;
  maxIpsPerName?: number;
  /** New addresses for a name: resolve once the datapath allows them (the answer waits ≤ 100 ms). */
  onLearned(pod: string, name: string, ips: readonly string[], ttl: number): Promise<void> | undefined;
  /** Addresses left the cache (expired or evicted): the datapath should drop them. */
  onForgotten(name: string, ips: readonly string[]): void;
}

const MEMO_MAX = 4096;

export function createDnsProxy(o: NodeDnsProxyOptions): DnsProxy {
  // One lookup per pod, server and transport per policy snapshot, not per query.
  const rules = snapshotMemo<readonly NameMatcher[] | 'all' | 'server-denies'>(MEMO_MAX);
  // A query and its response name the same policies: asked once.
  const deciders = snapshotMemo<Policy[]>(MEMO_MAX);
  return new DnsProxy({
    allowedFor(podIp, server, transport) {
      const snap = o.ctx.snapshot();
      return rules(snap, `${podIp}|${server.ip}|${server.port}|${transport}`, () => {
        const protocol = transport === 'udp' ? 'UDP' : 'TCP';
        // The query leaves in the pod's name: the server's ingress policy must
        // admit the pod. Judged here as the HTTP proxy judges its upstreams:
        // a packet this node sends to a pod of its own meets no forward chain (legacy).
        const v = snap.verdict({ src: { ip: podIp }, dst: { ip: server.ip }, protocol, port: server.port }, o.ctx.fqdns);
        if (v.ingress && (v.ingress.reason === 'denied-by-rule' || v.ingress.reason === 'default-deny')) return 'server-denies';
        return snap.dnsRules(podIp, server, protocol, o.ctx.fqdns);
      });
    },
    onLearned: (pod, name, ips, ttl) => o.onLearned(pod, name, ips, ttl),
    onForgotten: (name, ips) => o.onForgotten(name, ips),
    onEvent: (e) => o.flows.addFlow(dnsFlow(o.ctx, e, deciders)),
    // Upstream queries from each pod's own address (transparent sockets), in
    // batches (sendmmsg/recvmmsg) like the listener's; TCP likewise.
    upstreamFrom: 'pod',
    openUpstreamSocket: openUdpFrom,
    upstreamTcp: (server, pod) => connectTransparent({ ip: pod.ip }, server),
    cacheFile: o.cacheFile,
    ...(o.minTtl !== undefined ? { minTtl: o.minTtl } : {}),
    ...(o.maxIpsPerName !== undefined ? { maxIpsPerName: o.maxIpsPerName } : {}),
  });
}

/** Opens the proxy's transparent UDP and TCP listeners on `port`. */
export async function listenDnsProxy(proxy: DnsProxy, port = DNS_PROXY_PORT): Promise<{ close(): Promise<void> }> {
  let udp: TransparentUdp | undefined = undefined;
  udp = await openTransparentUdp(port, (d) => proxy.handleUdp(d, udp!));
  let tcp: Server;
  try {
    // Half-open: a client may shut its side after the last query and still read the answers.
    tcp = await listenTransparent(port, (s) => proxy.handleTcp(s), { allowHalfOpen: true });
  } catch (err) {
    await udp.close();
    throw err;
  }
  return {
    async close() {
      tcp.close();
      await udp.close();
      await proxy.close();
    },
  };
}

/**
 * One DNS event as Hubble records it: a query travels pod → server, a
 * response server → pod; both are egress traffic of the pod, with the
 * policy that allowed (or refused) the name (`deciders` remembers it per snapshot).
 */
export function dnsFlow(ctx: FlowContext, e: DnsEvent, deciders: SnapshotMemo<Policy[]>): Flow {
  const snap = ctx.snapshot();
  const query = e.type === 'query';
  const [src, dst] = query ? [e.pod, e.server] : [e.server, e.pod];
  const denied = e.verdict === 'DROPPED';
  // Dropped because the server's ingress policy does not admit the pod: that side's deny rules, not the DNS rule's.
  const byServer = e.reason === 'server-denied';
  const key = `${e.pod.ip}|${e.server.ip}|${e.server.port}|${e.protocol}|${e.query}|${denied}|${byServer}`;
  const who = deciders(snap, key, () => {
    try {
      const v = snap.verdict(
        { src: { ip: e.pod.ip }, dst: { ip: e.server.ip }, protocol: e.protocol === 'udp' ? 'UDP' : 'TCP', port: e.server.port, dnsName: e.query },
        ctx.fqdns,
      );
      return policies((byServer ? v.ingress?.deniedBy : denied ? v.egress?.l7?.from : v.egress?.allowedBy) ?? []);
    } catch {
      return []; // the pod left the snapshot since it asked: the record goes out without policies
    }
  });
  const ports = { source_port: src.port, destination_port: dst.port };
  return makeFlow({
    verdict: e.verdict,
    node_name: ctx.node,
    IP: { source: src.ip, destination: dst.ip, ipVersion: 'IPv4' },
    l4: e.protocol === 'udp' ? { UDP: ports } : { TCP: ports },
    source: endpointOf(ctx, snap, src.ip),
    destination: endpointOf(ctx, snap, dst.ip),
    ...knownNames(ctx, src.ip, dst.ip),
    Type: 'L7',
    traffic_direction: 'EGRESS',
    is_reply: !query,
    l7: {
      type: query ? 'REQUEST' : 'RESPONSE',
      ...(e.latencyNs !== undefined ? { latency_ns: String(e.latencyNs) } : {}),
      dns: {
        query: e.query,
        qtypes: [...e.qtypes],
        observation_source: 'proxy',
        ...(e.rcode !== undefined ? { rcode: e.rcode } : {}),
        ...(e.ips ? { ips: [...e.ips] } : {}),
        ...(e.ttl !== undefined ? { ttl: e.ttl } : {}),
      },
    },
    ...(who.length ? (byServer ? { ingress_denied_by: who } : denied ? { egress_denied_by: who } : { egress_allowed_by: who }) : {}),
  });
}
