/**
 * The NFLOG prefixes the legacy ruleset logs decisions with, written and read
 * here only: rules are rendered with these fragments, and events.ts parses
 * what the kernel hands back. No other layer sees a prefix.
 *
 *   d:<ep>:<in|eg>:deny      a drop by a deny entry (POLICY_DENY)
 *   d:<ep>:<in|eg>:denied    a drop for want of an allow entry (POLICY_DENIED)
 *   d:<ep>:<in|eg>:<REASON>  a drop that is not policy's, by Hubble name (INVALID_SOURCE_IP)
 *   a:<ep>:<in|eg>           an allowed new connection (a policy verdict)
 *   r:<ep>:<in|eg>           a new connection steered to the node's L7 proxy (a policy verdict)
 *   f                        a forwarded new connection (a trace)
 *   p                        the loss probe (never an event)
 *
 * `<ep>` is the endpoint's chain id (`e` + 12 hex digits) or, for a source
 * check drop, the sending pod's key `namespace/name`.
 */
import { NFLOG_GROUP } from '../constants.ts';

export type NftDirection = 'ingress' | 'egress';

const dirTag = (dir: NftDirection): string => (dir === 'ingress' ? 'in' : 'eg');

/** `reason`: deny or denied (policy), else the Hubble name of one of Cilium's drop reasons (e.g. INVALID_SOURCE_IP). */
export const logDrop = (ep: string, dir: NftDirection, reason: string): string => `log group ${NFLOG_GROUP} prefix "d:${ep}:${dirTag(dir)}:${reason}" `;
export const logAllow = (ep: string, dir: NftDirection): string => `log group ${NFLOG_GROUP} prefix "a:${ep}:${dirTag(dir)}" `;
export const logRedirect = (ep: string, dir: NftDirection): string => `log group ${NFLOG_GROUP} prefix "r:${ep}:${dirTag(dir)}"`;
export const logForwarded = `log group ${NFLOG_GROUP} prefix "f"`;
export const logProbe = `log group ${NFLOG_GROUP} prefix "p"`;

export type LoggedDecision =
  | { kind: 'drop'; endpoint: string; direction: NftDirection; reason: string }
  | { kind: 'allow'; endpoint: string; direction: NftDirection }
  | { kind: 'redirect'; endpoint: string; direction: NftDirection }
  | { kind: 'forward' }
  | { kind: 'probe' };

/** A prefix this ruleset wrote, read back; undefined for anything else. */
export function parseLogPrefix(prefix: string): LoggedDecision | undefined {
  if (prefix === 'f') return { kind: 'forward' };
  if (prefix === 'p') return { kind: 'probe' };
  const [kind, endpoint, dir, reason, extra] = prefix.split(':');
  if (!endpoint || (dir !== 'in' && dir !== 'eg') || extra !== undefined) return undefined;
  const direction = dir === 'in' ? 'ingress' : 'egress';
  if (kind === 'd' && reason) return { kind: 'drop', endpoint, direction, reason };
  if (kind === 'a' && reason === undefined) return { kind: 'allow', endpoint, direction };
  if (kind === 'r' && reason === undefined) return { kind: 'redirect', endpoint, direction };
  return undefined;
}
