/** The aggregator from hand-made Hubble flows: what each view shows, and that its maps stay bounded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envelope, makeFlow, type Flow } from '../flows/index.ts';
import { allowFlow, dnsFlow, dropFlow, httpFlow, worldFlow } from '../../test/kit/flows.ts';
import { Aggregator } from './aggregator.ts';
import type { Count } from './api.ts';
import { workloadName } from './workload.ts';

const NOW = Date.parse('2026-12-07T22:00:00Z');
const iso = (msBefore: number): string => new Date(NOW - msBefore).toISOString().replace('Z', '000000Z');
const at = <F extends Flow>(f: F, msBefore = 0): F => ({ ...f, time: iso(msBefore) });
const record = (cs: Count[]): Record<string, number> => Object.fromEntries(cs.map((c) => [c.key, c.count]));

function agg(limits?: ConstructorParameters<typeof Aggregator>[0]['limits']): { a: Aggregator; add: (f: Flow) => void } {
  const a = new Aggregator({ source: 'lab test', now: () => NOW, ...(limits ? { limits } : {}) });
  let seq = 0;
  return { a, add: (f) => a.add(envelope(f), seq++) };
}

test('a drop names its policy, reason, source and destination workload, and lands in the series and recent list', () => {
  const { a, add } = agg();
  add(at(dropFlow(), 3000));
  const s = a.snapshot();
  assert.equal(s.drops.total, 1);
  assert.deepEqual(record(s.drops.byPolicy), { 'default/deny-frontend': 1 });
  assert.deepEqual(record(s.drops.byReason), { POLICY_DENIED: 1 });
  assert.deepEqual(record(s.drops.bySource), { 'default/frontend': 1 });
  assert.deepEqual(record(s.drops.byDestination), { 'default/backend': 1 });
  const withDrop = s.drops.series.filter((p) => p.values['POLICY_DENIED'] === 1);
  assert.equal(withDrop.length, 1);
  assert.equal(s.drops.recent[0]?.policies[0], 'default/deny-frontend');
  assert.equal(s.drops.recent[0]?.dropReason, 'POLICY_DENIED');
  assert.equal(s.totals.dropped, 1);

  // A drop no policy names (a default deny without policies, say) says so.
  add(at({ ...dropFlow(), ingress_denied_by: undefined }, 1000));
  assert.deepEqual(record(a.snapshot().drops.byPolicy), { 'default/deny-frontend': 1, '(no policy)': 1 });
});

test("an edge's verdict goes forwarded → mixed; workloads are grouped by namespace; rates count the window", () => {
  const { a, add } = agg();
  add(at(allowFlow(), 2000));
  let s = a.snapshot();
  assert.deepEqual(s.map.namespaces, ['default']);
  assert.deepEqual(s.map.workloads.map((w) => w.id), ['default/backend', 'default/frontend']);
  let edge = s.map.edges.find((e) => e.id === 'default/frontend->default/backend');
  assert.equal(edge?.verdict, 'forwarded');
  assert.deepEqual(edge?.ports, ['80/TCP']);
  add(at(dropFlow(), 1000));
  s = a.snapshot();
  edge = s.map.edges.find((e) => e.id === 'default/frontend->default/backend');
  assert.equal(edge?.verdict, 'mixed');
  assert.equal(edge?.forwarded, 1);
  assert.equal(edge?.dropped, 1);
  assert.equal(edge?.rate, 2 / s.rateWindowSeconds);
  assert.equal(s.map.edges.length, 1, 'one edge per workload pair');
  assert.equal(s.totals.flows, 2);

  // Only drops within the window: dropped.
  const only = agg();
  only.add(at(dropFlow(), 500));
  assert.equal(only.a.snapshot().map.edges[0]?.verdict, 'dropped');
});

test('HTTP: a 403 by policy lands in topDenied; methods, statuses, latency buckets; the L7 badge and the endpoint card', () => {
  const { a, add } = agg();
  add(at(httpFlow(undefined, 'REQUEST'), 900));
  add(at({ ...httpFlow(undefined, 'RESPONSE'), is_reply: false }, 880)); // 503 after 12 ms, recorded client → server as the HTTP proxy does
  const denied = httpFlow(undefined, 'REQUEST');
  denied.verdict = 'DROPPED';
  denied.l7 = { type: 'REQUEST', http: { method: 'POST', url: 'http://backend/admin?token=1' } };
  add(at(denied, 500));
  const answer = httpFlow(undefined, 'RESPONSE');
  answer.is_reply = false;
  answer.verdict = 'DROPPED';
  answer.l7 = { type: 'RESPONSE', http: { code: 403, method: 'POST', url: 'http://backend/admin?token=1' } };
  answer.ingress_denied_by = [{ name: 'l7-rules', namespace: 'default' }];
  add(at(answer, 499));

  const s = a.snapshot();
  assert.equal(s.http.requests, 2);
  assert.deepEqual(record(s.http.byMethod), { GET: 1, POST: 1 });
  assert.deepEqual(record(s.http.byStatus), { '503': 1, '403': 1 });
  assert.deepEqual(s.http.topDenied, [{ method: 'POST', path: '/admin', destination: 'default/backend', count: 1 }]);
  const lat = s.http.latency.find((p) => Object.keys(p.values).length > 0);
  assert.deepEqual(lat?.values, { '0.025': 1 });
  assert.equal(s.http.latencyBuckets.length + 1, 12);
  // The denial is one drop (its request), not two.
  assert.equal(s.drops.total, 1);
  assert.deepEqual(record(s.drops.byReason), { L7_HTTP_DENIED: 1 });
  const edge = s.map.edges[0];
  assert.equal(edge?.l7, true);
  assert.equal(edge?.verdict, 'mixed');
  const backend = s.map.workloads.find((w) => w.id === 'default/backend');
  assert.deepEqual(backend?.endpoints.map((e) => `${e.method} ${e.path} ${e.count}`).sort(), ['GET /api/v1 1', 'POST /admin 1']);
  const cell = s.heat.cells[0];
  assert.equal(cell?.requests, 2);
  assert.equal(cell?.latencyMsAvg, 12);
  assert.equal(s.http.recent.length, 4);
  assert.equal(s.http.recent[0]?.l7, 'HTTP POST /admin → 403');
});

test('DNS: queries per name, rcodes (a refused query has no answer record), the DNS badge, names → IPs', () => {
  const { a, add } = agg();
  add(at(dnsFlow(undefined, 'REQUEST'), 300));
  // As the DNS proxy records an answer: server → pod, a reply.
  const answer = dnsFlow(undefined, 'RESPONSE');
  add(at({ ...answer, source: answer.destination, destination: answer.source, IP: { source: '10.96.0.10', destination: '10.244.1.7', ipVersion: 'IPv4' }, l4: { UDP: { source_port: 53, destination_port: 53001 } } }, 290));
  const refused = dnsFlow(undefined, 'REQUEST');
  refused.verdict = 'DROPPED';
  refused.l7 = { type: 'REQUEST', dns: { query: 'evil.example.', qtypes: ['A'], rcode: 5 } };
  add(at(refused, 100));
  const s = a.snapshot();
  assert.equal(s.dns.queries, 2);
  const byName = Object.fromEntries(s.dns.names.map((n) => [n.name, n]));
  assert.deepEqual(byName['api.github.com.']?.rcodes, { NOERROR: 1 });
  assert.deepEqual(byName['api.github.com.']?.lastIps, ['140.82.121.6']);
  assert.deepEqual(byName['evil.example.']?.rcodes, { REFUSED: 1 });
  const sum = (k: string): number => s.dns.series.reduce((n, p) => n + (p.values[k] ?? 0), 0);
  assert.equal(sum('queries'), 2);
  assert.equal(sum('REFUSED'), 1);
  assert.equal(sum('NOERROR'), 1);
  // The answer counts on the pod → server edge: one edge, not one each way.
  assert.deepEqual(s.map.edges.map((e) => `${e.id} ${e.forwarded}/${e.dropped}`), ['default/frontend->kube-system/coredns 2/1']);
  const edge = s.map.edges[0];
  assert.equal(edge?.dns, true);
  assert.deepEqual(edge?.ports, ['53/UDP']);
  // A connection to the answered address, its flow naming no DNS name: the map still draws it by name.
  add(at({ ...worldFlow(), destination_names: undefined }, 50));
  assert.ok(a.snapshot().map.edges.some((e) => e.id === 'default/frontend->world/api.github.com'));
  const fqdn = a.observedFqdn();
  assert.deepEqual(fqdn.nodes[0]?.entries.map((e) => [e.name, e.ips, e.pods]), [['api.github.com.', ['140.82.121.6'], ['default/frontend']]]);
});

test('world, host and reserved endpoints; replies draw no edge', () => {
  const { a, add } = agg();
  const world = makeFlow({
    time: iso(10), verdict: 'FORWARDED', node_name: 'node2', IP: { source: '10.244.1.7', destination: '140.82.121.6', ipVersion: 'IPv4' },
    source: { namespace: 'demo', pod_name: 'frontend-7d4b9c8f6-x2x9z', labels: ['k8s:io.kubernetes.pod.namespace=demo'] },
    destination: { identity: 2, labels: ['reserved:world'] }, destination_names: ['api.github.com'],
  });
  add(world);
  add({ ...world, destination_names: undefined, IP: { source: '10.244.1.7', destination: '1.2.3.4', ipVersion: 'IPv4' } });
  add({ ...world, destination: { identity: 1, labels: ['reserved:host'] } });
  add({ ...world, destination: { identity: 6, labels: ['reserved:remote-node'] } });
  add({ ...world, is_reply: true, source: world.destination, destination: world.source });
  const s = a.snapshot();
  assert.deepEqual(s.map.edges.map((e) => e.destination), ['host/node2', 'reserved/remote-node', 'world/1.2.3.4', 'world/api.github.com']);
  assert.deepEqual(s.map.namespaces, ['demo']);
  const kinds = Object.fromEntries(s.map.workloads.map((w) => [w.id, `${w.kind}:${w.namespace}`]));
  assert.equal(kinds['demo/frontend'], 'pod:demo');
  assert.equal(kinds['world/api.github.com'], 'world:world');
  assert.equal(kinds['host/node2'], 'host:host');
  assert.equal(s.totals.flows, 5);
  assert.equal(workloadName('coredns-5d78c9869d-abcde'), 'coredns');
  assert.equal(workloadName('web-proxy'), 'web-proxy');
  assert.equal(workloadName('ds-agent-x2x9z'), 'ds-agent');
  assert.equal(workloadName('web-0'), 'web-0');
});

test('bounded: edges past the limit evict the least recently seen; the snapshot caps edges and says how many it left out', () => {
  const { a, add } = agg({ edges: 100, snapshotEdges: 30, workloads: 1000, snapshotWorkloads: 1000 });
  for (let i = 0; i < 300; i++) {
    const f = allowFlow();
    add(at({ ...f, destination: { ...f.destination, pod_name: `b${i}`, labels: [`k8s:app=b${i}`] } }, 300 - i));
  }
  const s = a.snapshot();
  assert.equal(s.map.edges.length, 30);
  assert.ok(s.map.omitted !== undefined && s.map.omitted.edges > 0 && s.map.omitted.edges <= 70, JSON.stringify(s.map.omitted));
  // The newest edge survived eviction and, all rates equal, the most recent are the ones sent.
  assert.ok(s.map.edges.some((e) => e.destination === 'default/b299'));
  assert.ok(!s.map.edges.some((e) => e.destination === 'default/b0'));
  // Edges are sorted by id (a stable layout), and every edge's workloads are in the map.
  const ids = s.map.edges.map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort());
  const wl = new Set(s.map.workloads.map((w) => w.id));
  for (const e of s.map.edges) assert.ok(wl.has(e.source) && wl.has(e.destination));
});

test('flows older than the series window count in totals, not in series; a time ahead of the clock counts as now', () => {
  const { a, add } = agg();
  add(at(dropFlow(), 3_600_000));
  add({ ...dropFlow(), time: new Date(NOW + 60_000).toISOString() });
  const s = a.snapshot();
  assert.equal(s.drops.total, 2);
  const inSeries = s.drops.series.reduce((n, p) => n + (p.values['POLICY_DENIED'] ?? 0), 0);
  assert.equal(inSeries, 1);
  assert.equal(s.drops.series.length, 60);
  assert.equal(s.drops.series.at(-1)?.t, NOW - (NOW % 10_000));
});
