/**
 * A pod's attachment to its node: one veth pair, Cilium's layout.
 *
 *   pod netns                              node netns (where this code runs)
 *   eth0  10.244.1.7/32   ◄──── veth ────►  lxc1a2b3c4d5e6f   (up, no address)
 *   169.254.1.1 dev eth0 scope link          10.244.1.7/32 dev lxc1a2b3c4d5e6f
 *   default via 169.254.1.1 dev eth0
 *   neigh 169.254.1.1 lladdr <lxc MAC> permanent
 *
 * The gateway is a link-local address nothing owns: the permanent neighbour
 * entry sends every packet of the pod to the node end's MAC, so the node needs
 * no address on the veth, no proxy ARP, and the pod's /32 means it never ARPs
 * for anything else. Forwarding and policy are the node's (the agent's
 * datapath) business, not this file's.
 *
 * Every function runs `ip` in the current network namespace (the node's; the
 * CNI runtime enters it) and reaches into the pod's with `ip -n <podNetns>`.
 */
import { createHash } from 'node:crypto';
import { run, ipBatch } from '../kernel/index.ts';

/** The node-side veth of a container: `lxc` + 12 hex of sha256(containerId) = 15 chars, the kernel's IFNAMSIZ-1. */
export function hostIfname(containerId: string): string {
  return `lxc${createHash('sha256').update(containerId).digest('hex').slice(0, 12)}`;
}

export const POD_GATEWAY = '169.254.1.1';

export interface PodWiringSpec {
  /** Name of the pod's network namespace under /run/netns. */
  podNetns: string;
  /** The pod-side interface name the runtime asked for (CNI_IFNAME). */
  ifname: string;
  hostIfname: string;
  /** The pod's IPv4 address, without a prefix length (it gets a /32). */
  ip: string;
  /** Link-local next hop the pod routes everything through (POD_GATEWAY). */
  gateway: string;
}

export interface WiredPod {
  hostMac: string;
  podMac: string;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
/** Linux interface names: 1–15 bytes, no '/', ':' or whitespace (and not '.'/'..'). */
const IFNAME_RE = /^(?!\.\.?$)[^/:\s]{1,15}$/;

/**
 * Values end up in `ip -batch` lines, where a space or newline would change
 * the command: check them here rather than trust every caller.
 */
function assertWiringArgs(spec: Partial<PodWiringSpec>): void {
  for (const key of ['ip', 'gateway'] as const) {
    const v = spec[key];
    if (v !== undefined && !IPV4_RE.test(v)) throw new Error(`pod wiring: ${key} ${JSON.stringify(v)} is not an IPv4 address`);
  }
  for (const key of ['ifname', 'hostIfname'] as const) {
    const v = spec[key];
    if (v !== undefined && !IFNAME_RE.test(v)) throw new Error(`pod wiring: ${key} ${JSON.stringify(v)} is not a valid interface name`);
  }
}

interface IpLink {
  ifname: string;
  address?: string;
  flags?: string[];
  operstate?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** `ip -j addr show dev X` (in `netns` if given); null when the device does not exist. */
async function showLink(name: string, netns?: string): Promise<IpLink | null> {
  const args = [...(netns ? ['-n', netns] : []), '-j', 'addr', 'show', 'dev', name];
  const r = await run('ip', args, { allowFailure: true });
  if (r.code !== 0) return null; // "Device "x" does not exist." (or no such netns)
  const links = JSON.parse(r.stdout) as IpLink[];
  return links[0] ?? null;
}

/** Deletes a link, tolerating its absence (DEL and retried ADDs must be idempotent). */
async function deleteLinkIfPresent(name: string, netns?: string): Promise<void> {
  const args = [...(netns ? ['-n', netns] : []), 'link', 'del', 'dev', name];
  const r = await run('ip', args, { allowFailure: true });
  if (r.code !== 0 && !/Cannot find device|does not exist|No such device/i.test(r.stderr)) {
    throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  }
}

/**
 * Creates the veth pair, addresses the pod and routes it. A retried ADD after
 * a half-failed one works: a stale host veth of the same name (and with it
 * its peer in the pod) is deleted first. On failure the pair is removed again.
 */
export async function wirePod(spec: PodWiringSpec): Promise<WiredPod> {
  assertWiringArgs(spec);
  const { podNetns, ifname, hostIfname: host, ip, gateway } = spec;
  await deleteLinkIfPresent(host);
  // Create the peer straight inside the pod: it never exists in the node under the pod's name.
  await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', ifname, 'netns', podNetns]);
  try {
    await ipBatch([`link set dev ${host} up`, `route replace ${ip}/32 dev ${host}`]);
    const hostMac = (await showLink(host))?.address;
    if (!hostMac) throw new Error(`pod wiring: ${host} has no MAC address`);
    await ipBatch(
      [
        `link set dev ${ifname} up`,
        `addr add ${ip}/32 dev ${ifname}`,
        `route add ${gateway} dev ${ifname} scope link`,
        `route add default via ${gateway} dev ${ifname}`,
        `neigh replace ${gateway} lladdr ${hostMac} dev ${ifname} nud permanent`,
      ],
      podNetns,
    );
    const podMac = (await showLink(ifname, podNetns))?.address;
    if (!podMac) throw new Error(`pod wiring: ${ifname} in ${podNetns} has no MAC address`);
    return { hostMac, podMac };
  } catch (err) {
    await deleteLinkIfPresent(host).catch(() => {});
    throw err;
  }
}

export interface PodUnwiringSpec {
  hostIfname: string;
  /** With `ifname`: also remove the pod-side interface if it outlived its peer. */
  podNetns?: string;
  ifname?: string;
}

/**
 * Removes a pod's wiring; absent pieces are fine. Deleting the host veth
 * deletes its peer in the pod, and the kernel drops the /32 route with the
 * device, so there is no route to clean.
 */
export async function unwirePod(spec: PodUnwiringSpec): Promise<void> {
  assertWiringArgs(spec);
  await deleteLinkIfPresent(spec.hostIfname);
  // Like the reference ptp/bridge plugins, DEL also removes CNI_IFNAME in the
  // sandbox by name: normally already gone with its peer, this only catches an
  // interface whose node end vanished some other way.
  if (spec.podNetns && spec.ifname) await deleteLinkIfPresent(spec.ifname, spec.podNetns);
}

export interface PodCheckSpec {
  podNetns: string;
  ifname: string;
  hostIfname: string;
  ip: string;
  gateway?: string;
  /** When given (from a previous result), the MACs must still match. */
  hostMac?: string;
  podMac?: string;
}

/** Compares the wiring with what `wirePod` makes; returns what differs (empty: all as expected). */
export async function checkPod(spec: PodCheckSpec): Promise<string[]> {
  assertWiringArgs(spec);
  const problems: string[] = [];
  const [host, pod, routes] = await Promise.all([
    showLink(spec.hostIfname),
    showLink(spec.ifname, spec.podNetns),
    run('ip', ['-j', 'route', 'show', 'exact', `${spec.ip}/32`], { allowFailure: true }),
  ]);

  if (!host) problems.push(`host veth ${spec.hostIfname} does not exist`);
  else {
    if (!host.flags?.includes('UP')) problems.push(`host veth ${spec.hostIfname} is down`);
    if (spec.hostMac && host.address !== spec.hostMac) problems.push(`host veth ${spec.hostIfname} has MAC ${host.address}, expected ${spec.hostMac}`);
  }

  if (!pod) problems.push(`${spec.ifname} does not exist in ${spec.podNetns}`);
  else {
    if (!pod.flags?.includes('UP')) problems.push(`${spec.ifname} in ${spec.podNetns} is down`);
    if (!pod.addr_info?.some((a) => a.family === 'inet' && a.local === spec.ip)) problems.push(`${spec.ifname} in ${spec.podNetns} does not have ${spec.ip}`);
    if (spec.podMac && pod.address !== spec.podMac) problems.push(`${spec.ifname} in ${spec.podNetns} has MAC ${pod.address}, expected ${spec.podMac}`);
  }

  const routeList = routes.code === 0 ? (JSON.parse(routes.stdout || '[]') as { dst: string; dev?: string }[]) : [];
  if (!routeList.some((r) => r.dev === spec.hostIfname)) problems.push(`no route ${spec.ip}/32 dev ${spec.hostIfname} on the node`);

  if (pod && spec.gateway) {
    const r = await run('ip', ['-n', spec.podNetns, '-j', 'route', 'show', 'default'], { allowFailure: true });
    const defaults = r.code === 0 ? (JSON.parse(r.stdout || '[]') as { gateway?: string; dev?: string }[]) : [];
    if (!defaults.some((d) => d.gateway === spec.gateway && d.dev === spec.ifname)) {
      problems.push(`no default route via ${spec.gateway} dev ${spec.ifname} in ${spec.podNetns}`);
    }
  }
  return problems;
}
