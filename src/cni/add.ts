/**
 * ADD, in the order of the header drawing in index.ts:
 *   1. check the sandbox exists (and, with an agent, that we know the pod)
 *   2. IPAM ADD → an address
 *   3. wire the veth, address and routes
 *   4. register the endpoint with the node agent (answers once policy is in place)
 *   5. print the result
 * Any failure after step 2 began undoes what was done, in reverse, before the
 * error is returned: the runtime then sees no half-made pod.
 */
import { hostIfname, POD_GATEWAY, unwirePod, wirePod } from './pod-wiring.ts';
import { netnsExists } from '../kernel/index.ts';
import { deregisterEndpoint, registerEndpoint } from './agent-client.ts';
import { CniCode, CniError } from './errors.ts';
import { ipamAdd, ipamDel } from './ipam.ts';
import type { CniEnv, NetConf } from './config.ts';
import type { CniResult } from './types.ts';

/** The pod a sandbox belongs to, from CNI_ARGS (kubelet's K8S_POD_NAMESPACE / K8S_POD_NAME). */
export function podOf(env: CniEnv): { namespace: string; pod: string } {
  const namespace = env.args.get('K8S_POD_NAMESPACE');
  const pod = env.args.get('K8S_POD_NAME');
  if (!namespace || !pod) {
    throw new CniError(CniCode.invalidEnv, 'CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME (the agent registers endpoints by pod)');
  }
  return { namespace, pod };
}

export async function cmdAdd(conf: NetConf, env: CniEnv): Promise<CniResult> {
  // A prevResult on ADD would come from a plugin chained before us. We create
  // the pod's only interface, so we replace it: the spec lets a plugin
  // "modify or suppress all or part of a prevResult", and this is a suppression.
  const netns = env.netnsName;
  const netnsPath = env.netnsPath;
  if (!netns || !netnsPath || !netnsExists(netns)) throw new CniError(CniCode.invalidEnv, `CNI_NETNS ${env.netnsPath} does not exist`);
  const pod = conf.agentSocket ? podOf(env) : null;
  const host = hostIfname(env.containerId);

  const undo: (() => Promise<unknown>)[] = [];
  try {
    undo.push(() => ipamDel(conf, env));
    const alloc = await ipamAdd(conf, env);

    undo.push(() => unwirePod({ hostIfname: host }));
    const wired = await wirePod({ podNetns: netns, ifname: env.ifname, hostIfname: host, ip: alloc.ip, gateway: POD_GATEWAY });

    if (conf.agentSocket && pod) {
      const socket = conf.agentSocket;
      // The agent may have stored the endpoint before failing: tell it to forget.
      undo.push(() => deregisterEndpoint(socket, env.containerId));
      await registerEndpoint(socket, {
        containerId: env.containerId,
        namespace: pod.namespace,
        pod: pod.pod,
        ifname: env.ifname,
        hostIfname: host,
        ip: alloc.ip,
        mac: wired.podMac,
        netns: netnsPath,
      });
    }

    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: host, mac: wired.hostMac },
        { name: env.ifname, mac: wired.podMac, sandbox: netnsPath },
      ],
      // "The ips and dns items should be the same output as was returned by the
      // IPAM plugin … except that the plugin should fill in the interface indexes."
      ips: [{ address: alloc.address, ...(alloc.gateway ? { gateway: alloc.gateway } : {}), interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: POD_GATEWAY }],
      dns: alloc.dns && Object.keys(alloc.dns).length > 0 ? alloc.dns : ((conf.dns as CniResult['dns']) ?? {}),
    };
  } catch (err) {
    throw await rollBack(err, undo);
  }
}

/** Runs the undo steps newest first; their own failures are reported, not thrown over the cause. */
async function rollBack(cause: unknown, undo: (() => Promise<unknown>)[]): Promise<unknown> {
  const failures: string[] = [];
  for (const step of undo.reverse()) {
    try {
      await step();
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length === 0) return cause;
  process.stderr.write(`palisade-cni: ADD rollback incomplete: ${failures.join('; ')}\n`);
  const base = cause instanceof CniError ? cause : new CniError(CniCode.internal, (cause as Error).message);
  return new CniError(base.code, base.message, [base.details, `rollback incomplete: ${failures.join('; ')}`].filter(Boolean).join('; '));
}
