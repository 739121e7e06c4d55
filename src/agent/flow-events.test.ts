/**
 * Datapath events → flow records (flowFromEvent): a drop that is not a
 * policy decision names its reason, the packet's own addresses and ports,
 * and the pod whose interface the packet crossed, even when its source
 * address is another pod's (spoofing); a denial's policy-verdict event does
 * not become an "allowed" record; the record's time is the event's. And every
 * drop reason bpf/palisade.h emits reaches `palisade observe` by its name.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeEbpfEvent, legacyEventFromPacket, type DatapathEvent, type NflogPacket } from '../datapath/index.ts';
import { DROP_REASONS, envelope, makePrinter } from '../flows/index.ts';
import type { KubeObject } from '../k8s/index.ts';
import { PolicyEngine } from '../policy/index.ts';
import { flowFromEvent, type FlowContext } from './flow-events.ts';

const pod = (name: string, ip: string, node: string): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels: { app: name } }, spec: { nodeName: node, containers: [{ name: 'c' }] }, status: { podIP: ip } }) as KubeObject;

const engine = new PolicyEngine();
engine.upsert({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', labels: {} } } as KubeObject);
engine.upsert(pod('victim', '10.244.1.4', 'node-1'));
engine.upsert(pod('trusted', '10.244.2.2', 'node-2'));
engine.upsert(pod('other', '10.244.1.3', 'node-1'));
engine.upsert({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'victim-from-trusted', namespace: 'default' },
  spec: { endpointSelector: { matchLabels: { app: 'victim' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'trusted' } }] }] },
} as KubeObject);
const snapshot = engine.snapshot();
const ctx: FlowContext = { node: 'node-1', snapshot: () => snapshot, fqdns: () => [], ownAddresses: () => ['172.31.0.11'], peerAddresses: () => ['172.31.0.12'] };

type EventOverrides = Partial<Omit<DatapathEvent, 'tuple'>> & { tuple?: Partial<DatapathEvent['tuple']> };

function event(over: EventOverrides): DatapathEvent {
  const { tuple, ...rest } = over;
  return {
    type: 'drop',
    verdict: 'dropped',
    reason: 0,
    timestamp: { seconds: 1_796_000_000, nanos: 123_456_789 },
    timeFromKernel: true,
    direction: 'egress',
    sourceIdentity: 0,
    destinationIdentity: 0,
    length: 43,
    ifindex: 5,
    ...rest,
    tuple: { protocol: 'UDP', source: '10.244.1.3', destination: '10.244.1.4', sourcePort: 40000, destinationPort: 5000, ...tuple },
  };
}

const record = (e: DatapathEvent) => flowFromEvent(ctx, e);

test('a spoofed packet: INVALID_SOURCE_IP, the addresses it carried, the pod that sent it, the kernel\'s time', () => {
  const f = record(event({ reason: 132, reasonName: 'INVALID_SOURCE_IP', endpoint: 'default/other', tuple: { source: '10.244.2.2' } }));
  assert.ok(f);
  assert.equal(f.verdict, 'DROPPED');
  assert.equal(f.drop_reason_desc, 'INVALID_SOURCE_IP');
  assert.equal(f.drop_reason, 132);
  assert.equal(f.time, '2026-11-30T00:53:20.123456789Z');
  assert.deepEqual(f.IP, { source: '10.244.2.2', destination: '10.244.1.4', ipVersion: 'IPv4' });
  assert.deepEqual(f.l4, { UDP: { source_port: 40000, destination_port: 5000 } });
  assert.equal(f.source?.pod_name, 'other', 'the sender, not the pod whose address it used');
  assert.equal(f.destination?.pod_name, 'victim');
  assert.equal(f.traffic_direction, 'EGRESS');
});

test('a non-policy drop at ingress names the receiving pod; an unknown endpoint falls back to the address', () => {
  const f = record(event({ reason: 175, reasonName: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', direction: 'ingress', endpoint: 'default/victim', tuple: { source: '10.244.2.2', sourcePort: 0, destinationPort: 0 } }));
  assert.equal(f?.drop_reason_desc, 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND');
  assert.equal(f?.drop_reason, 175);
  assert.deepEqual([f?.source?.pod_name, f?.destination?.pod_name], ['trusted', 'victim']);
  const gone = record(event({ reason: 157, reasonName: 'IP_FRAGMENTATION_NOT_SUPPORTED', endpoint: 'default/left' }));
  assert.deepEqual([gone?.drop_reason_desc, gone?.source?.pod_name], ['IP_FRAGMENTATION_NOT_SUPPORTED', 'other']);
});

test("a denial's policy-verdict event makes no record (its drop event does); an allowed one stays FORWARDED", () => {
  const denied = { type: 'policy-verdict', verdict: 'dropped', reason: 133, direction: 'ingress', endpoint: 'default/victim', policy: { decision: 'default-deny', match: 'none' } } as const;
  assert.equal(record(event(denied)), undefined);
  assert.equal(record(event({ ...denied, reason: 181, policy: { decision: 'deny-rule', match: 'none' } })), undefined);
  const allowed = record(event({ ...denied, verdict: 'forwarded', reason: 0, policy: { decision: 'allowed', match: 'l3-only' }, tuple: { source: '10.244.2.2' } }));
  assert.equal(allowed?.verdict, 'FORWARDED');
  assert.deepEqual(allowed?.ingress_allowed_by, [{ name: 'victim-from-trusted', namespace: 'default', kind: 'CiliumNetworkPolicy' }]);
});

test('ICMP records carry the message type the datapath saw; TCP records its flags', () => {
  const f = record(event({ reason: 133, reasonName: 'POLICY_DENIED', policy: { decision: 'default-deny', match: 'none' }, direction: 'ingress', endpoint: 'default/victim', tuple: { protocol: 'ICMP', sourcePort: 0, destinationPort: 0, icmpType: 8 } }));
  assert.deepEqual(f?.l4, { ICMPv4: { type: 8, code: 0 } });
  assert.equal(f?.drop_reason_desc, 'POLICY_DENIED');
  assert.deepEqual(f?.ingress_denied_by, [{ name: 'victim-from-trusted', namespace: 'default', kind: 'CiliumNetworkPolicy' }]);
  const syn = record(event({ type: 'policy-verdict', verdict: 'forwarded', policy: { decision: 'allowed', match: 'unknown' }, tuple: { protocol: 'TCP', tcpFlags: 0x12 } }));
  assert.deepEqual(syn?.l4, { TCP: { source_port: 40000, destination_port: 5000, flags: { FIN: false, SYN: true, RST: false, PSH: false, ACK: true, URG: false, ECE: false, CWR: false } } });
});

test('a legacy NFLOG drop becomes the same typed event: the prefix is read by the legacy datapath, not here', () => {
  const p = {
    group: 1,
    prefix: 'd:default/other:eg:INVALID_SOURCE_IP',
    mark: 0,
    family: 2,
    timestampNs: 1_796_000_000_123_456_789n,
    payloadLength: 28,
    ip: { src: '10.244.2.2', dst: '10.244.1.4', protocol: 'UDP', length: 28, ttl: 64, srcPort: 40000, dstPort: 5000 },
  } satisfies NflogPacket;
  const e = legacyEventFromPacket(p);
  assert.deepEqual(e, {
    type: 'drop',
    verdict: 'dropped',
    reason: 132,
    reasonName: 'INVALID_SOURCE_IP',
    direction: 'egress',
    endpoint: 'default/other',
    timestamp: { seconds: 1_796_000_000, nanos: 123_456_789 },
    timeFromKernel: true,
    tuple: { protocol: 'UDP', source: '10.244.2.2', destination: '10.244.1.4', sourcePort: 40000, destinationPort: 5000 },
    length: 28,
  });
  assert.equal(record(e!)?.source?.pod_name, 'other');
  assert.equal(legacyEventFromPacket({ ...p, prefix: 'p' }), undefined, 'the loss probe is no event');
  const steered = legacyEventFromPacket({ ...p, prefix: 'r:e0123456789ab:eg' }, () => 'default/other');
  assert.deepEqual([steered?.type, steered?.verdict, steered?.policy?.decision, steered?.endpoint], ['policy-verdict', 'redirected', 'redirected', 'default/other']);
  assert.equal(record(steered!)?.verdict, 'REDIRECTED');
  const unstamped = legacyEventFromPacket({ ...p, timestampNs: undefined, prefix: 'd:e0123456789ab:in:denied' }, () => 'default/victim', () => 5_000_000_001n);
  assert.deepEqual([unstamped?.timeFromKernel, unstamped?.timestamp, unstamped?.endpoint, unstamped?.reasonName, unstamped?.policy?.decision], [false, { seconds: 5, nanos: 1 }, 'default/victim', 'POLICY_DENIED', 'default-deny']);
});

/**
 * Every DROP_* of bpf/palisade.h, end to end from the kernel boundary up.
 * Most of these reasons cannot be caused by real packets on demand (a
 * checksum rewrite failing, the CT map full, libbpf refusing a socket), so
 * the kernel boundary is faked: a struct pl_event record is written byte by
 * byte as the program's emit() would, then decoded by the eBPF datapath's own
 * decoder, turned into a record by the flow layer and printed by the printer
 * `palisade observe` uses. (hostile-packets and flows e2e tests cause the
 * ones real packets can: source check, policy, fragments.)
 */
const header = readFileSync(new URL('../../bpf/palisade.h', import.meta.url), 'utf8');
const dropDefines = [...header.matchAll(/^#define (DROP_\w+)\s+(\d+)/gm)].map(([, macro, code]) => ({ macro: macro!, code: Number(code) }));

function plEvent(reason: number): DataView {
  const v = new DataView(new ArrayBuffer(48));
  v.setBigUint64(0, 1_000_000_000n, true); // ts: bpf_ktime_get_ns
  v.setUint8(8, 1); // EVENT_DROP
  v.setUint8(9, reason);
  v.setUint8(10, 1); // ingress
  v.setUint8(15, reason === 181 ? 3 : 2); // as drop() stamps it: VERDICT_DENY_RULE, else VERDICT_DENIED
  v.setUint8(11, 17); // UDP
  v.setUint16(12, 3, true); // ep_id
  v.setUint32(16, 9, true); // ifindex
  [10, 244, 2, 2].forEach((b, i) => v.setUint8(28 + i, b));
  [10, 244, 1, 4].forEach((b, i) => v.setUint8(32 + i, b));
  v.setUint16(36, 40000, false);
  v.setUint16(38, 5000, false);
  v.setUint32(40, 28, true);
  return v;
}

test('a drop of each reason the BPF program emits shows in `palisade observe` output with its name', () => {
  assert.ok(dropDefines.length >= 15, 'palisade.h parsed');
  for (const { macro, code } of dropDefines) {
    const e = decodeEbpfEvent(plEvent(code), (id) => (id === 3 ? 'default/victim' : undefined));
    assert.ok(e, macro);
    assert.equal(e.reason, code);
    assert.equal(e.policy !== undefined, code === 133 || code === 181, `${macro}: only policy's reasons carry a policy decision`);
    const f = record(e);
    assert.ok(f, macro);
    // A drop that is not policy's names the pod whose interface it crossed (here the receiver).
    if (code !== 133 && code !== 181) assert.equal(f.destination?.pod_name, 'victim', macro);
    let json = '';
    let compact = '';
    const jsonOut = makePrinter('json', (t) => (json += t));
    const compactOut = makePrinter('compact', (t) => (compact += t));
    jsonOut.write(envelope(f));
    compactOut.write(envelope(f));
    const printed = JSON.parse(json) as { flow: { drop_reason_desc?: string; verdict?: string } };
    assert.equal(printed.flow.verdict, 'DROPPED', macro);
    assert.ok(printed.flow.drop_reason_desc && printed.flow.drop_reason_desc !== 'DROP_REASON_UNKNOWN', `${macro} (${code}) printed as ${printed.flow.drop_reason_desc}`);
    assert.equal(printed.flow.drop_reason_desc, e.reasonName, macro);
    assert.match(compact, /DROPPED/, macro);
    assert.ok(compact.includes(DROP_REASONS[e.reasonName!][1]), `${macro}: ${compact}`);
    assert.doesNotMatch(compact, /Unknown drop reason/, `${macro}: ${compact}`);
  }
});
