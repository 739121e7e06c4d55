/**
 * Privileged: the eBPF datapath against the real kernel, with real traffic,
 * in a two-node mini cluster of its own (test-topology.ts: namespaces
 * `pl-eb<random>-…`, pins under /sys/fs/bpf/palisade/eb<random>/, all removed
 * in `after`). Needs root and fails, never skips, without it.
 *
 * Each node's datapath lives in a test-node-agent.ts process inside the node
 * namespace; the cases run in order on one topology:
 *   1. routing: pod → pod on a node and across nodes, none through FORWARD
 *   2. policy: a CNP allowing one peer blocks the other; replies and
 *      established connections pass; a deny rule wins; drop events arrive
 *   3. anti-spoofing, with the sender and the packet's addresses in the event
 *   4. ClusterIP translation and reverse translation
 *   4b. IP fragments: allowed ones pass (same node, across nodes, through a
 *      ClusterIP both ways), denied ones drop, a fragment without its first
 *      drops with its own reason
 *   5. the datapath process is killed: forwarding and policy go on from the
 *      pins; a new process re-adopts them and changes policy
 *   6. L7: HTTP steered to a transparent proxy (same node, across nodes,
 *      egress and ingress rules), DNS over UDP and TCP through a ClusterIP,
 *      fail closed while no proxy listens
 *   7. toFQDNs: learned addresses allowed on their ports only, a forgotten
 *      one closed to new connections while an open one goes on; toFQDNs
 *      with L7 through the masquerade; the cost of an FQDN-only apply
 *   8. throughput with 2,000 nftables rules in the forward chain, eBPF vs kernel routing
 */
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { run } from '../../kernel/index.ts';
import type { ApplyResult, DropCounter } from '../types.ts';
import type { DatapathEvent } from './events.ts';
import type { EbpfStatus, PacketCounter } from './ebpf-datapath.ts';
import { EbpfTestLab, type NodeAgent, requireRoot } from '../../../test/kit/ebpf-topology.ts';
import type { ProxySeen, World } from '../../../test/kit/ebpf-node-agent.ts';

requireRoot();

const lab = new EbpfTestLab();
let agents: Map<string, NodeAgent>;
const A = lab.pod('a').ip;
const B = lab.pod('b').ip;
const C = lab.pod('c').ip;
const VIP = '10.96.0.10';
const DNS_VIP = '10.96.0.53';
const HTTP_PROXY = 15001;
const DNS_PROXY = 15053;
const WORLD_1 = '198.51.100.10';
const WORLD_2 = '198.51.100.11';

const agent = (node: string): NodeAgent => agents.get(node)!;

/** tcx came with Linux 6.6. */
function kernelHasTcx(): boolean {
  const [major = 0, minor = 0] = release().split('.').map(Number);
  return major > 6 || (major === 6 && minor >= 6);
}

/** Policy and services every node applies (each agent renders its own endpoints). */
let policies: object[] = [];
let services: World['services'] = [];
/** Proxies and FQDN-learned addresses every node applies. */
let extra: Pick<World, 'httpProxyPort' | 'dnsProxyPort' | 'learned'> = {};

async function applyAll(): Promise<ApplyResult[]> {
  return Promise.all(lab.nodes.map((n) => agent(n.name).call<ApplyResult>('apply', { world: lab.world(n.name, policies, services, extra) })));
}

async function seenBy(node: string): Promise<ProxySeen[]> {
  return agent(node).call<ProxySeen[]>('proxy-seen');
}

async function eventsOf(node: string, waitMs = 300): Promise<DatapathEvent[]> {
  await new Promise((r) => setTimeout(r, waitMs));
  return agent(node).call<DatapathEvent[]>('events');
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

describe('eBPF datapath (privileged)', { concurrency: false }, () => {
  before(async () => {
    agents = await lab.create();
    await lab.startServer('b', [8080, 9999]);
    await lab.startServer('c', [8080]);
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
    const results = await applyAll();
    assert.ok(results.every((r) => r.full));
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`);
    assert.equal(await lab.connect('a', C, 8080), `c ${A}`);
    assert.equal(await lab.connect('c', B, 8080), `b ${C}`);
    assert.equal(await forwardProbe('node-1'), 0, 'no pod-to-pod packet crossed FORWARD on node-1');
    assert.equal(await forwardProbe('node-2'), 0, 'no pod-to-pod packet crossed FORWARD on node-2');
    const counters = await agent('node-1').call<PacketCounter[]>('counters');
    const fwd = (ep: string, dir: string) => counters.find((c) => c.endpoint === ep && c.direction === dir && c.reason === 'FORWARDED')?.packets ?? 0;
    assert.ok(fwd('default/a', 'egress') > 0 && fwd('default/b', 'ingress') > 0, JSON.stringify(counters));
    const st = await agent('node-1').call<EbpfStatus>('status');
    assert.equal(st.mode, 'ebpf');
    assert.equal(st.hook, kernelHasTcx() ? 'tcx' : 'tc');
    assert.equal(st.programs.length, 2);
    assert.ok(st.programs.every((p) => p.current && p.fromContainer > 0 && p.toContainer > 0), JSON.stringify(st.programs));
    assert.ok(st.netdev?.current);
    assert.ok(st.maps.find((m) => m.name === 'ct')!.entries! > 0);
    // A second apply of the same state writes nothing.
    const again = await agent('node-1').call<ApplyResult>('apply', { world: lab.world('node-1', policies, services) });
    assert.equal(again.full, false);
    assert.equal(again.endpointsProgrammed + again.ipcacheChanges, 0);
  });

  test('a CNP allowing one peer blocks the other; replies and established connections pass; deny wins', async () => {
    await eventsOf('node-1', 0);
    const established = await lab.openConnection('c', B, 8080); // opened before any policy
    try {
      policies = [
        cnp('web-from-a', {
          endpointSelector: { matchLabels: { app: 'web' } },
          ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }, { port: '9999', protocol: 'TCP' }] }] }],
        }),
        cnp('a-no-9999', {
          endpointSelector: { matchLabels: { app: 'a' } },
          // A deny section turns on default-deny for its direction too: allow the rest.
          egress: [{ toEntities: ['all'] }],
          egressDeny: [{ toEndpoints: [{ matchLabels: { app: 'web' } }], toPorts: [{ ports: [{ port: '9999', protocol: 'TCP' }] }] }],
        }),
      ];
      const [r1] = await applyAll();
      assert.ok(r1!.endpointsProgrammed >= 2, JSON.stringify(r1));

      assert.equal(await lab.connect('a', B, 8080), `b ${A}`, 'the allowed peer connects');
      assert.equal(await lab.connect('c', B, 8080, 1), null, 'the other peer is blocked');
      assert.equal(await established.echo('still-there'), 'still-there', 'an established connection passes');
      assert.equal(await lab.connect('b', C, 8080), `c ${B}`, 'replies to b pass its enforced ingress');
      assert.equal(await lab.connect('a', B, 9999, 1), null, 'the egress deny wins over the ingress allow');

      const st = await agent('node-1').call<EbpfStatus>('status');
      const b = st.endpoints.find((e) => e.endpoint === 'default/b')!;
      assert.equal(b.ingressEnforced, true);
      assert.equal(b.egressEnforced, false);

      const events = await eventsOf('node-1');
      const denied = events.find((e) => e.type === 'drop' && e.reasonName === 'POLICY_DENIED');
      assert.ok(denied, JSON.stringify(events));
      assert.equal(denied.reason, 133);
      assert.equal(denied.direction, 'ingress');
      assert.equal(denied.endpoint, 'default/b');
      assert.equal(denied.source, C);
      assert.equal(denied.destinationPort, 8080);
      const deny = events.find((e) => e.type === 'drop' && e.reasonName === 'POLICY_DENY');
      assert.ok(deny, JSON.stringify(events));
      assert.equal(deny.reason, 181);
      assert.equal(deny.direction, 'egress');
      assert.equal(deny.endpoint, 'default/a');
      assert.ok(events.some((e) => e.type === 'policy-verdict' && e.verdict === 'allowed' && e.endpoint === 'default/b' && e.source === A));

      const drops = await agent('node-1').call<DropCounter[]>('drops');
      assert.ok(drops.some((d) => d.endpoint === 'default/b' && d.direction === 'ingress' && d.reason === 'POLICY_DENIED' && d.packets > 0), JSON.stringify(drops));
      assert.ok(drops.some((d) => d.endpoint === 'default/a' && d.direction === 'egress' && d.reason === 'POLICY_DENY' && d.packets > 0), JSON.stringify(drops));

      // b leaves the node and comes back (with the same endpoint id): its counts, forwarded and dropped, start again from zero.
      const w = lab.world('node-1', policies, services);
      await agent('node-1').call('apply', { world: { ...w, localEndpoints: w.localEndpoints.filter((e) => e.key !== 'default/b') } });
      await agent('node-1').call('apply', { world: w });
      const back = await agent('node-1').call<PacketCounter[]>('counters');
      assert.deepEqual(back.filter((c) => c.endpoint === 'default/b'), [], JSON.stringify(back));
      assert.equal(await lab.connect('a', B, 8080), `b ${A}`);
      const counted = await agent('node-1').call<PacketCounter[]>('counters');
      assert.ok(counted.some((c) => c.endpoint === 'default/b' && c.direction === 'ingress' && c.reason === 'FORWARDED' && c.packets > 0), JSON.stringify(counted));
    } finally {
      established.close();
    }
  });

  test('anti-spoofing: a pod cannot send from an address it was not given', async () => {
    await eventsOf('node-1', 0);
    assert.equal(await lab.connectSpoofed('a', '10.244.1.99', B, 8080), false);
    const events = await eventsOf('node-1');
    const spoof = events.find((e) => e.type === 'drop' && e.reasonName === 'INVALID_SOURCE_IP');
    assert.ok(spoof, JSON.stringify(events));
    assert.equal(spoof.reason, 132);
    assert.equal(spoof.source, '10.244.1.99');
    assert.equal(spoof.endpoint, 'default/a');

    // Written by hand (IP_HDRINCL) with another pod's address, whole or as a
    // lone fragment: the reason is the spoofing, with the packet's own
    // addresses and the sender's identity.
    await lab.rawIp(lab.pod('a').netns, ['spoof-udp', C, B, '5000', '2', 'spoofed']);
    await lab.rawIp(lab.pod('a').netns, ['frag-tail', C, B, 'udp', '1']);
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`, 'its own address still works');
    const later = await eventsOf('node-1');
    const aIdentity = later.find((e) => e.type === 'policy-verdict' && e.source === A)?.sourceIdentity;
    assert.ok(aIdentity! > 255, JSON.stringify(later));
    assert.equal(spoof.sourceIdentity, aIdentity);
    const raw = later.filter((e) => e.type === 'drop' && e.source === C);
    assert.equal(raw.length, 3, JSON.stringify(raw));
    for (const e of raw) {
      assert.deepEqual(
        [e.reasonName, e.reason, e.destination, e.endpoint, e.sourceIdentity, e.direction, e.protocol],
        ['INVALID_SOURCE_IP', 132, B, 'default/a', aIdentity, 'egress', 'UDP'],
        JSON.stringify(e),
      );
    }
    assert.deepEqual(raw.map((e) => e.destinationPort).sort(), [0, 5000, 5000]);
  });

  test('a ClusterIP is translated per connection to its backends, and replies come back from it', async () => {
    services = [{ key: 'default/web:80/TCP', clusterIP: VIP, port: 80, protocol: 'TCP', backends: [{ ip: B, port: 8080 }, { ip: C, port: 8080 }] }];
    await applyAll();
    const seen = new Set<string>();
    for (let i = 0; i < 24 && seen.size < 2; i++) {
      // bash's /dev/tcp only connects when the SYN-ACK comes from the address it dialled:
      // a greeting proves the reply was translated back to the ClusterIP.
      const g = await lab.connect('a', VIP, 80);
      assert.ok(g === `b ${A}` || g === `c ${A}`, `greeting ${g}`);
      seen.add(g.split(' ')[0]!);
    }
    assert.deepEqual([...seen].sort(), ['b', 'c'], 'both backends serve');
    // One connection stays on its backend.
    const conn = await lab.openConnection('a', VIP, 80);
    try {
      for (let i = 0; i < 5; i++) assert.equal(await conn.echo(`x${i}`), `x${i}`);
    } finally {
      conn.close();
    }
    const st = await agent('node-1').call<EbpfStatus>('status');
    assert.equal(st.services, 1);
    assert.equal(st.maps.find((m) => m.name === 'backends')!.entries, 2);
  });

  test('IP fragments: allowed ones pass, through ClusterIPs too; denied ones and orphans drop with their reason', async () => {
    // b's ingress admits a on TCP 8080/9999 (and now UDP 5353); c has no policy.
    policies = policies.map((p) =>
      (p as { metadata: { name: string } }).metadata.name === 'web-from-a'
        ? cnp('web-from-a', {
            endpointSelector: { matchLabels: { app: 'web' } },
            ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }, { port: '9999', protocol: 'TCP' }, { port: '5353', protocol: 'UDP' }] }] }],
          })
        : p,
    );
    const NEAR_VIP = '10.96.0.20';
    const FAR_VIP = '10.96.0.21';
    const tcpServices = services;
    services = [
      ...tcpServices,
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
      assert.deepEqual([e.reasonName, e.source, e.destination, e.endpoint, e.protocol, e.icmpType], ['POLICY_DENIED', A, B, 'default/b', 'ICMP', 8], JSON.stringify(e));
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
      orphans.map((e) => [e.source, e.destination, e.protocol, e.direction, e.endpoint]).sort(),
      [[A, C, 'UDP', 'egress', 'default/a'], [A, C, 'UDP', 'egress', 'default/a'], [node2.ip, A, 'TCP', 'ingress', 'default/a']].sort(),
    );
    const counters = await agent('node-1').call<PacketCounter[]>('counters');
    const orphaned = (dir: string) => counters.find((c) => c.endpoint === 'default/a' && c.direction === dir && c.reason === 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND')?.packets;
    assert.deepEqual([orphaned('egress'), orphaned('ingress')], [2, 1], JSON.stringify(counters));
    services = tcpServices;
    await applyAll();
  });

  test('killed datapath process: forwarding and policy go on from the pins; a new process re-adopts them', async () => {
    const old = agent('node-1');
    const oldStatus = await old.call<EbpfStatus>('status');
    // As an agent from before tcx would have left b's veth: a clsact filter too.
    const bVeth = oldStatus.programs.find((p) => p.endpoint === 'default/b')!.ifname;
    assert.ok((await old.call<{ id: number }>('tc-attach', { ifname: bVeth, program: 'from_container' })).id > 0);
    await old.kill();
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`, 'forwarding without its process');
    assert.equal(await lab.connect('c', B, 8080, 1), null, 'policy without its process');
    assert.ok((await lab.connect('a', VIP, 80)) !== null, 'services without its process');

    const fresh = await lab.startAgent('node-1');
    agents.set('node-1', fresh);
    await fresh.call('setup', { node: lab.networkOf(lab.node('node-1')), peers: lab.peersOf(lab.node('node-1')) });
    // The same state: nothing to write, the pinned maps already hold it.
    const same = await fresh.call<ApplyResult>('apply', { world: lab.world('node-1', policies, services) });
    assert.equal(same.full, true);
    assert.equal(same.ipcacheChanges, 0);
    assert.equal(same.endpointsProgrammed, 0);
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

    // And it changes policy: c may now reach b too.
    policies = policies.map((p) =>
      (p as { metadata: { name: string } }).metadata.name === 'web-from-a'
        ? cnp('web-from-a', {
            endpointSelector: { matchLabels: { app: 'web' } },
            ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'c'] }] }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }],
          })
        : p,
    );
    const changed = await fresh.call<ApplyResult>('apply', { world: lab.world('node-1', policies, services) });
    assert.ok(changed.endpointsProgrammed >= 1, JSON.stringify(changed));
    assert.equal(await lab.connect('c', B, 8080), `b ${C}`);
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`);
  });

  test('L7: HTTP goes to a transparent proxy that sees the original destination and the client, and connects onward as the client', async () => {
    for (const n of lab.nodes) await agent(n.name).call('proxies', { httpPort: HTTP_PROXY, dnsPort: DNS_PROXY });
    extra = { httpProxyPort: HTTP_PROXY, dnsProxyPort: DNS_PROXY };
    services = [];
    const http = { ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } };
    policies = [
      cnp('a-l7', {
        endpointSelector: { matchLabels: { app: 'a' } },
        egress: [{ toEndpoints: [{ matchLabels: { app: 'web' } }, { matchLabels: { app: 'c' } }], toPorts: [http] }],
      }),
      cnp('web-l7', {
        endpointSelector: { matchLabels: { app: 'web' } },
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a' } }, { matchLabels: { app: 'c' } }], toPorts: [http] }],
      }),
    ];
    await applyAll();
    for (const n of lab.nodes) await seenBy(n.name);
    const st = await agent('node-1').call<EbpfStatus>('status');
    assert.deepEqual(st.endpoints.flatMap((e) => e.unenforceable), [], 'L7 is enforceable with a proxy');

    // Same node: a's egress and b's ingress both redirect; the proxy's onward
    // connection from a's address passes b's ingress (to_container) and b's
    // answers go back to the proxy's socket, not to a.
    assert.equal(await lab.connect('a', B, 8080), `b ${A}`, 'b sees a as the client');
    let seen = await seenBy('node-1');
    assert.equal(seen.length, 1, JSON.stringify(seen));
    assert.equal(seen[0]!.original, `${B}:8080`);
    assert.match(seen[0]!.client, new RegExp(`^${A.replaceAll('.', '\\.')}:\\d+$`));

    // Across nodes, egress: node-1's proxy connects to c on node-2 as a; c's
    // answers come back over the underlay to the proxy's socket (no CT entry there).
    assert.equal(await lab.connect('a', C, 8080), `c ${A}`);
    seen = await seenBy('node-1');
    assert.deepEqual(seen.map((x) => x.original), [`${C}:8080`]);
    assert.equal(seen[0]!.client.split(':')[0], A);
    const conn = await lab.openConnection('a', C, 8080);
    try {
      for (let i = 0; i < 3; i++) assert.equal(await conn.echo(`through-proxy-${i}`), `through-proxy-${i}`);
    } finally {
      conn.close();
    }
    await seenBy('node-1');

    // Across nodes, ingress: c (no policy of its own) reaches b; node-1 redirects at the underlay.
    assert.equal(await lab.connect('c', B, 8080), `b ${C}`);
    seen = await seenBy('node-1');
    assert.deepEqual(seen.map((x) => x.original), [`${B}:8080`]);
    assert.equal(seen[0]!.client.split(':')[0], C);
    assert.deepEqual(await seenBy('node-2'), [], "node-2's proxy is not involved");

    // What no rule allows stays dropped.
    assert.equal(await lab.connect('a', B, 9999, 1), null);
    assert.equal(await lab.connect('c', B, 9999, 1), null);
  });

  test('L7: DNS to a ClusterIP goes to the DNS proxy over UDP and TCP; the answer comes back from the ClusterIP', async () => {
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
    await seenBy('node-1');
    // The proxy sees the backend as the original destination (the ClusterIP
    // is translated first, as legacy's TPROXY after dstnat) and answers from
    // it; to_container turns that back into the ClusterIP.
    for (let i = 0; i < 2; i++) {
      const r = await lab.udpAsk('a', DNS_VIP, 53);
      assert.ok(r, 'an answer over UDP');
      assert.equal(r.from, `${DNS_VIP}:53`, 'the answer comes from the address asked');
      assert.match(r.reply, new RegExp(`^dns ${C.replaceAll('.', '\\.')}:53 ${A.replaceAll('.', '\\.')}:\\d+$`));
    }
    // bash's /dev/tcp connects only when the SYN-ACK comes from the ClusterIP.
    const tcp = await lab.connect('a', DNS_VIP, 53);
    assert.match(tcp ?? '', new RegExp(`^dns ${C.replaceAll('.', '\\.')}:53 ${A.replaceAll('.', '\\.')}:\\d+$`));
    const seen = await seenBy('node-1');
    assert.deepEqual(seen.map((x) => x.proxy).sort(), ['dns-tcp', 'dns-udp', 'dns-udp']);
    assert.ok(seen.every((x) => x.original === `${C}:53`), JSON.stringify(seen));
    assert.equal(await lab.connect('a', C, 8080, 1), null, 'other ports of the same peer stay closed');

    // A fragmented query cannot reach the listener (the stack's reassembly
    // drops a socket assignment): every fragment is dropped, by name.
    await eventsOf('node-1', 0);
    assert.equal(await lab.udpAsk('a', DNS_VIP, 53, 1, 3000), null);
    const frags = (await eventsOf('node-1')).filter((e) => e.type === 'drop');
    assert.equal(frags.length, 3, JSON.stringify(frags));
    for (const e of frags) {
      assert.deepEqual([e.reasonName, e.source, e.destination, e.destinationPort], ['IP_FRAGMENTATION_NOT_SUPPORTED', A, C, 53], JSON.stringify(e));
    }
    assert.deepEqual(await seenBy('node-1'), []);
  });

  test('L7: while no proxy listens, steered traffic is dropped (SOCKET_LOOKUP_FAILED), never passed', async () => {
    await agent('node-1').call('proxies-close');
    await eventsOf('node-1', 0);
    assert.equal(await lab.udpAsk('a', DNS_VIP, 53, 1), null);
    assert.equal(await lab.connect('a', DNS_VIP, 53, 1), null);
    const counters = await agent('node-1').call<PacketCounter[]>('counters');
    const lost = counters.filter((c) => c.endpoint === 'default/a' && c.reason === 'SOCKET_LOOKUP_FAILED');
    assert.ok(lost.length > 0 && lost.every((c) => c.direction === 'egress'), JSON.stringify(counters));
    const events = await eventsOf('node-1');
    assert.ok(events.some((e) => e.type === 'drop' && e.reason === 178 && e.source === A), JSON.stringify(events));
    // And back: the kernel state never changed, the listener alone was missing.
    await agent('node-1').call('proxies', { httpPort: HTTP_PROXY, dnsPort: DNS_PROXY });
    assert.ok(await lab.udpAsk('a', DNS_VIP, 53));
  });

  test('toFQDNs: learned addresses on the given ports only; a forgotten one takes no new connections; toFQDNs with L7 through the masquerade', async (t) => {
    await lab.startWorldServer([WORLD_1, WORLD_2], [8443, 9443, 8080]);
    const node1 = lab.node('node-1').ip;
    services = [];
    policies = [
      cnp('a-fqdn', {
        endpointSelector: { matchLabels: { app: 'a' } },
        egress: [
          { toFQDNs: [{ matchName: 'api.example.com' }], toPorts: [{ ports: [{ port: '8443', protocol: 'TCP' }] }] },
          { toFQDNs: [{ matchName: 'www.example.com' }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] },
        ],
      }),
    ];
    extra = { httpProxyPort: HTTP_PROXY, dnsProxyPort: DNS_PROXY, learned: {} };
    await applyAll();
    assert.equal(await lab.connect('a', WORLD_1, 8443, 1), null, 'nothing learned: nothing allowed');

    extra = { ...extra, learned: { 'api.example.com': [WORLD_1] } };
    await applyAll();
    assert.equal(await lab.connect('a', WORLD_1, 8443), `world ${node1}`, 'a learned address on its port');
    assert.equal(await lab.connect('a', WORLD_1, 9443, 1), null, 'another port of it');
    assert.equal(await lab.connect('a', WORLD_2, 8443, 1), null, 'an address not learned');

    // The DNS proxy's case: one more address for a name in force.
    extra = { ...extra, learned: { 'api.example.com': [WORLD_1, WORLD_2] } };
    const apply = (learned: Record<string, string[]>) =>
      agent('node-1').call<ApplyResult>('apply', { world: lab.world('node-1', policies, services, { ...extra, learned }) });
    const grow = await apply({ 'api.example.com': [WORLD_1, WORLD_2] });
    assert.deepEqual([grow.ipcacheChanges, grow.endpointsProgrammed, grow.full], [1, 0, false], JSON.stringify(grow));
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      times.push((await apply({ 'api.example.com': [WORLD_1] })).durationMs);
      times.push((await apply({ 'api.example.com': [WORLD_1, WORLD_2] })).durationMs);
    }
    times.sort((a, b) => a - b);
    t.diagnostic(`FQDN-only apply (one /32 added or removed): ${grow.durationMs} ms first; median ${times[times.length >> 1]} ms, max ${times.at(-1)} ms over ${times.length}`);
    assert.ok(times[times.length >> 1]! < 100, 'well inside the DNS proxy\'s 100 ms hold');
    assert.equal(await lab.connect('a', WORLD_2, 8443), `world ${node1}`);

    const open = await lab.openConnection('a', WORLD_2, 8443);
    try {
      const shrink = await apply({ 'api.example.com': [WORLD_1] });
      assert.equal(shrink.ipcacheChanges, 1);
      assert.equal(await lab.connect('a', WORLD_2, 8443, 1), null, 'a forgotten address takes no new connection');
      assert.equal(await open.echo('still-open'), 'still-open', 'an established one goes on (CT)');
      assert.equal(await lab.connect('a', WORLD_1, 8443), `world ${node1}`);
    } finally {
      open.close();
    }

    // toFQDNs with HTTP rules: the proxy connects to the world as a; the
    // answer returns to the node's address (masquerade) and finds the proxy's
    // socket through the `socket transparent` mark.
    await seenBy('node-1');
    extra = { ...extra, learned: { 'api.example.com': [WORLD_1], 'www.example.com': [WORLD_1] } };
    await applyAll();
    assert.equal(await lab.connect('a', WORLD_1, 8080), `world ${node1}`);
    const seen = await seenBy('node-1');
    assert.deepEqual(seen.map((x) => [x.proxy, x.original, x.client.split(':')[0]]), [['http', `${WORLD_1}:8080`, A]]);
    assert.equal(await lab.connect('a', WORLD_2, 8080, 1), null, 'not learned for www');
    const st = await agent('node-1').call<EbpfStatus>('status');
    assert.deepEqual(st.endpoints.flatMap((e) => e.unenforceable), []);
    const ipcache = st.maps.find((m) => m.name === 'ipcache')!;
    assert.equal(ipcache.entries, st.ipcacheEntries);
    extra = {};
  });

  test('throughput with 2,000 nftables rules in the forward chain: eBPF routing vs kernel routing', async (t) => {
    policies = [];
    services = [];
    await applyAll();
    for (const n of lab.nodes) await lab.addDummyForwardRules(n.name, 2000);
    const before = [await forwardProbe('node-1'), await forwardProbe('node-2')];
    const ebpf = await lab.iperf('a', 'b', 2);
    const ebpfAcross = await lab.iperf('a', 'c', 2);
    // Bulk traffic too (GSO packets) stays off the FORWARD hook.
    assert.deepEqual([await forwardProbe('node-1'), await forwardProbe('node-2')], before);
    // The same pods without the programs: kernel routing through the 2,000 rules.
    for (const n of lab.nodes) await agent(n.name).call('detach');
    const kernel = await lab.iperf('a', 'b', 2);
    const kernelAcross = await lab.iperf('a', 'c', 2);
    const gbit = (b: number) => `${(b / 1e9).toFixed(2)} Gbit/s`;
    t.diagnostic(`pod → pod, 2,000 forward rules: same node eBPF ${gbit(ebpf)} vs kernel ${gbit(kernel)}; across nodes eBPF ${gbit(ebpfAcross)} vs kernel ${gbit(kernelAcross)}`);
    assert.ok(ebpf > 0 && kernel > 0 && ebpfAcross > 0 && kernelAcross > 0);
  });
});
