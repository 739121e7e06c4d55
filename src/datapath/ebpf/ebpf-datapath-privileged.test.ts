/**
 * Privileged: what only the eBPF datapath does, against the real kernel, with
 * real traffic. The contract both datapaths keep (connectivity, policy, CIDR,
 * ClusterIPs, L7 steering, fail-closed, anti-spoofing, counters, events,
 * restart) is test/datapath/conformance.test.ts; this file is about tc
 * programs, pins, packet counters and the eBPF handling of fragments.
 *
 * A two-node mini cluster of its own (test/kit/datapath-topology.ts:
 * namespaces `pl-h2<random>-…`, pins under /sys/fs/bpf/palisade/h2<random>/,
 * all removed in `after`). Needs root and fails, never skips, without it.
 * The cases run in order on one topology:
 *   1. routing: pod → pod on a node and across nodes, none through FORWARD;
 *      programs on every veth and the underlay, FORWARDED counters
 *   2. an endpoint that leaves and comes back starts its counters from zero
 *   3. hand-written spoofed packets and lone fragments: the reason, the
 *      packet's addresses and the sender's identity
 *   4. IP fragments: allowed ones pass (same node, across nodes, through a
 *      ClusterIP both ways), denied ones drop, a fragment without its first
 *      drops with its own reason
 *   5. the datapath process is killed: a new one re-adopts the pins (nothing
 *      to write), replaces the programs on every hook (tcx or clsact), and
 *      removes a clsact filter an older agent left
 *   6. L7 DNS: a fragmented query cannot be steered (dropped by name); with
 *      no listener, SOCKET_LOOKUP_FAILED is counted
 *   7. bulk traffic stays off the FORWARD hook (what that saves: bench/datapath)
 */
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { run } from '../../kernel/index.ts';
import type { ApplyResult, DatapathEvent } from '../types.ts';
import type { EbpfStatus, PacketCounter } from './ebpf-datapath.ts';
import { DatapathTestLab, type NodeAgent, requireRoot } from '../../../test/kit/datapath-topology.ts';
import type { ProxySeen, World } from '../../../test/kit/datapath-node-agent.ts';

requireRoot();

const lab = new DatapathTestLab('ebpf', { idPrefix: 'h2' });
let agents: Map<string, NodeAgent>;
const A = lab.pod('a').ip;
const B = lab.pod('b').ip;
const C = lab.pod('c').ip;
const VIP = '10.96.0.10';
const DNS_VIP = '10.96.0.53';
const HTTP_PROXY = 15001;
const DNS_PROXY = 15053;

const agent = (node: string): NodeAgent => agents.get(node)!;

/** tcx came with Linux 6.6. */
function kernelHasTcx(): boolean {
  const [major = 0, minor = 0] = release().split('.').map(Number);
  return major > 6 || (major === 6 && minor >= 6);
}

/** Policy and services every node applies (each agent renders its own endpoints). */
let policies: object[] = [];
let services: World['services'] = [];
/** Proxies every node applies. */
let extra: Pick<World, 'httpProxyPort' | 'dnsProxyPort' | 'learned'> = {};

async function applyAll(): Promise<ApplyResult[]> {
  return Promise.all(lab.nodes.map((n) => agent(n.name).call<ApplyResult>('apply', { world: lab.world(n.name, policies, services, extra) })));
}

async function seenBy(node: string): Promise<ProxySeen[]> {
  return agent(node).call<ProxySeen[]>('proxy-seen');
}

async function eventsOf(node: string, waitMs = 300): Promise<DatapathEvent[]> {
  await new Promise((r) => setTimeout(r, waitMs));
  const { events, lost } = await agent(node).call<{ events: DatapathEvent[]; lost: number }>('events');
  assert.equal(lost, 0, `${node} lost events`);
  return events;
}

/** Counts pod→pod packets at the FORWARD hook of every node: eBPF routing must leave them at 0. */
async function forwardProbe(node: string): Promise<number> {
  const r = await run('nft', ['-j', 'list', 'counter', 'inet', 'pl_probe', 'pod2pod'], { netns: lab.node(node).netns });
  const doc = JSON.parse(r.stdout) as { nftables: { counter?: { packets: number } }[] };
  return doc.nftables.find((x) => x.counter)?.counter?.packets ?? -1;
}

const cnp = (name: string, spec: object): object => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, namespace: 'default' },
  spec,
});

/** b admits a alone, on TCP 8080 and UDP 5353. */
const webFromA = cnp('web-from-a', {
  endpointSelector: { matchLabels: { app: 'web' } },
  ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }, { port: '5353', protocol: 'UDP' }] }] }],
});

describe('eBPF datapath: what only it does (privileged)', { concurrency: false }, () => {
  before(async () => {
    agents = await lab.create();
    await Promise.all([lab.startServer('b', [8080]), lab.startServer('c', [8080])]);
    for (const n of lab.nodes) {
      await run('nft', ['-f', '-'], {
        netns: n.netns,
        input: 'table inet pl_probe {\n counter pod2pod { }\n chain forward {\n  type filter hook forward priority -400; policy accept;\n  ip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 counter name pod2pod\n }\n}\n',
      });
    }
  });

  after(async () => {
    await lab.destroy();
  });

  test('routes pod → pod on one node (redirect_peer) and across nodes (fib + redirect_neigh), past netfilter', async () => {
    await applyAll();
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`);
    assert.equal(await lab.connect('a', C, 8080), `c ${A}`);
    assert.equal(await lab.connect('c', B, 8080), `b ${C}`);
    assert.equal(await forwardProbe('node-1'), 0, 'no pod-to-pod packet crossed FORWARD on node-1');
    assert.equal(await forwardProbe('node-2'), 0, 'no pod-to-pod packet crossed FORWARD on node-2');
    const counters = await agent('node-1').call<PacketCounter[]>('counters');
    const fwd = (ep: string, dir: string) => counters.find((c) => c.endpoint === ep && c.direction === dir && c.reason === 'FORWARDED')?.packets ?? 0;
    assert.ok(fwd('default/a', 'egress') > 0 && fwd('default/b', 'ingress') > 0, JSON.stringify(counters));
    const st = await agent('node-1').call<EbpfStatus>('status');
    assert.equal(st.hook, kernelHasTcx() ? 'tcx' : 'tc');
    assert.equal(st.programs.length, 2);
    assert.ok(st.programs.every((p) => p.current && p.fromContainer > 0 && p.toContainer > 0), JSON.stringify(st.programs));
    assert.ok(st.netdev?.current);
    assert.ok(st.maps.find((m) => m.name === 'ct')!.entries! > 0);
  });

  test('an endpoint that leaves and comes back (same endpoint id) starts its packet counters from zero', async () => {
    policies = [webFromA];
    await applyAll();
    assert.equal(await lab.connect('c', B, 8080, 1), null, 'dropped: counted');
    const w = lab.world('node-1', policies, services);
    await agent('node-1').call('apply', { world: { ...w, localEndpoints: w.localEndpoints.filter((e) => e.key !== 'default/b') } });
    await agent('node-1').call('apply', { world: w });
    const back = await agent('node-1').call<PacketCounter[]>('counters');
    assert.deepEqual(back.filter((c) => c.endpoint === 'default/b'), [], JSON.stringify(back));
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`);
    const counted = await agent('node-1').call<PacketCounter[]>('counters');
    assert.ok(counted.some((c) => c.endpoint === 'default/b' && c.direction === 'ingress' && c.reason === 'FORWARDED' && c.packets > 0), JSON.stringify(counted));
  });

  test('hand-written spoofed packets, whole or as a lone fragment: INVALID_SOURCE_IP with their own addresses and the sender\'s identity', async () => {
    await eventsOf('node-1', 0);
    await lab.rawIp(lab.pod('a').netns, ['spoof-udp', C, B, '5000', '2', 'spoofed']);
    await lab.rawIp(lab.pod('a').netns, ['frag-tail', C, B, 'udp', '1']);
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`, 'its own address still works');
    const events = await eventsOf('node-1');
    const aIdentity = events.find((e) => e.type === 'policy-verdict' && e.tuple.source === A)?.sourceIdentity;
    assert.ok(aIdentity! > 255, JSON.stringify(events));
    const raw = events.filter((e) => e.type === 'drop' && e.tuple.source === C);
    assert.equal(raw.length, 3, JSON.stringify(raw));
    for (const e of raw) {
      assert.deepEqual(
        [e.reasonName, e.reason, e.tuple.destination, e.endpoint, e.sourceIdentity, e.direction, e.tuple.protocol],
        ['INVALID_SOURCE_IP', 132, B, 'default/a', aIdentity, 'egress', 'UDP'],
        JSON.stringify(e),
      );
    }
    assert.deepEqual(raw.map((e) => e.tuple.destinationPort).sort(), [0, 5000, 5000]);
  });

  test('IP fragments: allowed ones pass, through ClusterIPs too; denied ones and orphans drop with their reason', async () => {
    // b's ingress admits a on TCP 8080 and UDP 5353; c has no policy.
    policies = [webFromA];
    const NEAR_VIP = '10.96.0.20';
    const FAR_VIP = '10.96.0.21';
    services = [
      { key: 'default/web:80/TCP', clusterIP: VIP, port: 80, protocol: 'TCP', backends: [{ ip: B, port: 8080 }, { ip: C, port: 8080 }] },
      { key: 'default/near:53/UDP', clusterIP: NEAR_VIP, port: 53, protocol: 'UDP', backends: [{ ip: B, port: 5353 }] },
      { key: 'default/far:53/UDP', clusterIP: FAR_VIP, port: 53, protocol: 'UDP', backends: [{ ip: C, port: 5353 }] },
    ];
    await applyAll();
    await lab.startUdpEcho('b', 5353);
    await lab.startUdpEcho('c', 5353);
    await eventsOf('node-1', 0);

    // 3,000 bytes of ICMP: three fragments each way.
    assert.equal(await lab.ping('b', A, 3000), 2, 'same node');
    assert.equal(await lab.ping('a', C, 3000), 2, 'across nodes');
    assert.equal(await lab.ping('c', A, 3000), 2, 'across nodes, the other way');
    // A 3,000-byte datagram to a ClusterIP and its echo: every fragment of the
    // question is translated to the backend and every fragment of the answer
    // back (later fragments by the ports their first recorded), so the pod's
    // stack reassembles the whole answer, from the ClusterIP.
    for (const [vip, what] of [[NEAR_VIP, 'same node'], [FAR_VIP, 'across nodes']] as const) {
      const r = await lab.udpAsk('a', vip, 53, 1.5, 3000);
      assert.ok(r, `an answer through ${vip} (${what})`);
      assert.equal(r.from, `${vip}:53`, what);
      assert.equal(r.reply, 'q'.repeat(3000), what);
    }
    const r = await lab.udpAsk('a', B, 5353, 1.5, 3000);
    assert.equal(r?.reply.length, 3000, 'straight to the pod, allowed on UDP 5353');

    // b's ingress does not admit ICMP: each fragment is judged, each dropped, with its ICMP type.
    await eventsOf('node-1', 0);
    assert.equal(await lab.ping('a', B, 3000, 1), 0, 'denied');
    let events = (await eventsOf('node-1')).filter((e) => e.type === 'drop');
    assert.equal(events.length, 3, JSON.stringify(events));
    for (const e of events) {
      assert.deepEqual([e.reasonName, e.tuple.source, e.tuple.destination, e.endpoint, e.tuple.protocol, e.tuple.icmpType], ['POLICY_DENIED', A, B, 'default/b', 'ICMP', 8], JSON.stringify(e));
    }

    // A later fragment whose first was never sent: nothing can judge it,
    // leaving a pod (from_container) or arriving from the underlay (from_netdev).
    const node2 = lab.node('node-2');
    await lab.rawIp(lab.pod('a').netns, ['frag-tail', A, C, 'udp', '2']);
    await lab.rawIp(node2.netns, ['frag-tail', node2.ip, A, 'tcp', '1']);
    events = (await eventsOf('node-1')).filter((e) => e.type === 'drop');
    const orphans = events.filter((e) => e.reason === 175);
    assert.equal(orphans.length, 3, JSON.stringify(events));
    for (const e of orphans) assert.equal(e.reasonName, 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND');
    assert.deepEqual(
      orphans.map((e) => [e.tuple.source, e.tuple.destination, e.tuple.protocol, e.direction, e.endpoint]).sort(),
      [[A, C, 'UDP', 'egress', 'default/a'], [A, C, 'UDP', 'egress', 'default/a'], [node2.ip, A, 'TCP', 'ingress', 'default/a']].sort(),
    );
    const counters = await agent('node-1').call<PacketCounter[]>('counters');
    const orphaned = (dir: string) => counters.find((c) => c.endpoint === 'default/a' && c.direction === dir && c.reason === 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND')?.packets;
    assert.deepEqual([orphaned('egress'), orphaned('ingress')], [2, 1], JSON.stringify(counters));
    await applyAll();
  });

  test('killed datapath process: a new process re-adopts the pins, writes nothing, and replaces the programs on every hook', async () => {
    const old = agent('node-1');
    const oldStatus = await old.call<EbpfStatus>('status');
    // As an agent from before tcx would have left b's veth: a clsact filter too.
    const bVeth = oldStatus.programs.find((p) => p.endpoint === 'default/b')!.ifname;
    assert.ok((await old.call<{ id: number }>('tc-attach', { ifname: bVeth, program: 'from_container' })).id > 0);
    await old.kill();
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`, 'forwarding from the pins alone');

    const fresh = await lab.startAgent('node-1');
    agents.set('node-1', fresh);
    await fresh.call('setup', { node: lab.networkOf(lab.node('node-1')), peers: lab.peersOf(lab.node('node-1')) });
    // The same state: nothing to write, the pinned maps already hold it.
    const same = await fresh.call<ApplyResult>('apply', { world: lab.world('node-1', policies, services) });
    assert.deepEqual([same.full, same.ipcacheChanges, same.endpointsProgrammed], [true, 0, 0], JSON.stringify(same));
    const st = await fresh.call<EbpfStatus>('status');
    assert.ok(st.programs.every((p) => p.current), 'the new process attached its own programs');
    assert.notEqual(st.programs[0]!.fromContainer, oldStatus.programs[0]!.fromContainer);
    assert.ok(st.netdev?.current);
    // Each hook holds the new program alone: the old one replaced, not stacked, the clsact filter gone.
    for (const p of st.programs) {
      const h = await fresh.call<{ tcx: number[][] | null; tc: number[] }>('hooks', { ifname: p.ifname });
      if (st.hook === 'tcx') {
        assert.deepEqual(h.tcx, [[p.fromContainer], [p.toContainer]], `one program per hook on ${p.ifname}`);
        assert.deepEqual(h.tc, [0, 0], `no clsact filter left on ${p.ifname}`);
      } else {
        assert.deepEqual(h.tc, [p.fromContainer, p.toContainer]);
      }
    }
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`);
    assert.equal(await lab.connect('c', B, 8080, 1), null);
  });

  test('L7 DNS: a fragmented query cannot be steered and drops by name; with no listener, SOCKET_LOOKUP_FAILED is counted', async () => {
    for (const n of lab.nodes) await agent(n.name).call('proxies', { httpPort: HTTP_PROXY, dnsPort: DNS_PROXY });
    extra = { httpProxyPort: HTTP_PROXY, dnsProxyPort: DNS_PROXY };
    services = [
      { key: 'kube-system/kube-dns:53/UDP', clusterIP: DNS_VIP, port: 53, protocol: 'UDP', backends: [{ ip: C, port: 53 }] },
      { key: 'kube-system/kube-dns:53/TCP', clusterIP: DNS_VIP, port: 53, protocol: 'TCP', backends: [{ ip: C, port: 53 }] },
    ];
    policies = [
      cnp('a-dns', {
        endpointSelector: { matchLabels: { app: 'a' } },
        egress: [{ toEndpoints: [{ matchLabels: { app: 'c' } }], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] }],
      }),
    ];
    await applyAll();
    assert.ok(await lab.udpAsk('a', DNS_VIP, 53), 'a whole query is answered');
    await seenBy('node-1');
    // The stack's reassembly drops a socket assignment: every fragment is dropped, by name.
    await eventsOf('node-1', 0);
    assert.equal(await lab.udpAsk('a', DNS_VIP, 53, 1, 3000), null);
    const frags = (await eventsOf('node-1')).filter((e) => e.type === 'drop');
    assert.equal(frags.length, 3, JSON.stringify(frags));
    for (const e of frags) {
      assert.deepEqual([e.reasonName, e.tuple.source, e.tuple.destination, e.tuple.destinationPort], ['IP_FRAGMENTATION_NOT_SUPPORTED', A, C, 53], JSON.stringify(e));
    }
    assert.deepEqual(await seenBy('node-1'), []);

    await agent('node-1').call('proxies-close');
    await eventsOf('node-1', 0);
    assert.deepEqual(await Promise.all([lab.udpAsk('a', DNS_VIP, 53, 1), lab.connect('a', DNS_VIP, 53, 1)]), [null, null]);
    const counters = await agent('node-1').call<PacketCounter[]>('counters');
    const lost = counters.filter((c) => c.endpoint === 'default/a' && c.reason === 'SOCKET_LOOKUP_FAILED');
    assert.ok(lost.length > 0 && lost.every((c) => c.direction === 'egress'), JSON.stringify(counters));
    const events = await eventsOf('node-1');
    assert.ok(events.some((e) => e.type === 'drop' && e.reason === 178 && e.tuple.source === A), JSON.stringify(events));
    extra = {};
  });

  test('bulk traffic (GSO packets) stays off the FORWARD hook, with 2,000 nftables rules in the forward chain', async () => {
    policies = [];
    services = [];
    extra = {};
    await applyAll();
    for (const n of lab.nodes) await lab.addDummyForwardRules(n.name, 2000);
    const before = [await forwardProbe('node-1'), await forwardProbe('node-2')];
    const moved = [await lab.iperf('a', 'b', 2), await lab.iperf('a', 'c', 2)];
    assert.ok(moved.every((bps) => bps > 0), `iperf3 moved no data: ${moved.join(', ')} bit/s`);
    // What the rules cost kernel routing, and that eBPF routing does not pay it, is bench/datapath's to measure.
    assert.deepEqual([await forwardProbe('node-1'), await forwardProbe('node-2')], before);
  });
});
