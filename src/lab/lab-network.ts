/**
 * The lab's wires: a fabric namespace with the underlay bridge (and the way
 * out to the lab's outside world), one namespace per node joined to it.
 *
 *   pl-<lab>-fabric:  br0 172.31.0.1/24 ── n-<node> veths
 *   pl-<lab>-<node>:  eth0 172.31.0.1x/24, default via 172.31.0.1
 *   the fabric routes each node's pod range to that node
 *
 * Interface names are per namespace, so every lab can use the same ones.
 */
import { ipBatch, createNetns, deleteNetns, listNetns, sysctlIn } from '../kernel/index.ts';

export interface LabNodeWiring {
  name: string;
  netns: string;
  underlayIp: string;
  podCIDR: string;
}

export interface LabWiring {
  fabricNetns: string;
  fabricIp: string;
  underlayPrefix: number;
  nodes: LabNodeWiring[];
}

export const UNDERLAY_IF = 'eth0';
export const FABRIC_BRIDGE = 'br0';
export const FABRIC_BRIDGE_MAC = '02:70:6c:00:00:01';

export async function buildLabNetwork(w: LabWiring): Promise<void> {
  await createNetns(w.fabricNetns);
  await sysctlIn(w.fabricNetns, 'net.ipv4.ip_forward', '1');
  await ipBatch(
    [
      // A fixed MAC: a bridge otherwise takes its lowest port's, which changes as
      // hosts come and go and leaves the nodes' neighbour entries stale.
      `link add name ${FABRIC_BRIDGE} address ${FABRIC_BRIDGE_MAC} type bridge`,
      `addr add ${w.fabricIp}/${w.underlayPrefix} dev ${FABRIC_BRIDGE}`,
      `link set ${FABRIC_BRIDGE} up`,
    ],
    w.fabricNetns,
  );
  for (const n of w.nodes) await addNode(w, n);
}

export async function addNode(w: LabWiring, n: LabNodeWiring): Promise<void> {
  await createNetns(n.netns);
  const port = `n-${n.name}`.slice(0, 15);
  await ipBatch(
    [
      `link add ${port} type veth peer name ${UNDERLAY_IF} netns ${n.netns}`,
      `link set ${port} master ${FABRIC_BRIDGE}`,
      `link set ${port} up`,
    ],
    w.fabricNetns,
  );
  await ipBatch(
    [
      `addr add ${n.underlayIp}/${w.underlayPrefix} dev ${UNDERLAY_IF}`,
      `link set ${UNDERLAY_IF} up`,
      `route add default via ${w.fabricIp} dev ${UNDERLAY_IF}`,
    ],
    n.netns,
  );
  // Pods talk to the fabric itself (the lab's upstream DNS) with their own
  // addresses, unmasqueraded: the fabric routes the answers back by node.
  await ipBatch([`route replace ${n.podCIDR} via ${n.underlayIp} dev ${FABRIC_BRIDGE}`], w.fabricNetns);
}

/** Removes every namespace of the lab (their veths and routes go with them). */
export async function destroyLabNetwork(netnsPrefix: string): Promise<string[]> {
  const names = listNetns(netnsPrefix);
  // Pods first, then nodes, then the fabric: nothing is left dangling mid-way.
  const order = (n: string): number => (n.includes('-pod-') ? 0 : n.endsWith('-fabric') ? 2 : 1);
  for (const n of [...names].sort((a, b) => order(a) - order(b))) await deleteNetns(n);
  return names;
}
