/**
 * The datapath's per-address counters → totals per workload pair
 * (TrafficTracker): addresses named as flows name them, deltas added so the
 * totals only grow, a pair evicted and counted again from zero adds its new
 * value, and palisade_traffic_*_total publish the totals.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Datapath, TrafficCounter } from '../datapath/index.ts';
import { FlowMetrics } from '../flows/index.ts';
import type { KubeObject } from '../k8s/index.ts';
import { PolicyEngine } from '../policy/index.ts';
import { TrafficTracker } from './agent-traffic.ts';
import type { FlowContext } from './flow-events.ts';

const pod = (name: string, ip: string, labels: Record<string, string>): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', labels }, spec: { nodeName: 'node-1', containers: [{ name: 'c' }] }, status: { podIP: ip } }) as KubeObject;

const engine = new PolicyEngine();
engine.upsert({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: {} } } as KubeObject);
engine.upsert(pod('frontend-7d4b9c8f6-x2x9z', '10.244.1.4', { app: 'frontend' }));
engine.upsert(pod('backend-0', '10.244.2.2', {}));
const snapshot = engine.snapshot();
const ctx: FlowContext = { node: 'node-1', snapshot: () => snapshot, fqdns: () => [], ownAddresses: () => ['172.31.0.11'], peerAddresses: () => ['172.31.0.12'] };

/** A datapath whose readTraffic returns what the test set last. */
function fakeDatapath(): { dp: Datapath; set(c: TrafficCounter[]): void } {
  let counters: TrafficCounter[] = [];
  const dp = { readTraffic: async () => counters.map((c) => ({ ...c })) } as unknown as Datapath;
  return { dp, set: (c) => (counters = c) };
}

const FE = '10.244.1.4';
const BE = '10.244.2.2';
const WORLD = '198.51.100.7';

test('totals per workload pair grow by what each address pair grew; an evicted pair that comes back adds its new count', async (t) => {
  const { dp, set } = fakeDatapath();
  const metrics = new FlowMetrics();
  const tracker = new TrafficTracker(dp, ctx, metrics);
  assert.deepEqual(await tracker.totals(), [], 'nothing read before start (no snapshot to name addresses by)');
  tracker.start((err) => assert.fail(String(err)));
  t.after(() => tracker.stop());

  set([
    { source: FE, destination: BE, packets: 10, bytes: 10_000 },
    { source: BE, destination: FE, packets: 8, bytes: 400 },
    { source: WORLD, destination: FE, packets: 2, bytes: 120 },
    { source: '172.31.0.11', destination: FE, packets: 1, bytes: 60 },
  ]);
  await tracker.poll();
  const byPair = async (): Promise<Record<string, [number, number]>> =>
    Object.fromEntries((await tracker.totals()).map((r) => [`${r.source.namespace}/${r.source.workload} > ${r.destination.namespace}/${r.destination.workload}`, [r.packets, r.bytes]]));
  assert.deepEqual(await byPair(), {
    'shop/frontend > shop/backend-0': [10, 10_000],
    'shop/backend-0 > shop/frontend': [8, 400],
    '/world > shop/frontend': [2, 120],
    '/host > shop/frontend': [1, 60],
  });

  // Grew; then the world pair was evicted and came back from zero; the host pair left the map,
  // and in the reading after, came back from zero too.
  const grown: TrafficCounter[] = [
    { source: FE, destination: BE, packets: 15, bytes: 16_000 },
    { source: BE, destination: FE, packets: 8, bytes: 400 },
    { source: WORLD, destination: FE, packets: 1, bytes: 40 },
  ];
  set(grown);
  await tracker.poll();
  set([...grown, { source: '172.31.0.11', destination: FE, packets: 1, bytes: 60 }]);
  await tracker.poll();
  assert.deepEqual(await byPair(), {
    'shop/frontend > shop/backend-0': [15, 16_000],
    'shop/backend-0 > shop/frontend': [8, 400],
    '/world > shop/frontend': [3, 160],
    '/host > shop/frontend': [2, 120],
  });

  const text = await metrics.registry.metrics();
  assert.match(text, /palisade_traffic_bytes_total\{source_namespace="shop",source_workload="frontend",destination_namespace="shop",destination_workload="backend-0"\} 16000/);
  assert.match(text, /palisade_traffic_packets_total\{source_namespace="",source_workload="world",destination_namespace="shop",destination_workload="frontend"\} 3/);
});
