/**
 * CHECK: is the pod still wired as the previous ADD left it?
 *
 * CNI spec: "The plugin must consult the `prevResult` to determine the
 * expected interfaces and addresses", "should return an error if a resource
 * included in the CNI Result type (interface, address or route) was created
 * by the plugin, and is listed in `prevResult`, but is missing or in an
 * invalid state", and for delegation: "If a plugin is executed
 * with CNI_COMMAND=CHECK or DEL, it must also execute any delegated plugins."
 * Success is exit 0 with nothing on stdout.
 */
import { checkPod, hostIfname, POD_GATEWAY } from './pod-wiring.ts';
import { CniCode, CniError } from './errors.ts';
import { ipamCheck } from './ipam.ts';
import { versionHasCheck, type CniInterface, type CniIpConfig } from './types.ts';
import type { CniEnv, NetConf } from './config.ts';

interface Expected {
  ip: string;
  podMac: string | undefined;
  hostMac: string | undefined;
}

/** `problem` starts with the sub-field (".ips …") or with a sentence ("is required …"). */
function prevError(problem: string): CniError {
  return new CniError(CniCode.invalidConfig, `network config: prevResult${problem.startsWith('.') ? '' : ' '}${problem}`);
}

/** The pod interface, its address and the host veth, as the previous ADD reported them. */
export function expectedFromPrevResult(prev: unknown, env: CniEnv): Expected {
  if (typeof prev !== 'object' || prev === null) throw prevError('is required for CHECK (the result of the previous ADD)');
  const { interfaces, ips } = prev as { interfaces?: CniInterface[]; ips?: CniIpConfig[] };
  if (!Array.isArray(interfaces)) throw prevError('.interfaces is missing');
  if (!Array.isArray(ips)) throw prevError('.ips is missing');
  const podIndex = interfaces.findIndex((i) => i?.name === env.ifname && i.sandbox === env.netnsPath);
  if (podIndex < 0) throw prevError(`.interfaces has no ${JSON.stringify(env.ifname)} with sandbox ${JSON.stringify(env.netnsPath)}`);
  const ipConf = ips.find((ip) => ip?.interface === podIndex && typeof ip.address === 'string' && ip.address.includes('.'));
  if (!ipConf) throw prevError(`.ips has no IPv4 address for interface ${podIndex}`);
  const host = interfaces.find((i) => i?.name === hostIfname(env.containerId) && !i.sandbox);
  return { ip: ipConf.address.split('/')[0] ?? '', podMac: interfaces[podIndex]?.mac, hostMac: host?.mac };
}

export async function cmdCheck(conf: NetConf, env: CniEnv): Promise<void> {
  if (!versionHasCheck(conf.cniVersion)) {
    throw new CniError(CniCode.incompatibleVersion, `CHECK needs cniVersion 0.4.0 or later; the network config has ${conf.cniVersion}`);
  }
  const expected = expectedFromPrevResult(conf.prevResult, env);
  await ipamCheck(conf, env);
  const problems = await checkPod({
    podNetns: env.netnsName ?? '',
    ifname: env.ifname,
    hostIfname: hostIfname(env.containerId),
    ip: expected.ip,
    gateway: POD_GATEWAY,
    ...(expected.podMac ? { podMac: expected.podMac } : {}),
    ...(expected.hostMac ? { hostMac: expected.hostMac } : {}),
  });
  if (problems.length > 0) {
    throw new CniError(CniCode.internal, `container ${env.containerId}: networking is not as the last ADD left it`, problems.join('; '));
  }
}
