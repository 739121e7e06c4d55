/**
 * The legacy datapath's decisions as DatapathEvents: what the ruleset logged
 * to NFLOG (log-prefix.ts), read back and typed here, so no layer above
 * sees a prefix.
 *
 *   nft `log group 1 prefix "d:e1a2…:in:denied"` ─► nflog.ts reader ─► NflogPacket
 *     ─► eventFromPacket (prefix parsed, chain id → pod key) ─► DatapathEvent ─► onEvent
 *
 * Losses: sequence gaps are reported to onLost as soon as they are seen; once
 * the reader drains after an overrun it sends one datagram to NFLOG_PROBE,
 * which the ruleset logs as `p`, so the tail of a burst is counted too.
 */
import { createSocket, type Socket } from 'node:dgram';
import { DROP_POLICY_DENIED, DROP_POLICY_DENY, dropReasonCode, dropReasonName, NFLOG_GROUP, NFLOG_PROBE } from '../constants.ts';
import type { DatapathEvent, DatapathEventReader } from '../types.ts';
import { parseLogPrefix } from './log-prefix.ts';
import { openNflog, type NflogPacket } from './nflog.ts';

/** Wall clock in ns, for packets the kernel did not stamp. */
const wallNs = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;

/**
 * One logged packet as an event, or undefined when it is none (the loss
 * probe, a prefix not ours, a payload that is not IPv4). `endpointKey` turns
 * a chain id into the pod's `namespace/name`; `nowNs` is the reader's clock
 * for packets the kernel did not stamp.
 */
export function eventFromPacket(
  p: NflogPacket,
  endpointKey: (chainId: string) => string | undefined = () => undefined,
  nowNs: () => bigint = wallNs,
): DatapathEvent | undefined {
  const ip = p.ip;
  const logged = parseLogPrefix(p.prefix);
  if (!ip || !logged || logged.kind === 'probe') return undefined;
  const ns = p.timestampNs ?? nowNs();
  const tuple: DatapathEvent['tuple'] = {
    protocol: ip.protocol,
    source: ip.src,
    destination: ip.dst,
    sourcePort: ip.protocol === 'ICMP' ? 0 : (ip.srcPort ?? 0),
    destinationPort: ip.protocol === 'ICMP' ? 0 : (ip.dstPort ?? 0),
    ...(ip.protocol === 'ICMP' ? { icmpType: ip.icmpType ?? 0, icmpCode: ip.icmpCode ?? 0 } : {}),
    ...(ip.protocol === 'TCP' && ip.tcpFlags !== undefined ? { tcpFlags: ip.tcpFlags } : {}),
  };
  const common = {
    timestamp: { seconds: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) },
    timeFromKernel: p.timestampNs !== undefined,
    tuple,
    length: ip.length,
    ...(p.indev !== undefined ? { ifindex: p.indev } : p.outdev !== undefined ? { ifindex: p.outdev } : {}),
  };
  if (logged.kind === 'forward') return { type: 'trace', verdict: 'forwarded', reason: 0, ...common };
  // A chain id names the endpoint through the installed ruleset; a source check names the pod itself.
  const endpoint = logged.endpoint.includes('/') ? logged.endpoint : endpointKey(logged.endpoint);
  const who = { direction: logged.direction, ...(endpoint !== undefined ? { endpoint } : {}) };
  if (logged.kind === 'allow') {
    return { type: 'policy-verdict', verdict: 'forwarded', reason: 0, ...who, policy: { decision: 'allowed', match: 'unknown' }, ...common };
  }
  if (logged.kind === 'redirect') {
    return { type: 'policy-verdict', verdict: 'redirected', reason: 0, ...who, policy: { decision: 'redirected', match: 'l7' }, ...common };
  }
  if (logged.reason === 'deny' || logged.reason === 'denied') {
    const deny = logged.reason === 'deny';
    const reason = deny ? DROP_POLICY_DENY : DROP_POLICY_DENIED;
    return {
      type: 'drop',
      verdict: 'dropped',
      reason,
      reasonName: dropReasonName(reason),
      ...who,
      policy: { decision: deny ? 'deny-rule' : 'default-deny', match: 'none' },
      ...common,
    };
  }
  const reason = dropReasonCode(logged.reason) ?? 0;
  return { type: 'drop', verdict: 'dropped', reason, reasonName: reason ? dropReasonName(reason) : 'DROP_REASON_UNKNOWN', ...who, ...common };
}

/** Opens the NFLOG group of the caller's network namespace and hands each decision to onEvent. */
export async function readLegacyEvents(
  endpointKey: (chainId: string) => string | undefined,
  onEvent: (e: DatapathEvent) => void,
  onLost: (events: number) => void,
): Promise<DatapathEventReader> {
  // The probe's socket exists only while a reader does (none is opened at import).
  let probe: Socket | undefined;
  const sendProbe = (): void => {
    if (!probe) {
      probe = createSocket('udp4');
      probe.on('error', () => {});
      probe.unref();
    }
    probe.send(Buffer.alloc(1), NFLOG_PROBE.port, NFLOG_PROBE.ip);
  };
  const reader = await openNflog(
    NFLOG_GROUP,
    (p) => {
      const e = eventFromPacket(p, endpointKey);
      if (e) onEvent(e);
    },
    { onLost, onDrainedAfterOverrun: sendProbe },
  );
  return {
    close: () => {
      void reader.close();
      probe?.close();
      probe = undefined;
    },
  };
}
