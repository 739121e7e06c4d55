/**
 * bench/flows: the agent's flow path at full speed, in one process.
 *
 *   logged packet (as NFLOG hands it over) ──► the legacy datapath's event decoder
 *   ──► flowFromEvent (endpoints and policy from a real policy snapshot) ──► FlowStore ring ──► FlowMetrics
 *
 * Prints events/s ingested and CPU time per 10,000 events, for the store
 * alone and for the whole path. The kernel side (NFLOG delivery) is measured
 * by the load test (test/e2e/flows-load.test.ts). Run: node bench/flows/run.ts [--events N] [--json]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PolicyEngine } from '../../src/policy/index.ts';
import { FlowMetrics, FlowStore, makeFlow } from '../../src/flows/index.ts';
import { flowFromEvent, type FlowContext } from '../../src/agent/flow-events.ts';
import { legacyEventFromPacket, type NflogPacket } from '../../src/datapath/index.ts';
import type { KubeObject } from '../../src/k8s/objects.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: '500000' }, json: { type: 'boolean', default: false } } });
const N = Number(values.events);

const engine = new PolicyEngine();
const objs: KubeObject[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } }];
for (let i = 0; i < 50; i++) {
  objs.push({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p${i}`, namespace: 'bench', labels: { app: `a${i % 5}` } },
    spec: { containers: [{ name: 'c' }] },
    status: { podIP: `10.244.1.${i + 2}` },
  });
}
objs.push({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'only-a0', namespace: 'bench' },
  spec: { endpointSelector: { matchLabels: { app: 'a1' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a0' } }] }] },
});
engine.batch((e) => objs.forEach((o) => e.upsert(o)));
const snap = engine.snapshot();
const ctx: FlowContext = { node: 'node-1', snapshot: () => snap, ownAddresses: () => ['172.31.0.11'], peerAddresses: () => ['172.31.0.12'], fqdns: () => [] };

const packets: NflogPacket[] = [];
for (let i = 0; i < 1024; i++) {
  const src = `10.244.1.${(i % 50) + 2}`;
  const dst = `10.244.1.${((i * 7) % 50) + 2}`;
  packets.push({
    group: 1,
    prefix: i % 3 === 0 ? 'd:e0:in:denied' : i % 3 === 1 ? 'a:e0:in' : 'f',
    mark: 0,
    family: 2,
    payloadLength: 60,
    ip: { src, dst, protocol: 'TCP', length: 60, ttl: 64, srcPort: 40000 + i, dstPort: 80, tcpFlags: 0x02 },
  } as NflogPacket);
}

function measure(name: string, fn: (i: number) => void): { name: string; eventsPerSec: number; cpuUsPer10k: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn(i);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { name, eventsPerSec: Math.round(N / wall), cpuUsPer10k: Math.round(((cpu.user + cpu.system) / N) * 10_000) };
}

const storeOnly = new FlowStore({ nodeName: 'node-1' });
const flow = makeFlow({ verdict: 'FORWARDED', node_name: 'node-1', IP: { source: '10.244.1.2', destination: '10.244.1.3', ipVersion: 'IPv4' } });
const r1 = measure('ring buffer only (prebuilt record)', () => storeOnly.addFlow(flow));

const store = new FlowStore({ nodeName: 'node-1' });
const metrics = new FlowMetrics();
store.onFlow((e) => metrics.observeFlow(e, 60));
const r2 = measure('packet → flow → ring → metrics', (i) => {
  const e = legacyEventFromPacket(packets[i & 1023]!);
  const f = e && flowFromEvent(ctx, e);
  if (f) store.addFlow(f);
});

const results = [r1, r2];
if (values.json) console.log(JSON.stringify({ events: N, results }));
else {
  console.log(`bench/flows — ${N.toLocaleString()} events each`);
  for (const r of results) console.log(`  ${r.name.padEnd(36)} ${r.eventsPerSec.toLocaleString().padStart(11)} events/s   ${r.cpuUsPer10k.toLocaleString().padStart(7)} µs CPU per 10,000 events`);
  console.log(`  target: 200,000 events/s on one node → ${r2.eventsPerSec >= 200_000 ? 'PASS' : 'FAIL'} (whole path)`);
}
