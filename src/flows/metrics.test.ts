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

test('observing flows produces Hubble series with context labels', async () => {
  const m = new FlowMetrics();
  const store = new FlowStore({ nodeName: 'n1', capacity: 2 });
  m.trackLostEvents(() => store.status().lost);
  store.onFlow((e) => m.observeFlow(e, 60));
  for (const f of [dropFlow(), allowFlow(), httpFlow(undefined, 'REQUEST'), httpFlow(undefined, 'RESPONSE'), dnsFlow(undefined, 'REQUEST'), dnsFlow(undefined, 'RESPONSE'), worldFlow()]) store.addFlow(f);
  store.recordLost('PERF_EVENT_RING_BUFFER', 3);
  const text = await m.registry.metrics();
  const want = [
    'hubble_flows_processed_total{source="default/frontend",destination="default/backend",protocol="TCP",type="Drop",subtype="",verdict="DROPPED"} 1',
    'hubble_flows_processed_total{source="default/frontend",destination="default/backend",protocol="TCP",type="PolicyVerdict",subtype="",verdict="FORWARDED"} 1',
    'hubble_flows_processed_total{source="default/frontend",destination="default/backend",protocol="HTTP",type="L7",subtype="HTTP",verdict="FORWARDED"} 2',
    'hubble_flows_processed_total{source="default/frontend",destination="world",protocol="TCP",type="Trace",subtype="to-network",verdict="FORWARDED"} 1',
    'hubble_drop_total{source="default/frontend",destination="default/backend",reason="POLICY_DENIED",protocol="TCP"} 1',
    'hubble_policy_verdicts_total{source="default/frontend",destination="default/backend",direction="ingress",match="l3-l4",action="forwarded"} 1',
    'hubble_policy_verdicts_total{source="default/frontend",destination="default/backend",direction="ingress",match="l7/http",action="forwarded"} 1',
    'hubble_http_requests_total{source="default/frontend",destination="default/backend",method="GET",protocol="HTTP/1.1",status="503",reporter="server"} 1',
    'hubble_http_request_duration_seconds_bucket{le="0.025",source="default/frontend",destination="default/backend",method="GET",reporter="server"} 1',
    'hubble_dns_queries_total{source="default/frontend",destination="kube-system/coredns-5d78c9869d-abcde",rcode="",qtypes="A",ips_returned="0"} 1',
    'hubble_dns_responses_total{source="default/frontend",destination="kube-system/coredns-5d78c9869d-abcde",rcode="No Error",qtypes="A",ips_returned="1"} 1',
    'hubble_lost_events_total{source="perf_event_ring_buffer"} 3',
    'palisade_drop_packets_total{source="default/frontend",destination="default/backend",direction="ingress",reason="POLICY_DENIED"} 1',
    'palisade_drop_bytes_total{source="default/frontend",destination="default/backend",direction="ingress",reason="POLICY_DENIED"} 60',
    'palisade_forward_packets_total{source="default/frontend",destination="world",direction="egress",reason="forwarded"} 1',
  ];
  for (const line of want) assert.ok(text.includes(line), `missing ${line}\n--- got:\n${text}`);
  // Flags count forwarded packets only: not the drop, not the policy verdict, not L7 (the world flow has ACK+PSH).
  assert.ok(!text.includes('hubble_tcp_flags_total{'), text);
});

test('tcp flags and no context labels', async () => {
  const m = new FlowMetrics({ contextLabels: [] });
  m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l4: { TCP: { flags: { SYN: true, ACK: true } } }, IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' } })));
  m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', l4: { TCP: { flags: { FIN: true } } }, IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' } })));
  const text = await m.registry.metrics();
  assert.ok(text.includes('hubble_tcp_flags_total{flag="SYN-ACK",family="IPv4"} 1'), text);
  assert.ok(text.includes('hubble_tcp_flags_total{flag="FIN",family="IPv4"} 1'), text);
  assert.ok(text.includes('hubble_flows_processed_total{protocol="TCP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 2'), text);
});

test('context labels are capped: new values beyond the cap count as "other"', async () => {
  const m = new FlowMetrics({ contextLabels: ['source'], maxContextValues: 2 });
  for (const pod of ['a', 'b', 'c', 'd', 'a']) {
    m.observeFlow(envelope(makeFlow({ verdict: 'FORWARDED', source: { namespace: 'ns', pod_name: pod }, l4: { UDP: {} } })));
  }
  const text = await m.registry.metrics();
  const series = text.split('\n').filter((l) => l.startsWith('hubble_flows_processed_total{'));
  assert.deepEqual(series.sort(), [
    'hubble_flows_processed_total{source="ns/a",protocol="UDP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 2',
    'hubble_flows_processed_total{source="ns/b",protocol="UDP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 1',
    'hubble_flows_processed_total{source="other",protocol="UDP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 2',
  ]);
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
