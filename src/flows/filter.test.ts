/** FlowFilter semantics, one row per field, then whitelist OR, blacklist, and validation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, compileFilters, FlowFilterError, parseEventType, type FlowFilter } from './filter.ts';
import type { Flow } from './flow.ts';
import { allowFlow, dnsFlow, dropFlow, httpFlow, worldFlow } from '../../test/kit/flows.ts';

const drop = dropFlow();
const allow = allowFlow();
const httpReq = httpFlow(undefined, 'REQUEST');
const httpResp = httpFlow(undefined, 'RESPONSE');
const dnsReq = dnsFlow();
const world = worldFlow();

const cases: [name: string, filter: FlowFilter, flow: Flow, want: boolean][] = [
  ['source_ip exact', { source_ip: ['10.244.1.7'] }, drop, true],
  ['source_ip other', { source_ip: ['10.244.1.8'] }, drop, false],
  ['destination_ip CIDR in', { destination_ip: ['140.82.0.0/16'] }, world, true],
  ['destination_ip CIDR out', { destination_ip: ['10.0.0.0/8'] }, world, false],
  ['source_ip CIDR /32 vs exact list OR', { source_ip: ['1.2.3.4', '10.244.1.0/24'] }, drop, true],
  ['source_pod ns/', { source_pod: ['default/'] }, drop, true],
  ['source_pod ns/pod', { source_pod: ['default/frontend'] }, drop, true],
  ['source_pod name prefix', { source_pod: ['default/front'] }, drop, true],
  ['source_pod other ns', { source_pod: ['prod/'] }, drop, false],
  ['destination_pod prefix of generated name', { destination_pod: ['kube-system/coredns'] }, dnsReq, true],
  ['destination_pod world has none', { destination_pod: ['default/'] }, world, false],
  ['source_label', { source_label: ['k8s:app=frontend'] }, drop, true],
  ['source_label any source', { source_label: ['app=frontend'] }, drop, true],
  ['source_label wrong value', { source_label: ['k8s:app=backend'] }, drop, false],
  ['source_label in / !=', { source_label: ['k8s:app in (a, frontend),k8s:app!=x'] }, drop, true],
  ['destination_label exists', { destination_label: ['reserved:world'] }, world, true],
  ['destination_label not exists', { destination_label: ['!k8s:app'] }, world, true],
  ['verdict', { verdict: ['DROPPED'] }, drop, true],
  ['verdict no', { verdict: ['FORWARDED', 'AUDIT'] }, drop, false],
  ['event_type drop', { event_type: [parseEventType('drop')] }, drop, true],
  ['event_type policy-verdict', { event_type: [parseEventType('policy-verdict')] }, allow, true],
  ['event_type l7', { event_type: [parseEventType('l7')] }, httpReq, true],
  ['event_type trace:to-network', { event_type: [parseEventType('trace:to-network')] }, world, true],
  ['event_type trace:to-endpoint', { event_type: [parseEventType('trace:to-endpoint')] }, world, false],
  ['protocol tcp', { protocol: ['tcp'] }, drop, true],
  ['protocol udp', { protocol: ['udp'] }, drop, false],
  ['protocol dns', { protocol: ['dns'] }, dnsReq, true],
  ['protocol http', { protocol: ['HTTP'] }, httpReq, true],
  ['protocol icmp', { protocol: ['icmp'] }, drop, false],
  ['source_port', { source_port: ['43210'] }, drop, true],
  ['destination_port', { destination_port: ['80'] }, drop, true],
  ['destination_port udp', { destination_port: ['53'] }, dnsReq, true],
  ['destination_port no', { destination_port: ['443'] }, drop, false],
  ['http_method', { http_method: ['get'] }, httpReq, true],
  ['http_method no', { http_method: ['POST'] }, httpReq, false],
  ['http_path regex', { http_path: ['^/api/v[0-9]+$'] }, httpReq, true],
  ['http_path excludes query', { http_path: ['x=1'] }, httpReq, false],
  ['http_status exact', { http_status_code: ['503'] }, httpResp, true],
  ['http_status prefix', { http_status_code: ['5+'] }, httpResp, true],
  ['http_status 2-digit prefix', { http_status_code: ['50+'] }, httpResp, true],
  ['http_status other prefix', { http_status_code: ['4+'] }, httpResp, false],
  ['http_status request has none', { http_status_code: ['5+'] }, httpReq, false],
  ['dns_query regex', { dns_query: ['github\\.com'] }, dnsReq, true],
  ['dns_query no', { dns_query: ['^example'] }, dnsReq, false],
  ['destination_fqdn', { destination_fqdn: ['api.github.com'] }, world, true],
  ['destination_fqdn wildcard', { destination_fqdn: ['*.github.com'] }, world, true],
  ['source_fqdn none', { source_fqdn: ['*.github.com'] }, world, false],
  ['node_name', { node_name: ['node1'] }, drop, true],
  ['node_name glob', { node_name: ['node*'] }, httpReq, true],
  ['node_name no', { node_name: ['node2'] }, drop, false],
  ['traffic_direction', { traffic_direction: ['INGRESS'] }, drop, true],
  ['traffic_direction no', { traffic_direction: ['EGRESS'] }, drop, false],
  ['ip_version', { ip_version: ['IPv4'] }, drop, true],
  ['ip_version 6', { ip_version: ['IPv6'] }, drop, false],
  ['tcp_flags', { tcp_flags: [{ SYN: true }] }, drop, true],
  ['tcp_flags all must be set', { tcp_flags: [{ SYN: true, ACK: true }] }, drop, false],
  ['reply', { reply: [true] }, httpResp, true],
  ['drop_reason_desc', { drop_reason_desc: ['POLICY_DENIED'] }, drop, true],
  ['source_identity', { source_identity: [1234] }, drop, true],
  ['uuid', { uuid: [drop.uuid as string] }, drop, true],
  ['empty filter matches', {}, drop, true],
  ['fields AND: both hold', { verdict: ['DROPPED'], destination_port: ['80'] }, drop, true],
  ['fields AND: one fails', { verdict: ['DROPPED'], destination_port: ['443'] }, drop, false],
];

for (const [name, filter, flow, want] of cases) {
  test(`filter ${name}`, () => assert.equal(compileFilter(filter)(flow), want));
}

test('whitelist is an OR of filters, blacklist excludes on any match', () => {
  const flows = [drop, allow, httpReq, dnsReq, world];
  const pick = (wl: FlowFilter[], bl: FlowFilter[] = []): number[] => {
    const p = compileFilters(wl, bl);
    return flows.flatMap((f, i) => (p(f) ? [i] : []));
  };
  assert.deepEqual(pick([]), [0, 1, 2, 3, 4]);
  assert.deepEqual(pick([{ verdict: ['DROPPED'] }, { protocol: ['dns'] }]), [0, 3]);
  // --pod default/backend: Hubble's two filters, source OR destination
  assert.deepEqual(pick([{ source_pod: ['default/backend'] }, { destination_pod: ['default/backend'] }]), [0, 1, 2]);
  assert.deepEqual(pick([], [{ verdict: ['FORWARDED'] }]), [0]);
  assert.deepEqual(pick([{ source_pod: ['default/'] }], [{ protocol: ['http'] }, { protocol: ['dns'] }]), [0, 1, 4]);
  // a blacklist filter's own fields AND: only forwarded AND tcp is excluded
  assert.deepEqual(pick([], [{ verdict: ['FORWARDED'], protocol: ['tcp'] }]), [0, 3]);
});

test('bad filters are rejected when built, naming the field', () => {
  const bad: FlowFilter[] = [
    { source_ip: ['10.0.0.300'] },
    { destination_ip: ['10.0.0.0/33'] },
    { source_pod: ['frontend'] },
    { source_label: ['k8s:app in (a'] },
    { http_path: ['('] },
    { http_status_code: ['5xx'] },
    { protocol: ['gopher'] },
    { destination_port: ['http'] },
    { verdict: ['LOST' as 'DROPPED'] },
  ];
  for (const f of bad) {
    const field = Object.keys(f)[0] as string;
    assert.throws(() => compileFilter(f), (err: unknown) => err instanceof FlowFilterError && err.message.includes(field.replace('_code', '')), JSON.stringify(f));
  }
  assert.throws(() => parseEventType('bogus'), FlowFilterError);
  assert.throws(() => parseEventType('trace:to-mars'), FlowFilterError);
});
