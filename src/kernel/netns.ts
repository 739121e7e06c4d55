/** Named network namespaces (`ip netns`), as the lab uses them for nodes, pods and the fabric. */
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { run } from './exec.ts';

export const NETNS_DIR = '/run/netns';

export function netnsExists(name: string): boolean {
  return existsSync(`${NETNS_DIR}/${name}`);
}

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

export function listNetns(prefix: string): string[] {
  if (!existsSync(NETNS_DIR)) return [];
  return readdirSync(NETNS_DIR).filter((n) => n.startsWith(prefix)).sort();
}

export async function createNetns(name: string): Promise<void> {
  if (netnsExists(name)) return;
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export async function deleteNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  await run('ip', ['netns', 'delete', name], { allowFailure: true });
}

/** Pids of the processes whose network namespace is `name`. */
export async function netnsPids(name: string): Promise<number[]> {
  if (!netnsExists(name)) return [];
  const r = await run('ip', ['netns', 'pids', name], { allowFailure: true });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** The netns inode a process lives in, to tell namespaces apart without trusting names. */
export function processNetns(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

/** Writes a namespaced sysctl inside a lab namespace (never the root namespace). */
export async function sysctlIn(netns: string, key: string, value: string): Promise<void> {
  await run('sysctl', ['-q', '-w', `${key}=${value}`], { netns });
}
