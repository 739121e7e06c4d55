/**
 * For the privileged tests: scratch network namespaces named `pl-cn<rand>-…`
 * (removed by `cleanup()`), running bin/palisade-cni for real, and a
 * reachability probe. The probe is a UDP echo in Node rather than ping, which
 * the machines here do not have.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/kernel/exec.ts';
import { createNetns, deleteNetns } from '../../src/kernel/netns.ts';
import type { EndpointRegistration } from '../../src/cni/index.ts';

export const CNI_BIN = fileURLToPath(new URL('../../bin/palisade-cni', import.meta.url));

export class Scratch {
  readonly prefix = `pl-cn${randomBytes(3).toString('hex')}-`;
  readonly #created: string[] = [];

  async netns(suffix: string): Promise<string> {
    const name = this.prefix + suffix;
    this.#created.push(name); // before creating: a half-made one is removed too
    await createNetns(name);
    return name;
  }

  async cleanup(): Promise<void> {
    for (const name of this.#created.reverse()) await deleteNetns(name);
  }
}

export interface CniCall {
  containerId: string;
  /** Pod namespace name (under /run/netns); null: CNI_NETNS unset. */
  netns: string | null;
  pod?: string;
  ifname?: string;
  cniArgs?: string;
}

export interface CniOutcome {
  code: number | null;
  /** stdout parsed as JSON, undefined when empty. */
  out: any;
  stderr: string;
}

/** Runs the plugin as the lab runtime does: `ip netns exec <node> bin/palisade-cni`, env + stdin. */
export async function runCni(nodeNetns: string, command: string, conf: unknown, call: CniCall): Promise<CniOutcome> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    CNI_COMMAND: command,
    CNI_CONTAINERID: call.containerId,
    CNI_IFNAME: call.ifname ?? 'eth0',
    CNI_ARGS: call.cniArgs ?? `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${call.pod ?? 'p'}`,
    CNI_PATH: '/usr/lib/cni',
    ...(call.netns ? { CNI_NETNS: `/run/netns/${call.netns}` } : {}),
  };
  const input = typeof conf === 'string' ? conf : JSON.stringify(conf);
  const r = await run('ip', ['netns', 'exec', nodeNetns, CNI_BIN], { input, env, allowFailure: true });
  return { code: r.code, out: r.stdout.trim() ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}

const ECHO_SERVER = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address, () => process.exit(0)));
s.bind(0, process.argv[1], () => console.log(s.address().port));
setTimeout(() => process.exit(2), 5000);`;

const ECHO_CLIENT = `
const [ip, port] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
s.on('message', () => process.exit(0));
const send = () => s.send('probe', Number(port), ip);
send(); setInterval(send, 200);
setTimeout(() => process.exit(1), 2000);`;

/** Whether a UDP datagram from `fromNetns` reaches `ip` (bound in `toNetns`) and the answer comes back. */
export async function reaches(fromNetns: string, toNetns: string, ip: string): Promise<boolean> {
  const server = spawn('ip', ['netns', 'exec', toNetns, process.execPath, '-e', ECHO_SERVER, ip], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    // The server prints its port once bound; it exits instead if it cannot bind (no such address).
    const first = await Promise.race([once(server.stdout.setEncoding('utf8'), 'data'), once(server, 'exit').then(() => null)]);
    if (!first) return false;
    const line = String(first[0]);
    const r = await run('ip', ['netns', 'exec', fromNetns, process.execPath, '-e', ECHO_CLIENT, ip, line.trim()], { allowFailure: true });
    return r.code === 0;
  } finally {
    if (server.exitCode === null) server.kill();
  }
}

/** A registration as the CNI plugin sends it for pod default/web (no kernel object behind it). */
export const WEB_REGISTRATION: EndpointRegistration = {
  containerId: 'c1',
  namespace: 'default',
  pod: 'web',
  ifname: 'eth0',
  hostIfname: 'lxc0123456789ab',
  ip: '10.244.1.7',
  mac: '02:00:00:00:00:01',
  netns: '/run/netns/pl-lab-pod-default-web',
};
