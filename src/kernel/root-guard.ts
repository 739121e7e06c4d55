/**
 * Palisade never programs the machine's root network namespace: lab
 * datapaths live in node namespaces. This guard turns a mistake (an agent or
 * test started outside its namespace) into an error instead of changed host
 * networking.
 */
import { readlinkSync } from 'node:fs';

export function assertNotRootNetns(what: string): void {
  if (process.env['PALISADE_ALLOW_ROOT_NETNS'] === '1') return; // a real Kubernetes node, set by the DaemonSet
  let self: string;
  let init: string;
  try {
    self = readlinkSync('/proc/self/ns/net');
    init = readlinkSync('/proc/1/ns/net');
  } catch {
    return; // cannot tell (no /proc access): nothing to compare
  }
  if (self === init) {
    throw new Error(`${what}: refusing to change the root network namespace (run inside a lab node namespace)`);
  }
}
