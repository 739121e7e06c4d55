/**
 * eBPF datapath events → flow records (eventAsPacket + flowFromPacket): a drop
 * that is not a policy decision names its reason, the packet's own addresses
 * and ports, and the pod whose interface the packet crossed, even when its
 * source address is another pod's (spoofing); a denial's policy-verdict event
 * does not become an "allowed" record.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DatapathEvent } from '../datapath/index.ts';
import type { KubeObject } from '../k8s/index.ts';
import { PolicyEngine } from '../policy/index.ts';
import { eventAsPacket, flowFromPacket, type FlowContext } from './flow-events.ts';

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

function event(over: Partial<DatapathEvent>): DatapathEvent {
  return {
    type: 'drop',
    time: 0,
    reason: 0,
    direction: 'egress',
    endpointId: 7,
    verdict: 'denied',
    match: 'none',
    protocol: 'UDP',
    source: '10.244.1.3',
    destination: '10.244.1.4',
    sourcePort: 40000,
    destinationPort: 5000,
    sourceIdentity: 0,
    destinationIdentity: 0,
    ifindex: 5,
    length: 43,
    tcpFlags: 0,
    ...over,
  };
}

const record = (e: DatapathEvent) => flowFromPacket(ctx, eventAsPacket(e));

test('a spoofed packet: INVALID_SOURCE_IP, the addresses it carried, the pod that sent it', () => {
  const f = record(event({ reason: 132, reasonName: 'INVALID_SOURCE_IP', endpoint: 'default/other', source: '10.244.2.2' }));
  assert.ok(f);
  assert.equal(f.verdict, 'DROPPED');
  assert.equal(f.drop_reason_desc, 'INVALID_SOURCE_IP');
  assert.equal(f.drop_reason, 132);
  assert.deepEqual(f.IP, { source: '10.244.2.2', destination: '10.244.1.4', ipVersion: 'IPv4' });
  assert.deepEqual(f.l4, { UDP: { source_port: 40000, destination_port: 5000 } });
  assert.equal(f.source?.pod_name, 'other', 'the sender, not the pod whose address it used');
  assert.equal(f.destination?.pod_name, 'victim');
  assert.equal(f.traffic_direction, 'EGRESS');
});

test('a non-policy drop at ingress names the receiving pod; an unknown endpoint falls back to the address', () => {
  const f = record(event({ reason: 175, reasonName: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', direction: 'ingress', endpoint: 'default/victim', source: '10.244.2.2', sourcePort: 0, destinationPort: 0 }));
  assert.equal(f?.drop_reason_desc, 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND');
  assert.equal(f?.drop_reason, 175);
  assert.deepEqual([f?.source?.pod_name, f?.destination?.pod_name], ['trusted', 'victim']);
  const gone = record(event({ reason: 157, reasonName: 'IP_FRAGMENTATION_NOT_SUPPORTED', endpoint: 'default/left' }));
  assert.deepEqual([gone?.drop_reason_desc, gone?.source?.pod_name], ['IP_FRAGMENTATION_NOT_SUPPORTED', 'other']);
});

test("a denial's policy-verdict event makes no record (its drop event does); an allowed one stays FORWARDED", () => {
  const denied = { type: 'policy-verdict', reason: 133, direction: 'ingress', endpoint: 'default/victim', verdict: 'denied' } as const;
  assert.equal(record(event(denied)), undefined);
  assert.equal(record(event({ ...denied, reason: 181, verdict: 'deny-rule' })), undefined);
  const allowed = record(event({ ...denied, reason: 0, verdict: 'allowed', source: '10.244.2.2', match: 'l3-only' }));
  assert.equal(allowed?.verdict, 'FORWARDED');
  assert.deepEqual(allowed?.ingress_allowed_by, [{ name: 'victim-from-trusted', namespace: 'default', kind: 'CiliumNetworkPolicy' }]);
});

test('ICMP records carry the message type the datapath saw', () => {
  const f = record(event({ type: 'drop', reason: 133, protocol: 'ICMP', direction: 'ingress', endpoint: 'default/victim', sourcePort: 17, destinationPort: 17, icmpType: 8 }));
  assert.deepEqual(f?.l4, { ICMPv4: { type: 8, code: 0 } });
  assert.equal(f?.drop_reason_desc, 'POLICY_DENIED');
});
