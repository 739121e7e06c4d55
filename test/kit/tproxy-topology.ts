/**
 * Test and bench support (not part of the datapath's surface): three network
 * namespaces with a node between a pod and a server, for a transparent proxy
 * on the node, as the DNS proxy's privileged tests and bench/dns use them.
 *
 *   pod 10.98.0.2 ──p0/n0── node 10.98.0.1 | 10.97.0.1 ──n1/s0── srv 10.97.0.2
 *
 * The server's `served` addresses (on its lo, inside 10.99.0.0/24) are routed
 * through the node, and the node delivers packets marked 1 to its own sockets
 * (fwmark 1 → table 100), which TPROXY rules need. The rules, the server and
 * the proxy are the caller's, and so is deleting the namespaces.
 */
import { ipBatch, run } from '../../src/kernel/exec.ts';
import { createNetns } from '../../src/kernel/netns.ts';

export interface TproxyTopology {
  pod: string;
  node: string;
  srv: string;
}

export async function createTproxyTopology(ns: TproxyTopology, served: readonly string[]): Promise<void> {
  for (const n of [ns.pod, ns.node, ns.srv]) await createNetns(n);
  await run('ip', ['link', 'add', 'p0', 'netns', ns.pod, 'type', 'veth', 'peer', 'name', 'n0', 'netns', ns.node]);
  await run('ip', ['link', 'add', 's0', 'netns', ns.srv, 'type', 'veth', 'peer', 'name', 'n1', 'netns', ns.node]);
  await ipBatch(['addr add 10.98.0.2/24 dev p0', 'link set p0 up', 'route add default via 10.98.0.1'], ns.pod);
  await ipBatch([
    'addr add 10.98.0.1/24 dev n0', 'link set n0 up', 'addr add 10.97.0.1/24 dev n1', 'link set n1 up',
    'route add 10.99.0.0/24 via 10.97.0.2', 'rule add fwmark 1 lookup 100', 'route add local 0.0.0.0/0 dev lo table 100',
  ], ns.node);
  await ipBatch(['addr add 10.97.0.2/24 dev s0', 'link set s0 up', 'route add default via 10.97.0.1', ...served.map((a) => `addr add ${a}/32 dev lo`)], ns.srv);
  await run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { netns: ns.node });
}
