/**
 * ClusterIP Services in nftables, kube-proxy style (pure; no I/O).
 *
 *   table ip palisade_svc
 *     map services   clusterIP . proto . port → jump svc_<n>
 *     chain svc_<n>  dnat to one backend, chosen at random per new connection
 *     prerouting (pods) and output (the node) → vmap @services
 *
 * DNAT happens before the filter hooks and before proxy steering (which runs
 * just after dstnat), so policy and the proxies see the backend pod, not the
 * Service address; conntrack keeps every packet of a connection on the
 * backend its first packet chose. A Service port with no backend rejects new
 * connections at once instead of letting them hang.
 */
import type { ServiceEntry } from '../types.ts';

export const SVC_TABLE = 'ip palisade_svc';

export function renderServices(services: readonly ServiceEntry[]): string {
  const sorted = [...services].sort((a, b) => a.key.localeCompare(b.key));
  const chains: string[] = [];
  const elements: string[] = [];
  const empty: string[] = [];
  sorted.forEach((s, i) => {
    const proto = s.protocol.toLowerCase();
    if (s.backends.length === 0) {
      empty.push(`${s.clusterIP} . ${proto} . ${s.port}`);
      return;
    }
    const chain = `svc_${i}`;
    const targets = s.backends.map((b, j) => `${j} : ${b.ip} . ${b.port}`).join(', ');
    chains.push(
      `  chain ${chain} {`,
      `    comment "${s.key}"`,
      // A port rewrite needs the protocol matched first.
      s.backends.length === 1
        ? `    meta l4proto ${proto} dnat ip to ${s.backends[0]!.ip}:${s.backends[0]!.port}`
        : `    meta l4proto ${proto} dnat ip to numgen random mod ${s.backends.length} map { ${targets} }`,
      '  }',
    );
    elements.push(`${s.clusterIP} . ${proto} . ${s.port} : jump ${chain}`);
  });
  return [
    `add table ${SVC_TABLE}`,
    `delete table ${SVC_TABLE}`,
    `table ${SVC_TABLE} {`,
    ...chains,
    `  map services { type ipv4_addr . inet_proto . inet_service : verdict;${elements.length ? ` elements = { ${elements.join(', ')} }` : ''} }`,
    `  set no_endpoints { type ipv4_addr . inet_proto . inet_service;${empty.length ? ` elements = { ${empty.join(', ')} }` : ''} }`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    '    ip daddr . meta l4proto . th dport vmap @services',
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    '    ip daddr . meta l4proto . th dport vmap @services',
    '  }',
    '  chain reject_no_endpoints {',
    '    type filter hook forward priority filter - 10; policy accept;',
    '    ip daddr . meta l4proto . th dport @no_endpoints reject',
    '  }',
    '}',
  ].join('\n') + '\n';
}
