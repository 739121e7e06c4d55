/** Hubble metric names and labels after observing flows; the context label cap; the metrics listener. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { envelope, makeFlow } from './flow.ts';
import { FlowMetrics, startMetricsServer } from './metrics.ts';
import { FlowStore } from './store.ts';
import { allowFlow, dnsFlow, dropFlow, httpFlow, worldFlow } from '../../test/kit/flows.ts';

const servers: Server[] = [];
after(async () => { for (const s of servers) await new Promise((r) => s.close(r)); });

/** The exposition's samples, labels parsed, in order. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(l);
    if (!m) throw new Error(`unparsed sample: ${l}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = v as string;
    return { name: m[1] as string, labels, value: Number(m[3]) };
  });
}

/** Fails unless exactly one sample of `name` carries all of `labels` (other labels any), with `value`. */
function assertSample(text: string, name: string, labels: Record<string, string>, value: number): void {
  const hits = samples(text).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(hits.length, 1, `${name}${JSON.stringify(labels)}: ${hits.length} samples\n--- got:\n${text}`);
  assert.equal(hits[0]?.value, value, `${name}${JSON.stringify(labels)}`);
}

const FRONT_TO_BACK = { source: 'default/frontend', destination: 'default/backend', source_namespace: 'default', source_workload: 'frontend', destination_namespace: 'default', destination_workload: 'backend' };

test('observing flows produces Hubble series with context labels', async () => {
  const m = new FlowMetrics();
  const store = new FlowStore({ nodeName: 'n1', capacity: 2 });
  m.trackLostEvents(() => store.status().lost);
  store.onFlow((e) => m.observeFlow(e, 60));
  for (const f of [dropFlow(), allowFlow(), httpFlow(undefined, 'REQUEST'), httpFlow(undefined, 'RESPONSE'), dnsFlow(undefined, 'REQUEST'), dnsFlow(undefined, 'RESPONSE'), worldFlow()]) store.addFlow(f);
  store.recordLost('PERF_EVENT_RING_BUFFER', 3);
  const text = await m.registry.metrics();
  const ingress = { ...FRONT_TO_BACK, traffic_direction: 'ingress' };
  const toDns = { source: 'default/frontend', destination: 'kube-system/coredns-5d78c9869d-abcde', destination_namespace: 'kube-system', destination_workload: 'kube-dns', traffic_direction: 'egress' };
  const toWorld = { source_workload: 'frontend', destination: 'world', destination_namespace: '', destination_workload: 'world', traffic_direction: 'egress' };
  assertSample(text, 'hubble_flows_processed_total', { ...ingress, protocol: 'TCP', type: 'Drop', subtype: '', verdict: 'DROPPED' }, 1);
  assertSample(text, 'hubble_flows_processed_total', { ...ingress, protocol: 'TCP', type: 'PolicyVerdict', subtype: '', verdict: 'FORWARDED' }, 1);
  assertSample(text, 'hubble_flows_processed_total', { ...ingress, protocol: 'HTTP', type: 'L7', subtype: 'HTTP', verdict: 'FORWARDED' }, 2);
  assertSample(text, 'hubble_flows_processed_total', { ...toWorld, protocol: 'TCP', type: 'Trace', subtype: 'to-network', verdict: 'FORWARDED' }, 1);
  assertSample(text, 'hubble_drop_total', { ...ingress, reason: 'POLICY_DENIED', protocol: 'TCP' }, 1);
  assertSample(text, 'hubble_policy_verdicts_total', { ...ingress, direction: 'ingress', match: 'l3-l4', action: 'forwarded' }, 1);
  assertSample(text, 'hubble_policy_verdicts_total', { ...ingress, direction: 'ingress', match: 'l7/http', action: 'forwarded' }, 1);
  assertSample(text, 'hubble_http_requests_total', { ...ingress, method: 'GET', protocol: 'HTTP/1.1', status: '503', reporter: 'server' }, 1);
  assertSample(text, 'hubble_http_request_duration_seconds_bucket', { ...ingress, le: '0.025', method: 'GET', reporter: 'server' }, 1);
  assertSample(text, 'hubble_dns_queries_total', { ...toDns, rcode: '', qtypes: 'A', ips_returned: '0', query: 'api.github.com.' }, 1);
  assertSample(text, 'hubble_dns_responses_total', { ...toDns, rcode: 'No Error', qtypes: 'A', ips_returned: '1', query: 'api.github.com.' }, 1);
  assertSample(text, 'hubble_lost_events_total', { source: 'perf_event_ring_buffer' }, 3);
  assertSample(text, 'hubble_lost_events_total', { source: 'hubble_ring_buffer' }, 0);
  assertSample(text, 'palisade_drop_packets_total', { ...ingress, direction: 'ingress', reason: 'POLICY_DENIED' }, 1);
  assertSample(text, 'palisade_drop_bytes_total', { ...ingress, direction: 'ingress', reason: 'POLICY_DENIED' }, 60);
  assertSample(text, 'palisade_forward_packets_total', { ...toWorld, direction: 'egress', reason: 'forwarded' }, 1);
  // Hubble's order: labelsContext first, then source and destination, then the metric's own labels.
  const drop = samples(text).find((s) => s.name === 'hubble_drop_total');
  assert.deepEqual(Object.keys(drop?.labels ?? {}), ['source_namespace', 'source_workload', 'destination_namespace', 'destination_workload', 'traffic_direction', 'source', 'destination', 'reason', 'protocol']);
  // Flags count forwarded packets only: not the drop, not the policy verdict, not L7 (the world flow has ACK+PSH).
  assert.ok(!text.includes('hubble_tcp_flags_total{'), text);
});

test('workload: the record\'s workload, else the app label, else the pod name; reserved endpoints by their identity', async () => {
  const m = new FlowMetrics({ contextLabels: [], labelsContext: ['source_pod', 'source_namespace', 'source_workload', 'source_app', 'destination_workload'] });
  const udp = { UDP: { source_port: 1, destination_port: 2 } };
  const host = { labels: ['reserved:host'] };
  m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l4: udp, source: { namespace: 'a', pod_name: 'web-7d9f-x1', labels: ['k8s:app=web', 'k8s:app.kubernetes.io/name=shop'], workloads: [{ name: 'web', kind: 'Deployment' }] }, destination: host })));
  m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l4: udp, source: { namespace: 'a', pod_name: 'api-1', labels: ['k8s:k8s-app=api'] }, destination: { labels: ['reserved:world', 'reserved:kube-apiserver'] } })));
  m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l4: udp, source: { namespace: 'b', pod_name: 'lonely' }, destination: { labels: ['reserved:remote-node'] } })));
  m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l4: udp, source: { labels: ['reserved:world'] } })));
  const text = await m.registry.metrics();
  const flows = samples(text).filter((s) => s.name === 'hubble_flows_processed_total').map((s) => s.labels);
  const ctx = (l: Record<string, string>): string[] => [l['source_pod'], l['source_namespace'], l['source_workload'], l['source_app'], l['destination_workload']] as string[];
  assert.deepEqual(flows.map(ctx), [
    ['web-7d9f-x1', 'a', 'web', 'shop', 'host'],
    ['api-1', 'a', 'api', 'api', 'kube-apiserver'],
    ['lonely', 'b', 'lonely', '', 'remote-node'],
    ['', '', 'world', '', ''],
  ]);
  assert.ok(samples(text).filter((s) => s.name !== 'hubble_lost_events_total').every((s) => !('traffic_direction' in s.labels) && !('source' in s.labels) && !('destination_namespace' in s.labels)), 'only the labels asked for');
});

test('tcp flags and no context labels', async () => {
  const m = new FlowMetrics({ contextLabels: [], labelsContext: [] });
  m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l4: { TCP: { flags: { SYN: true, ACK: true } } }, IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' } })));
  m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l4: { TCP: { flags: { FIN: true } } }, IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' } })));
  const text = await m.registry.metrics();
  assert.ok(text.includes('hubble_tcp_flags_total{flag="SYN-ACK",family="IPv4"} 1'), text);
  assert.ok(text.includes('hubble_tcp_flags_total{flag="FIN",family="IPv4"} 1'), text);
  assert.ok(text.includes('hubble_flows_processed_total{protocol="TCP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 2'), text);
});

test('context labels are capped: new values beyond the cap count as "other"', async () => {
  const m = new FlowMetrics({ contextLabels: ['source'], labelsContext: ['source_workload'], maxContextValues: 2 });
  for (const pod of ['a', 'b', 'c', 'd', 'a']) {
    m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', source: { namespace: 'ns', pod_name: pod }, l4: { UDP: {} } })));
  }
  for (const query of ['x.test.', 'y.test.', 'z.test.']) m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l7: { type: 'REQUEST', dns: { query, qtypes: ['A'] } } })));
  const text = await m.registry.metrics();
  const series = text.split('\n').filter((l) => l.startsWith('hubble_flows_processed_total{') && l.includes('UDP'));
  assert.deepEqual(series.sort(), [
    'hubble_flows_processed_total{source_workload="a",source="ns/a",protocol="UDP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 2',
    'hubble_flows_processed_total{source_workload="b",source="ns/b",protocol="UDP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 1',
    'hubble_flows_processed_total{source_workload="other",source="other",protocol="UDP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 2',
  ]);
  const queries = samples(text).filter((s) => s.name === 'hubble_dns_queries_total').map((s) => s.labels['query']);
  assert.deepEqual(queries, ['x.test.', 'y.test.', 'other']);
});

test('a refused DNS query also counts as the REFUSED response the pod got, from the server to the pod', async () => {
  const m = new FlowMetrics({ contextLabels: [] });
  const refused = dnsFlow(undefined, 'REQUEST');
  refused.verdict = 'DROPPED';
  refused.l7 = { type: 'REQUEST', dns: { query: 'evil.example.com.', qtypes: ['A'], rcode: 5 } };
  m.observeFlow(envelope(refused));
  const text = await m.registry.metrics();
  assertSample(text, 'hubble_dns_queries_total', { source_workload: 'frontend', destination_workload: 'kube-dns', rcode: '', query: 'evil.example.com.' }, 1);
  assertSample(text, 'hubble_dns_responses_total', { source_workload: 'kube-dns', destination_workload: 'frontend', rcode: 'Query Refused', ips_returned: '0', query: 'evil.example.com.' }, 1);
});

test('tcp flags and forwarded packets come from trace events (legacy) or from policy verdicts (eBPF), never both', async () => {
  // The trace carries a SYN, the policy verdict a SYN-ACK and the REDIRECTED verdict, to tell which one was counted.
  const trace = envelope(makeFlow({ verdict: 'FORWARDED', event_type: { type: 4, sub_type: 0 }, l4: { TCP: { flags: { SYN: true } } } }));
  const verdict = envelope(makeFlow({ verdict: 'REDIRECTED', event_type: { type: 9, sub_type: 0 }, l4: { TCP: { flags: { SYN: true, ACK: true } } } }));
  for (const [from, flag, reason] of [['trace', 'SYN', 'forwarded'], ['policy-verdict', 'SYN-ACK', 'redirected']] as const) {
    const m = new FlowMetrics({ contextLabels: [], labelsContext: [], connectionEvents: from });
    m.observeFlow(trace);
    m.observeFlow(verdict);
    const all = samples(await m.registry.metrics());
    assert.deepEqual(all.filter((s) => s.name === 'hubble_tcp_flags_total').map((s) => [s.labels['flag'], s.value]), [[flag, 1]], from);
    assert.deepEqual(all.filter((s) => s.name === 'palisade_forward_packets_total').map((s) => [s.labels['reason'], s.value]), [[reason, 1]], from);
  }
});

test('startMetricsServer serves the text format on 127.0.0.1', async () => {
  const m = new FlowMetrics();
  m.observeFlow(envelope(dropFlow()));
  const server = await startMetricsServer(m, '127.0.0.1', 0);
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  assert.match(await res.text(), /hubble_drop_total\{.*reason="POLICY_DENIED".*\} 1/);
  assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
});
