/**
 * What both datapaths do to a node before any policy: the part of setupNode
 * that does not depend on how pods are routed or policy enforced.
 *
 *   sysctls      forwarding on, reverse-path filter off (pods' /32s live on veths)
 *   routes       each peer's pod CIDR via its underlay address (legacy routes by
 *                them; eBPF's bpf_fib_lookup reads them)
 *   proxy route  `fwmark PROXY_MARK lookup 100` + `local 0.0.0.0/0 dev lo table 100`:
 *                steered packets are delivered to the node's proxies
 *   masquerade   table ip palisade_nat: pods reach the world from the node's address
 *
 * Runs inside the node's network namespace (the agent's own), never the root one.
 */
import { assertNotRootNetns, ipBatch, nft, run } from '../kernel/index.ts';
import { PROXY_MARK, PROXY_ROUTE_TABLE, PROXY_RULE_PREF } from './constants.ts';
import type { NodeNetwork, PeerNode } from './types.ts';

const NAT_TABLE = 'ip palisade_nat';

export async function setupNodeNetwork(node: NodeNetwork, peers: readonly PeerNode[]): Promise<void> {
  assertNotRootNetns('node set-up');
  await writeSysctls({
    'net.ipv4.ip_forward': '1',
    'net.ipv4.conf.all.rp_filter': '0',
    'net.ipv4.conf.default.rp_filter': '0',
  });
  await ipBatch(peers.filter((p) => p.name !== node.name).map((p) => `route replace ${p.podCIDR} via ${p.ip} dev ${node.underlayIf}`));
  // A restarted agent finds the rule in place and leaves it: deleting and
  // re-adding it would, for a moment, route steered DNS and HTTP past the proxies.
  await ensureProxyRule();
  await ipBatch([`route replace local 0.0.0.0/0 dev lo table ${PROXY_ROUTE_TABLE}`]);
  // Pods reach the world from the node's address; pod-to-pod and pod-to-node keep their own.
  await nft(
    [
      `add table ${NAT_TABLE}`,
      `delete table ${NAT_TABLE}`,
      `table ${NAT_TABLE} {`,
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    ip saddr ${node.clusterPodCIDR} ip daddr != { ${node.clusterPodCIDR}, ${node.underlayCIDR} } oifname "${node.underlayIf}" masquerade`,
      '  }',
      '}',
    ].join('\n') + '\n',
  );
}

/** The policy-routing rule for marked packets, added when missing; a stale one (another priority) goes after. */
async function ensureProxyRule(): Promise<void> {
  const mark = `0x${PROXY_MARK.toString(16)}`;
  const rules = JSON.parse((await run('ip', ['-j', 'rule', 'show'])).stdout || '[]') as { priority: number; fwmark?: string; fwmask?: string; table?: string }[];
  const ours = rules.filter((r) => r.fwmark === mark && r.fwmask === mark && r.table === String(PROXY_ROUTE_TABLE));
  if (!ours.some((r) => r.priority === PROXY_RULE_PREF)) {
    await run('ip', ['rule', 'add', 'fwmark', `${mark}/${mark}`, 'lookup', String(PROXY_ROUTE_TABLE), 'pref', String(PROXY_RULE_PREF)]);
  }
  for (const r of ours.filter((r) => r.priority !== PROXY_RULE_PREF)) {
    await run('ip', ['rule', 'del', 'pref', String(r.priority), 'fwmark', `${mark}/${mark}`, 'lookup', String(PROXY_ROUTE_TABLE)]);
  }
}

/** Namespaced sysctls of the current (node) network namespace. */
async function writeSysctls(values: Record<string, string>): Promise<void> {
  await run('sysctl', ['-q', '-w', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
}
