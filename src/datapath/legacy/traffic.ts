/**
 * Forwarded bytes per address pair (Datapath.readTraffic) in nftables: a
 * dynamic set whose elements carry counters, filled from the packet path.
 *
 *   table inet palisade_traffic
 *     set traffic   ipv4_addr . ipv4_addr, counter per element, 10 min idle timeout, 16,384 at most (a pod can fill it; reading it lists every element)
 *     chain sent       (forward and input, after policy) from a pod veth: every packet a pod sends
 *     chain delivered  (postrouting) to a pod veth from no pod of the cluster: world, nodes, proxies acting for them
 *
 * Its own table, because `inet palisade` is replaced whole at start-up and
 * the counts must outlive an agent restart; written with `add` (a no-op for
 * what exists) and `flush chain`, so re-running it keeps the elements.
 * Chains at filter + 20 run after the policy chains, whose drops end a
 * packet's way: only accepted packets are counted. Postrouting comes after
 * both forward and output, so a proxy's onward packets are counted there too.
 */
import { isIPv4 } from 'node:net';
import { run } from '../../kernel/index.ts';
import type { TrafficCounter } from '../types.ts';
import { POD_IFNAME_PREFIX } from './ruleset.ts';

const TRAFFIC_TABLE = 'inet palisade_traffic';
const TRAFFIC_SET = 'traffic';

/** The whole table as one idempotent nft script; `clusterPodCIDR` tells pods (counted by their own node) from everything else. */
export function trafficTableScript(clusterPodCIDR: string): string {
  if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(clusterPodCIDR)) throw new Error(`legacy datapath: not an IPv4 CIDR: ${clusterPodCIDR}`);
  const update = `update @${TRAFFIC_SET} { ip saddr . ip daddr }`;
  const t = TRAFFIC_TABLE;
  return [
    `add table ${t}`,
    `add set ${t} ${TRAFFIC_SET} { type ipv4_addr . ipv4_addr; flags dynamic,timeout; timeout 10m; size 16384; counter; }`,
    `add chain ${t} sent { type filter hook forward priority filter + 20; policy accept; }`,
    `flush chain ${t} sent`,
    `add rule ${t} sent iifname "${POD_IFNAME_PREFIX}*" ${update}`,
    // Pod → this node (its proxies included): input, not forward.
    `add chain ${t} sent_local { type filter hook input priority filter + 20; policy accept; }`,
    `flush chain ${t} sent_local`,
    `add rule ${t} sent_local iifname "${POD_IFNAME_PREFIX}*" ${update}`,
    `add chain ${t} delivered { type filter hook postrouting priority filter; policy accept; }`,
    `flush chain ${t} delivered`,
    `add rule ${t} delivered oifname "${POD_IFNAME_PREFIX}*" ip saddr != ${clusterPodCIDR} ${update}`,
  ].join('\n') + '\n';
}

/** The set's elements with their counters (`nft -j list set`); empty when the table is not there. */
export async function readTrafficSet(): Promise<TrafficCounter[]> {
  const r = await run('nft', ['-j', 'list', 'set', ...TRAFFIC_TABLE.split(' '), TRAFFIC_SET], { allowFailure: true });
  if (r.code !== 0) return [];
  return parseTrafficSet(r.stdout);
}

interface NftSetElem {
  elem?: { val?: { concat?: unknown[] }; counter?: { packets: number; bytes: number } };
}

export function parseTrafficSet(json: string): TrafficCounter[] {
  const doc = JSON.parse(json) as { nftables: { set?: { elem?: NftSetElem[] } }[] };
  const out: TrafficCounter[] = [];
  for (const item of doc.nftables) {
    for (const el of item.set?.elem ?? []) {
      const [source, destination] = el.elem?.val?.concat ?? [];
      const c = el.elem?.counter;
      if (typeof source !== 'string' || typeof destination !== 'string' || !isIPv4(source) || !isIPv4(destination) || !c) continue;
      out.push({ source, destination, packets: c.packets, bytes: c.bytes });
    }
  }
  return out;
}
