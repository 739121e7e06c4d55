/**
 * Privileged: the datapath contract (src/datapath/types.ts `Datapath`), the
 * same cases for every datapath. A new datapath joins MODES and must pass
 * this file; nothing else in it is specific to one implementation.
 *
 * Per mode, one two-node mini cluster (test/kit/datapath-topology.ts:
 * namespaces `pl-h2<random>-…`, eBPF pins under /sys/fs/bpf/palisade/h2<random>/,
 * all removed in `after`, even on failure), built once; each node's datapath
 * lives in a datapath-node-agent.ts process inside the node namespace, with
 * stand-ins for the node's transparent HTTP and DNS proxies. The cases run in
 * order on it:
 *   pod ↔ pod on one node and across nodes
 *   L3/L4 by identity (NetworkPolicy and CiliumNetworkPolicy, deny wins), drop counters, events
 *   traffic counters: bytes per address pair, once per packet in the cluster
 *   CIDR rules (through the masquerade)
 *   ClusterIP services: per-connection translation, replies from the ClusterIP
 *   anti-spoofing
 *   L7: HTTP and DNS steered to the proxies; fail closed while none listens
 *   toFQDNs: the addresses the DNS proxy learned, and no others
 *   restart: the datapath process killed; a new one adopts the state
 * Needs root and fails, never skips, without it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ApplyResult, DatapathEvent, DatapathMode, DatapathStatus, DropCounter, TrafficCounter } from '../../src/datapath/types.ts';
import { DatapathTestLab, type NodeAgent, requireRoot } from '../kit/datapath-topology.ts';
import type { ProxySeen, World } from '../kit/datapath-node-agent.ts';

requireRoot();

const MODES: readonly DatapathMode[] = ['legacy', 'ebpf'];

const VIP = '10.96.0.10';
/** A ClusterIP served by b alone. */
const B_VIP = '10.96.0.11';
const DNS_VIP = '10.96.0.53';
const HTTP_PROXY = 15001;
const DNS_PROXY = 15053;
const WORLD_1 = '198.51.100.10';
const WORLD_2 = '198.51.100.11';
/** A port no test allows. */
const CLOSED = 9999;

const cnp = (name: string, spec: object): object => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, namespace: 'default' },
  spec,
});
const netpol = (name: string, spec: object): object => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: 'default' },
  spec,
});
const tcp = (...ports: number[]) => ports.map((p) => ({ port: p, protocol: 'TCP' }));
/** web (b) admits a on 8080 and CLOSED; a may send anywhere but CLOSED on web (deny wins over b's allow). */
const WEB_FROM_A = netpol('web-from-a', {
  podSelector: { matchLabels: { app: 'web' } },
  policyTypes: ['Ingress'],
  ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a' } } }], ports: tcp(8080, CLOSED) }],
});
const A_NOT_WEB_CLOSED = cnp('a-not-web-closed', {
  endpointSelector: { matchLabels: { app: 'a' } },
  // A deny section turns on default-deny for its direction too: allow the rest.
  egress: [{ toEntities: ['all'] }],
  egressDeny: [{ toEndpoints: [{ matchLabels: { app: 'web' } }], toPorts: [{ ports: [{ port: String(CLOSED), protocol: 'TCP' }] }] }],
});
const re = (s: string): string => s.replaceAll('.', '\\.');

for (const mode of MODES) {
  describe(`datapath conformance: ${mode}`, { concurrency: false }, () => {
    const lab = new DatapathTestLab(mode, { idPrefix: 'h2' });
    let agents: Map<string, NodeAgent> | undefined;
    let recorded: () => string[] = () => [];
    const A = lab.pod('a').ip;
    const B = lab.pod('b').ip;
    const C = lab.pod('c').ip;
    const NODE_1 = lab.node('node-1').ip;
    const agent = (node: string): NodeAgent => agents!.get(node)!;

    /** What every node applies (each agent renders its own endpoints). */
    let policies: object[] = [];
    let services: World['services'] = [];
    let extra: Pick<World, 'httpProxyPort' | 'dnsProxyPort' | 'learned'> = {};
    const applyAll = (): Promise<ApplyResult[]> =>
      Promise.all(lab.nodes.map((n) => agent(n.name).call<ApplyResult>('apply', { world: lab.world(n.name, policies, services, extra) })));

    /** Events of a node since the last call, after `waitMs` for the kernel to hand them over; none may be lost. */
    async function eventsOf(node: string, waitMs = 300): Promise<DatapathEvent[]> {
      await new Promise((r) => setTimeout(r, waitMs));
      const { events, lost } = await agent(node).call<{ events: DatapathEvent[]; lost: number }>('events');
      assert.equal(lost, 0, `${node} lost events`);
      return events;
    }
    const show = (events: DatapathEvent[]): string => JSON.stringify(events.map((e) => ({ ...e, timestamp: undefined })));

    const dropsOf = (node: string): Promise<DropCounter[]> => agent(node).call<DropCounter[]>('drops');
    const packets = (drops: DropCounter[], endpoint: string, direction: DropCounter['direction'], reason: DropCounter['reason']): number =>
      drops.filter((d) => d.endpoint === endpoint && d.direction === direction && d.reason === reason).reduce((n, d) => n + d.packets, 0);

    const seenBy = (node: string): Promise<ProxySeen[]> => agent(node).call<ProxySeen[]>('proxy-seen');

    /** Every node's traffic counters together: the cluster's view, where a packet counted twice would show. */
    const clusterTraffic = async (): Promise<TrafficCounter[]> => (await Promise.all(lab.nodes.map((n) => agent(n.name).call<TrafficCounter[]>('traffic')))).flat();
    const pairOf = (t: TrafficCounter[], source: string, destination: string): { packets: number; bytes: number } =>
      t
        .filter((c) => c.source === source && c.destination === destination)
        .reduce((sum, c) => ({ packets: sum.packets + c.packets, bytes: sum.bytes + c.bytes }), { packets: 0, bytes: 0 });

    before(async () => {
      agents = await lab.create();
      [recorded] = await Promise.all([
        lab.startUdpRecorder('b', 5000),
        lab.startServer('a', [8080]),
        lab.startServer('b', [8080, CLOSED]),
        // c also serves DNS's port itself: traffic that slips past a proxy gets c's answer, not silence.
        lab.startServer('c', [8080, 53]),
        lab.startUdpEcho('c', 53),
        lab.startWorldServer([WORLD_1, WORLD_2], [8443, 9443, 8080]),
        ...lab.nodes.map((n) => agent(n.name).call('proxies', { httpPort: HTTP_PROXY, dnsPort: DNS_PROXY })),
      ]);
    });

    after(async () => {
      await lab.destroy();
    });

    test('pod ↔ pod on one node and across nodes; a second apply of the same state writes nothing', async () => {
      const results = await applyAll();
      assert.ok(results.every((r) => r.full), JSON.stringify(results));
      assert.equal(await lab.connect('a', B, 8080), `b ${A}`, 'same node');
      assert.equal(await lab.connect('b', A, 8080), `a ${B}`, 'same node, the other way');
      assert.equal(await lab.connect('a', C, 8080), `c ${A}`, 'across nodes');
      assert.equal(await lab.connect('c', B, 8080), `b ${C}`, 'across nodes, the other way');
      const again = await applyAll();
      for (const r of again) assert.deepEqual([r.full, r.endpointsProgrammed, r.ipcacheChanges], [false, 0, 0], JSON.stringify(r));
      const st = await agent('node-1').call<DatapathStatus>('status');
      assert.equal(st.mode, mode);
      assert.deepEqual(st.endpoints.map((e) => e.endpoint).sort(), ['default/a', 'default/b']);
    });

    test('L3/L4 by identity: NetworkPolicy and CNP allow their peers only, deny wins; drop counters and events for each verdict', async () => {
      await eventsOf('node-1', 0);
      await eventsOf('node-2', 0);
      const established = await lab.openConnection('c', B, 8080); // before any policy
      try {
        policies = [
          WEB_FROM_A,
          cnp('c-from-a', {
            endpointSelector: { matchLabels: { app: 'c' } },
            ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }],
          }),
          A_NOT_WEB_CLOSED,
        ];
        const [r1] = await applyAll();
        assert.ok(r1!.endpointsProgrammed >= 2, JSON.stringify(r1));
        const before1 = await dropsOf('node-1');
        const before2 = await dropsOf('node-2');

        // NetworkPolicy: the allowed peer, same node; CNP: the allowed peer, across nodes; replies pass an enforced ingress (b's)
        assert.deepEqual(await Promise.all([lab.connect('a', B, 8080), lab.connect('a', C, 8080), lab.connect('b', A, 8080)]), [`b ${A}`, `c ${A}`, `a ${B}`]);
        assert.equal(await established.echo('still-there'), 'still-there', 'a connection opened before the policy goes on');
        // Nothing allowed so far was counted as a drop.
        assert.deepEqual(await dropsOf('node-1'), before1);
        const blocked = await Promise.all([lab.connect('c', B, 8080, 1), lab.connect('b', C, 8080, 1), lab.connect('a', B, CLOSED, 1)]);
        assert.deepEqual(blocked, [null, null, null], 'NetworkPolicy blocks c → b; CNP blocks b → c; the egress deny wins over the ingress allow');

        const st = await agent('node-1').call<DatapathStatus>('status');
        const b = st.endpoints.find((e) => e.endpoint === 'default/b')!;
        assert.deepEqual([b.ingressEnforced, b.egressEnforced], [true, false]);
        const a = st.endpoints.find((e) => e.endpoint === 'default/a')!;
        assert.deepEqual([a.ingressEnforced, a.egressEnforced], [false, true]);

        const after1 = await dropsOf('node-1');
        const after2 = await dropsOf('node-2');
        assert.ok(packets(after1, 'default/b', 'ingress', 'POLICY_DENIED') > packets(before1, 'default/b', 'ingress', 'POLICY_DENIED'), JSON.stringify(after1));
        assert.ok(packets(after1, 'default/a', 'egress', 'POLICY_DENY') > packets(before1, 'default/a', 'egress', 'POLICY_DENY'), JSON.stringify(after1));
        assert.ok(packets(after2, 'default/c', 'ingress', 'POLICY_DENIED') > packets(before2, 'default/c', 'ingress', 'POLICY_DENIED'), JSON.stringify(after2));
        assert.equal(packets(after1, 'default/a', 'egress', 'POLICY_DENIED'), packets(before1, 'default/a', 'egress', 'POLICY_DENIED'), 'a deny rule counts as a deny, not as default deny');

        const ev1 = await eventsOf('node-1');
        const denied = ev1.find((e) => e.type === 'drop' && e.tuple.source === C && e.tuple.destination === B);
        assert.ok(denied, `default deny of c → b: ${show(ev1)}`);
        assert.deepEqual(
          [denied.verdict, denied.reason, denied.reasonName, denied.direction, denied.endpoint, denied.policy?.decision, denied.tuple.protocol, denied.tuple.destinationPort],
          ['dropped', 133, 'POLICY_DENIED', 'ingress', 'default/b', 'default-deny', 'TCP', 8080],
          show([denied]),
        );
        const deny = ev1.find((e) => e.type === 'drop' && e.tuple.destinationPort === CLOSED);
        assert.ok(deny, `deny rule of a → b:${CLOSED}: ${show(ev1)}`);
        assert.deepEqual(
          [deny.verdict, deny.reason, deny.reasonName, deny.direction, deny.endpoint, deny.policy?.decision, deny.tuple.source, deny.tuple.destination],
          ['dropped', 181, 'POLICY_DENY', 'egress', 'default/a', 'deny-rule', A, B],
          show([deny]),
        );
        const allowed = ev1.find((e) => e.type === 'policy-verdict' && e.endpoint === 'default/b' && e.direction === 'ingress' && e.tuple.source === A);
        assert.ok(allowed, `allowed a → b: ${show(ev1)}`);
        assert.deepEqual([allowed.verdict, allowed.policy?.decision, allowed.tuple.destination, allowed.tuple.destinationPort, allowed.reason], ['forwarded', 'allowed', B, 8080, 0]);
        const ev2 = await eventsOf('node-2');
        const deniedAtC = ev2.find((e) => e.type === 'drop' && e.endpoint === 'default/c' && e.tuple.source === B);
        assert.ok(deniedAtC, `default deny of b → c on node-2: ${show(ev2)}`);
        assert.deepEqual([deniedAtC.reasonName, deniedAtC.direction, deniedAtC.tuple.destination], ['POLICY_DENIED', 'ingress', C]);
      } finally {
        established.close();
      }
    });

    test('traffic: bytes per address pair, each packet counted once in the cluster; a dropped attempt adds nothing', async (t) => {
      // The policy of the case before: a → b and a → c on 8080 allowed, a → b on CLOSED denied at a's egress.
      const MB = 1 << 20;
      const before = await clusterTraffic();
      assert.equal(await lab.echoBytes('a', B, 8080, MB), MB, 'same node');
      assert.equal(await lab.echoBytes('a', C, 8080, MB), MB, 'across nodes');
      await new Promise((r) => setTimeout(r, 200)); // the connections' last FIN and ACK
      const after = await clusterTraffic();
      // Each way carries the megabyte (sent, then echoed) plus headers, the greeting and the ACKs of the other way.
      for (const [s, d] of [
        [A, B],
        [B, A],
        [A, C],
        [C, A],
      ] as const) {
        const bytes = pairOf(after, s, d).bytes - pairOf(before, s, d).bytes;
        const packets = pairOf(after, s, d).packets - pairOf(before, s, d).packets;
        t.diagnostic(`${mode}: ${s} → ${d}: ${bytes} bytes in ${packets} packets for ${MB} bytes of payload (+${(((bytes - MB) / MB) * 100).toFixed(2)} %)`);
        assert.ok(bytes >= MB && bytes <= MB * 1.08, `${s} → ${d}: ${bytes} bytes counted for ${MB} payload bytes`);
      }

      const beforeDrop = await clusterTraffic();
      assert.equal(await lab.connect('a', B, CLOSED, 1), null);
      const afterDrop = await clusterTraffic();
      assert.deepEqual([pairOf(afterDrop, A, B), pairOf(afterDrop, B, A)], [pairOf(beforeDrop, A, B), pairOf(beforeDrop, B, A)], 'a denied connection counts nothing');
    });

    test('CIDR rules: a prefix with an exception, on one port, through the masquerade', async () => {
      policies = [
        cnp('a-to-world', {
          endpointSelector: { matchLabels: { app: 'a' } },
          egress: [{ toCIDRSet: [{ cidr: '198.51.100.0/24', except: [`${WORLD_2}/32`] }], toPorts: [{ ports: [{ port: '8443', protocol: 'TCP' }] }] }],
        }),
      ];
      await applyAll();
      await eventsOf('node-1', 0);
      assert.equal(await lab.connect('a', WORLD_1, 8443), `world ${NODE_1}`, 'inside the prefix, on its port (masqueraded to the node)');
      const blocked = await Promise.all([lab.connect('a', WORLD_1, 9443, 1), lab.connect('a', WORLD_2, 8443, 1), lab.connect('a', B, 8080, 1)]);
      assert.deepEqual(blocked, [null, null, null], 'another port; the exception; a pod outside the rule');
      const events = await eventsOf('node-1');
      const except = events.find((e) => e.type === 'drop' && e.tuple.destination === WORLD_2);
      assert.ok(except, show(events));
      assert.deepEqual([except.reasonName, except.direction, except.endpoint, except.tuple.source, except.tuple.destinationPort], ['POLICY_DENIED', 'egress', 'default/a', A, 8443]);
    });

    test('ClusterIP: translated per connection to its backends; replies come back from the ClusterIP', async () => {
      policies = [];
      services = [
        { key: 'default/web:80/TCP', clusterIP: VIP, port: 80, protocol: 'TCP', backends: [{ ip: B, port: 8080 }, { ip: C, port: 8080 }] },
        { key: 'default/b:80/TCP', clusterIP: B_VIP, port: 80, protocol: 'TCP', backends: [{ ip: B, port: 8080 }] },
      ];
      await applyAll();
      const seen = new Set<string>();
      for (let i = 0; i < 24 && seen.size < 2; i++) {
        // bash's /dev/tcp connects only when the SYN-ACK comes from the address it dialled:
        // a greeting proves the reply was translated back to the ClusterIP.
        const g = await lab.connect('a', VIP, 80);
        assert.ok(g === `b ${A}` || g === `c ${A}`, `greeting ${g}`);
        seen.add(g.split(' ')[0]!);
      }
      assert.deepEqual([...seen].sort(), ['b', 'c'], 'both backends serve');
      assert.equal(await lab.connect('c', B_VIP, 80), `b ${C}`, 'from the other node');
      const conn = await lab.openConnection('a', VIP, 80);
      try {
        for (let i = 0; i < 5; i++) assert.equal(await conn.echo(`x${i}`), `x${i}`, 'one connection stays on its backend');
      } finally {
        conn.close();
      }
      assert.equal((await agent('node-1').call<DatapathStatus>('status')).services, 2);
      services = [];
    });

    test('anti-spoofing: a pod cannot send from an address it was not given', async () => {
      policies = [];
      await applyAll();
      recorded();
      await eventsOf('node-1', 0);
      // Written by hand (IP_HDRINCL): another pod's address, and one of the node's pod range nobody has.
      await Promise.all([
        lab.rawIp(lab.pod('a').netns, ['spoof-udp', C, B, '5000', '2', 'as-c']),
        lab.rawIp(lab.pod('a').netns, ['spoof-udp', '10.244.1.99', B, '5000', '2', 'as-nobody']),
      ]);
      const own = await lab.udpAsk('a', B, 5000);
      assert.equal(own?.reply, 'question', 'its own address works');
      assert.deepEqual(recorded(), [`${A} question`], 'b received nothing spoofed');
      const events = await eventsOf('node-1');
      const spoofed = events.filter((e) => e.reasonName === 'INVALID_SOURCE_IP');
      assert.equal(spoofed.length, 4, show(events));
      for (const e of spoofed) {
        assert.deepEqual(
          [e.type, e.verdict, e.reason, e.endpoint, e.direction, e.tuple.protocol, e.tuple.destination, e.tuple.destinationPort],
          ['drop', 'dropped', 132, 'default/a', 'egress', 'UDP', B, 5000],
          show([e]),
        );
      }
      assert.deepEqual(spoofed.map((e) => e.tuple.source).sort(), [C, C, '10.244.1.99', '10.244.1.99'].sort());
    });

    test('L7 HTTP: steered to the transparent proxy (same node, across nodes, egress and ingress), which connects onward as the client', async () => {
      extra = { httpProxyPort: HTTP_PROXY, dnsProxyPort: DNS_PROXY };
      const http = { ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } };
      policies = [
        cnp('a-l7', { endpointSelector: { matchLabels: { app: 'a' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'web' } }, { matchLabels: { app: 'c' } }], toPorts: [http] }] }),
        cnp('web-l7', { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a' } }, { matchLabels: { app: 'c' } }], toPorts: [http] }] }),
      ];
      await applyAll();
      for (const n of lab.nodes) await seenBy(n.name);
      await eventsOf('node-1', 0);
      const st = await agent('node-1').call<DatapathStatus>('status');
      assert.deepEqual(st.endpoints.flatMap((e) => e.unenforceable), [], 'L7 is enforceable with a proxy');

      assert.equal(await lab.connect('a', B, 8080), `b ${A}`, 'same node: b sees a as the client');
      let seen = await seenBy('node-1');
      assert.deepEqual(seen.map((x) => [x.proxy, x.original, x.client.split(':')[0]]), [['http', `${B}:8080`, A]]);

      assert.equal(await lab.connect('a', C, 8080), `c ${A}`, 'across nodes, egress');
      seen = await seenBy('node-1');
      assert.deepEqual(seen.map((x) => [x.original, x.client.split(':')[0]]), [[`${C}:8080`, A]]);
      const conn = await lab.openConnection('a', C, 8080);
      try {
        for (let i = 0; i < 3; i++) assert.equal(await conn.echo(`through-proxy-${i}`), `through-proxy-${i}`);
      } finally {
        conn.close();
      }
      await seenBy('node-1');

      assert.equal(await lab.connect('c', B, 8080), `b ${C}`, 'across nodes, ingress');
      seen = await seenBy('node-1');
      assert.deepEqual(seen.map((x) => [x.original, x.client.split(':')[0]]), [[`${B}:8080`, C]]);
      assert.deepEqual(await seenBy('node-2'), [], "node-2's proxy is not involved");

      assert.deepEqual(await Promise.all([lab.connect('a', B, CLOSED, 1), lab.connect('c', B, CLOSED, 1)]), [null, null], 'what no rule allows stays dropped');
    });

    test('events: a connection steered to the proxy is a policy verdict `redirected`', async () => {
      await eventsOf('node-1', 0);
      assert.equal(await lab.connect('a', B, 8080), `b ${A}`);
      await seenBy('node-1');
      const events = await eventsOf('node-1');
      const redirected = events.find((e) => e.verdict === 'redirected' && e.endpoint === 'default/a' && e.tuple.destination === B);
      assert.ok(redirected, show(events));
      assert.deepEqual(
        [redirected.type, redirected.reason, redirected.direction, redirected.policy?.decision, redirected.tuple.source, redirected.tuple.destinationPort, redirected.tuple.protocol],
        ['policy-verdict', 0, 'egress', 'redirected', A, 8080, 'TCP'],
        show([redirected]),
      );
    });

    test('L7 DNS: a ClusterIP over UDP and TCP goes to the DNS proxy; the answer comes from the ClusterIP', async () => {
      services = [
        { key: 'kube-system/kube-dns:53/UDP', clusterIP: DNS_VIP, port: 53, protocol: 'UDP', backends: [{ ip: C, port: 53 }] },
        { key: 'kube-system/kube-dns:53/TCP', clusterIP: DNS_VIP, port: 53, protocol: 'TCP', backends: [{ ip: C, port: 53 }] },
      ];
      policies = [
        cnp('a-dns-http', {
          endpointSelector: { matchLabels: { app: 'a' } },
          egress: [
            { toEndpoints: [{ matchLabels: { app: 'c' } }], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] },
            { toEndpoints: [{ matchLabels: { app: 'c' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] },
          ],
        }),
      ];
      await applyAll();
      await seenBy('node-1');
      // The proxy sees the backend as the original destination (the ClusterIP is translated first) and answers from it.
      const answer = new RegExp(`^dns ${re(C)}:53 ${re(A)}:\\d+$`);
      for (let i = 0; i < 2; i++) {
        const r = await lab.udpAsk('a', DNS_VIP, 53);
        assert.ok(r, 'an answer over UDP');
        assert.equal(r.from, `${DNS_VIP}:53`, 'the answer comes from the address asked');
        assert.match(r.reply, answer);
      }
      assert.match((await lab.connect('a', DNS_VIP, 53)) ?? '', answer, 'over TCP, from the ClusterIP');
      const seen = await seenBy('node-1');
      assert.deepEqual(seen.map((x) => x.proxy).sort(), ['dns-tcp', 'dns-udp', 'dns-udp']);
      assert.ok(seen.every((x) => x.original === `${C}:53`), JSON.stringify(seen));
      assert.equal(await lab.connect('a', C, CLOSED, 1), null, 'other ports of the same peer stay closed');
    });

    test('L7 fail closed: while no proxy listens, steered traffic is dropped, never passed', async () => {
      await agent('node-1').call('proxies-close');
      await eventsOf('node-1', 0);
      // c itself answers on 53 (TCP and UDP) and 8080: anything that passed would get through.
      const results = await Promise.all([lab.udpAsk('a', DNS_VIP, 53, 1), lab.connect('a', DNS_VIP, 53, 1), lab.connect('a', C, 8080, 1)]);
      assert.deepEqual(results, [null, null, null], 'DNS over UDP and TCP, HTTP');
      const events = await eventsOf('node-1');
      for (const [proto, port] of [['UDP', 53], ['TCP', 53], ['TCP', 8080]] as const) {
        const e = events.find((x) => x.type === 'drop' && x.tuple.protocol === proto && x.tuple.destinationPort === port);
        assert.ok(e, `${proto} ${port}: ${show(events)}`);
        assert.deepEqual([e.verdict, e.endpoint, e.tuple.source, e.tuple.destination], ['dropped', 'default/a', A, C], show([e]));
      }
      // And back: the kernel state never changed, the listener alone was missing.
      await agent('node-1').call('proxies', { httpPort: HTTP_PROXY, dnsPort: DNS_PROXY });
      assert.match((await lab.udpAsk('a', DNS_VIP, 53))?.reply ?? '', /^dns /);
    });

    test('toFQDNs: learned addresses on their port only; a forgotten one takes no new connection, an open one goes on; with L7 through the masquerade', async (t) => {
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
      const learn = (learned: Record<string, string[]>) => {
        extra = { ...extra, learned };
        return agent('node-1').call<ApplyResult>('apply', { world: lab.world('node-1', policies, services, extra) });
      };
      await learn({ 'api.example.com': [WORLD_1] });
      assert.equal(await lab.connect('a', WORLD_1, 8443), `world ${NODE_1}`, 'a learned address on its port');
      assert.deepEqual(await Promise.all([lab.connect('a', WORLD_1, 9443, 1), lab.connect('a', WORLD_2, 8443, 1)]), [null, null], 'another port; an address not learned');

      // The DNS proxy's case: one address more or less for a name in force, while it holds the answer.
      const grow = await learn({ 'api.example.com': [WORLD_1, WORLD_2] });
      assert.deepEqual([grow.full, grow.endpointsProgrammed, grow.ipcacheChanges], [false, 0, 1], JSON.stringify(grow));
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        times.push((await learn({ 'api.example.com': [WORLD_1] })).durationMs);
        times.push((await learn({ 'api.example.com': [WORLD_1, WORLD_2] })).durationMs);
      }
      times.sort((x, y) => x - y);
      t.diagnostic(`${mode}: FQDN-only apply (one /32 added or removed): median ${times[times.length >> 1]} ms, max ${times.at(-1)} ms over ${times.length}`);
      assert.ok(times[times.length >> 1]! < 100, "well inside the DNS proxy's 100 ms hold");
      const open = await lab.openConnection('a', WORLD_2, 8443);
      try {
        const shrink = await learn({ 'api.example.com': [WORLD_1] });
        assert.deepEqual([shrink.full, shrink.endpointsProgrammed, shrink.ipcacheChanges], [false, 0, 1], 'one address forgotten: one change, no policy rewrite');
        assert.equal(await lab.connect('a', WORLD_2, 8443, 1), null, 'a forgotten address takes no new connection');
        assert.equal(await open.echo('still-open'), 'still-open', 'an open one goes on');
      } finally {
        open.close();
      }

      // With HTTP rules: the proxy connects to the world as a; the answer returns
      // to the node's address (masquerade) and finds the proxy's socket.
      await seenBy('node-1');
      await learn({ 'api.example.com': [WORLD_1], 'www.example.com': [WORLD_1] });
      assert.equal(await lab.connect('a', WORLD_1, 8080), `world ${NODE_1}`);
      assert.deepEqual((await seenBy('node-1')).map((x) => [x.proxy, x.original, x.client.split(':')[0]]), [['http', `${WORLD_1}:8080`, A]]);
      assert.equal(await lab.connect('a', WORLD_2, 8080, 1), null, 'not learned for www');
      extra = {};
    });

    test('restart: the datapath process killed, forwarding and policy go on; a new process adopts the state and changes it', async (t) => {
      policies = [WEB_FROM_A, A_NOT_WEB_CLOSED];
      services = [{ key: 'default/web:80/TCP', clusterIP: VIP, port: 80, protocol: 'TCP', backends: [{ ip: B, port: 8080 }] }];
      await applyAll();
      const observe = async (what: string): Promise<void> => {
        const seen = await Promise.all([lab.connect('a', B, 8080), lab.connect('a', VIP, 80), lab.connect('a', C, 8080), lab.connect('c', B, 8080, 1), lab.connect('a', B, CLOSED, 1)]);
        // forwarding and the allow, the ClusterIP, across nodes; default deny, the deny rule
        assert.deepEqual(seen, [`b ${A}`, `b ${A}`, `c ${A}`, null, null], what);
      };
      const established = await lab.openConnection('a', B, 8080);
      try {
        const deniedBeforeKill = packets(await dropsOf('node-1'), 'default/b', 'ingress', 'POLICY_DENIED');
        const trafficBeforeKill = pairOf(await agent('node-1').call<TrafficCounter[]>('traffic'), A, B);
        assert.ok(trafficBeforeKill.bytes > 0);
        await agent('node-1').kill();
        await observe('without its process');
        assert.equal(await established.echo('no-process'), 'no-process');

        const fresh = await lab.startAgent('node-1');
        agents!.set('node-1', fresh);
        await fresh.call('setup', { node: lab.networkOf(lab.node('node-1')), peers: lab.peersOf(lab.node('node-1')) });
        await fresh.call<ApplyResult>('apply', { world: lab.world('node-1', policies, services, extra) });
        await observe('adopted by a new process');
        assert.equal(await established.echo('adopted'), 'adopted', 'an open connection survives the adoption');
        const again = await fresh.call<ApplyResult>('apply', { world: lab.world('node-1', policies, services, extra) });
        assert.deepEqual([again.full, again.endpointsProgrammed, again.ipcacheChanges], [false, 0, 0], JSON.stringify(again));
        // Traffic counts live in the kernel: the new process reads on from where the old one was.
        const trafficAdopted = pairOf(await fresh.call<TrafficCounter[]>('traffic'), A, B);
        assert.ok(trafficAdopted.bytes > trafficBeforeKill.bytes, `a → b bytes ${trafficBeforeKill.bytes} before the kill, ${trafficAdopted.bytes} after adoption`);
        const st = await fresh.call<DatapathStatus>('status');
        assert.deepEqual([st.services, st.endpoints.find((e) => e.endpoint === 'default/b')?.ingressEnforced], [1, true]);

        // The new process counts and reports.
        await eventsOf('node-1', 0);
        const before = await dropsOf('node-1');
        // Whether counts survive a restart is not (yet) in the contract: shown, not asserted.
        t.diagnostic(`${mode}: default/b ingress POLICY_DENIED packets ${deniedBeforeKill} before the kill, ${packets(before, 'default/b', 'ingress', 'POLICY_DENIED')} after adoption`);
        assert.equal(await lab.connect('c', B, 8080, 1), null);
        const after = await dropsOf('node-1');
        assert.ok(packets(after, 'default/b', 'ingress', 'POLICY_DENIED') > packets(before, 'default/b', 'ingress', 'POLICY_DENIED'), JSON.stringify(after));
        const events = await eventsOf('node-1');
        assert.ok(events.some((e) => e.reasonName === 'POLICY_DENIED' && e.endpoint === 'default/b' && e.tuple.source === C), show(events));

        // And it changes policy: c may now reach b too.
        policies = [
          netpol('web-from-a', {
            podSelector: { matchLabels: { app: 'web' } },
            policyTypes: ['Ingress'],
            ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'c'] }] } }], ports: tcp(8080) }],
          }),
        ];
        const changed = await fresh.call<ApplyResult>('apply', { world: lab.world('node-1', policies, services, extra) });
        assert.ok(changed.endpointsProgrammed >= 1, JSON.stringify(changed));
        assert.equal(await lab.connect('c', B, 8080), `b ${C}`);
        assert.equal(await established.echo('changed'), 'changed');
      } finally {
        established.close();
      }
    });
  });
}
