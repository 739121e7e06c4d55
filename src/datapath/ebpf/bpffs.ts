/**
 * Where the datapath pins its maps and programs: a directory on the BPF
 * filesystem, so forwarding and policy outlive the agent and the next agent
 * re-adopts them.
 *
 *   <pinDir>/maps/<map>    every map of bpf/palisade.bpf.c
 *   <pinDir>/progs/<prog>  the programs last loaded (tc holds its own reference)
 *
 * Caveat: `ip netns exec` mounts a fresh sysfs over /sys in a private mount
 * namespace, which hides a bpffs mounted at /sys/fs/bpf. An agent started
 * that way must be handed the bpffs another way: started with
 * `nsenter --net=/run/netns/<node>` instead (no mount namespace of its own),
 * or given an open fd of the host's bpffs directory and a pinDir under
 * `/proc/self/fd/<fd>/…` (what the tests do).
 */
import { mkdirSync, rmSync, statfsSync } from 'node:fs';

export const BPF_FS_MAGIC = 0xcafe4a11;

export function isBpffs(path: string): boolean {
  try {
    return Number(statfsSync(path).type) === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** Creates `<pinDir>/maps` and `<pinDir>/progs`; throws unless they are on bpffs. */
export function preparePinDir(pinDir: string): void {
  mkdirSync(`${pinDir}/maps`, { recursive: true });
  mkdirSync(`${pinDir}/progs`, { recursive: true });
  if (!isBpffs(`${pinDir}/maps`)) {
    // mkdir went onto an ordinary filesystem: take it back, it would only mislead.
    rmSync(pinDir, { recursive: true, force: true });
    throw new Error(
      `${pinDir} is not on a BPF filesystem: mount it (mount -t bpf bpf /sys/fs/bpf) and, when the agent ` +
        'runs under `ip netns exec` (which remounts /sys), start it with `nsenter --net=/run/netns/<node>` or pass it the bpffs as a file descriptor',
    );
  }
}

/** Unpins everything under pinDir (objects still attached to tc stay until their device goes). */
export function removePinDir(pinDir: string): void {
  rmSync(pinDir, { recursive: true, force: true });
}
