/**
 * DEL: forget the endpoint, remove the veth, release the address — each step
 * tolerating that its piece is already gone, so DEL can be repeated.
 *
 * CNI spec: "Plugins should generally complete a DEL action without error even
 * if some resources are missing. For example, an IPAM plugin should generally
 * release an IP allocation and return success even if the container network
 * namespace no longer exists."
 */
import { hostIfname, unwirePod } from './pod-wiring.ts';
import { netnsExists } from '../kernel/index.ts';
import { deregisterEndpoint } from './agent-client.ts';
import { ipamDel } from './ipam.ts';
import type { CniEnv, NetConf } from './config.ts';

export async function cmdDel(conf: NetConf, env: CniEnv): Promise<void> {
  // 1. Best effort: an unreachable agent must not keep a pod from being
  //    deleted, and the agent drops endpoints whose veth has vanished.
  if (conf.agentSocket) {
    const problem = await deregisterEndpoint(conf.agentSocket, env.containerId);
    if (problem) process.stderr.write(`palisade-cni: DEL ${env.containerId}: agent not told (${problem}); continuing\n`);
  }
  // 2. The veth (and with it the node's /32 route). A real failure here stops
  //    DEL before the address is released, so the address is never handed to
  //    another pod while this one's route still points at it.
  const podNetns = env.netnsName && netnsExists(env.netnsName) ? env.netnsName : undefined;
  await unwirePod({ hostIfname: hostIfname(env.containerId), ...(podNetns ? { podNetns, ifname: env.ifname } : {}) });
  // 3. The address. host-local answers success for a container it does not know.
  await ipamDel(conf, env);
}
