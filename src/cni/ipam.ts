/**
 * Address management is delegated to an IPAM plugin (host-local in the lab),
 * as the CNI spec's "Delegated plugins protocol" describes:
 *
 *   1. "Look up the plugin binary by searching the directories provided in
 *      CNI_PATH environment variable."
 *   2. "Execute that plugin with the same environment and configuration that
 *      it received." (only CNI_COMMAND differs when we roll back an ADD)
 *   3. "Ensure that the delegated plugin's stderr is output to the calling
 *      plugin's stderr."
 *   4. "If a plugin is executed with CNI_COMMAND=CHECK or DEL, it must also
 *      execute any delegated plugins. If any of the delegated plugins return
 *      error, error should be returned by the upper plugin."
 *   5. "If, on ADD, a delegated plugin fails, the 'upper' plugin should execute
 *      again with DEL before returning failure." (add.ts does the rollback)
 */
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../kernel/index.ts';
import { CniCode, CniError } from './errors.ts';
import type { CniEnv, NetConf } from './config.ts';
import type { CniDns } from './types.ts';

export interface IpamAllocation {
  /** As the IPAM plugin returned it: address with prefix, e.g. "10.244.1.7/24". */
  address: string;
  gateway: string | undefined;
  /** The address alone, what the pod gets as a /32. */
  ip: string;
  dns: CniDns | undefined;
}

export function findPlugin(type: string, dirs: readonly string[]): string {
  for (const dir of dirs) {
    const file = join(dir, type);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(CniCode.internal, `IPAM plugin ${JSON.stringify(type)} not found in CNI_PATH (${dirs.join(':')})`, 'host-local comes with the containernetworking-plugins package (scripts/setup.sh installs it)');
}

/**
 * CNI_ARGS keys a plugin does not know make the reference plugins fail
 * ("ARGS: unknown args …") unless the runtime adds IgnoreUnknown=1, as
 * kubelet and containerd always do. We add it when missing so a runtime that
 * passes only K8S_POD_* still gets its addresses.
 */
function delegatedArgs(cniArgs: string | undefined): string {
  if (!cniArgs) return '';
  return /(^|;)IgnoreUnknown=/i.test(cniArgs) ? cniArgs : `IgnoreUnknown=1;${cniArgs}`;
}

async function execIpam(command: 'ADD' | 'DEL' | 'CHECK', conf: NetConf, env: CniEnv): Promise<string> {
  const file = findPlugin(conf.ipam.type, env.path);
  const childEnv: NodeJS.ProcessEnv = { ...process.env, CNI_COMMAND: command, CNI_ARGS: delegatedArgs(process.env['CNI_ARGS']) };
  let r;
  try {
    r = await run(file, [], { input: conf.raw, env: childEnv, allowFailure: true });
  } catch (err) {
    throw new CniError(CniCode.internal, `IPAM plugin ${conf.ipam.type} could not be started`, (err as Error).message);
  }
  if (r.stderr) process.stderr.write(r.stderr);
  if (r.code === 0) return r.stdout;
  // A failing plugin prints the CNI error JSON on stdout; pass its code on.
  let code: number = CniCode.internal;
  let msg = r.stdout.trim() || `exit code ${r.code}`;
  let details: string | undefined;
  try {
    const body = JSON.parse(r.stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof body.code === 'number') code = body.code;
    if (typeof body.msg === 'string') msg = body.msg;
    if (typeof body.details === 'string') details = body.details;
  } catch {
    // not JSON: keep the raw text
  }
  throw new CniError(code, `IPAM plugin ${conf.ipam.type} ${command} failed: ${msg}`, details);
}

export async function ipamAdd(conf: NetConf, env: CniEnv): Promise<IpamAllocation> {
  const out = await execIpam('ADD', conf, env);
  let result: { ips?: { address?: unknown; gateway?: unknown }[]; dns?: CniDns };
  try {
    result = JSON.parse(out) as typeof result;
  } catch (err) {
    throw new CniError(CniCode.decodingFailure, `IPAM plugin ${conf.ipam.type} returned a result that is not JSON`, (err as Error).message);
  }
  // One IPv4 address per pod (the datapath is IPv4-only). Any others stay
  // reserved until DEL, which releases everything of this container.
  const v4 = (result.ips ?? []).find((ip) => typeof ip.address === 'string' && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(ip.address));
  if (!v4) throw new CniError(CniCode.internal, `IPAM plugin ${conf.ipam.type} returned no IPv4 address`, out.trim());
  const address = v4.address as string;
  return {
    address,
    gateway: typeof v4.gateway === 'string' ? v4.gateway : undefined,
    ip: address.slice(0, address.indexOf('/')),
    dns: result.dns,
  };
}

/** Releases this container's addresses; IPAM plugins treat an unknown container as done. */
export async function ipamDel(conf: NetConf, env: CniEnv): Promise<void> {
  await execIpam('DEL', conf, env);
}

export async function ipamCheck(conf: NetConf, env: CniEnv): Promise<void> {
  await execIpam('CHECK', conf, env);
}
