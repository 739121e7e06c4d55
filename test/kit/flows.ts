/** Sample flows for tests and the benchmark: a drop, an allow, HTTP and DNS, with fixed times. */
import { envelope, makeFlow, type Flow, type FlowEnvelope } from '../../src/flows/flow.ts';

const frontend = { ID: 1234, identity: 1234, namespace: 'default', labels: ['k8s:app=frontend', 'k8s:io.kubernetes.pod.namespace=default'], pod_name: 'frontend' };
const backend = { ID: 5678, identity: 5678, namespace: 'default', labels: ['k8s:app=backend', 'k8s:io.kubernetes.pod.namespace=default'], pod_name: 'backend' };
const coredns = { ID: 99, identity: 4321, namespace: 'kube-system', labels: ['k8s:k8s-app=kube-dns'], pod_name: 'coredns-5d78c9869d-abcde' };

export const T0 = '2024-11-26T06:41:02.123456789Z';

export function dropFlow(time = T0): Flow {
  return makeFlow({
    time, verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', node_name: 'node1',
    IP: { source: '10.244.1.7', destination: '10.244.2.9', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 43210, destination_port: 80, flags: { SYN: true } } },
    source: frontend, destination: backend, traffic_direction: 'INGRESS',
    ingress_denied_by: [{ name: 'deny-frontend', namespace: 'default', kind: 'CiliumNetworkPolicy' }],
  });
}

export function allowFlow(time = T0): Flow {
  return makeFlow({
    time, verdict: 'FORWARDED', node_name: 'node1', event_type: { type: 9, sub_type: 0 }, policy_match_type: 2,
    IP: { source: '10.244.1.7', destination: '10.244.2.9', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 43210, destination_port: 80, flags: { SYN: true } } },
    source: frontend, destination: backend, traffic_direction: 'INGRESS',
    ingress_allowed_by: [{ name: 'allow-frontend', namespace: 'default', kind: 'CiliumNetworkPolicy' }],
  });
}

export function httpFlow(time = T0, type: 'REQUEST' | 'RESPONSE' = 'REQUEST'): Flow {
  return makeFlow({
    time, verdict: 'FORWARDED', node_name: 'node2', traffic_direction: 'INGRESS', is_reply: type === 'RESPONSE',
    IP: { source: '10.244.1.7', destination: '10.244.2.9', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 43210, destination_port: 80 } },
    source: frontend, destination: backend,
    l7: {
      type, latency_ns: type === 'RESPONSE' ? '12000000' : '0',
      http: { code: type === 'RESPONSE' ? 503 : 0, method: 'GET', url: 'http://backend/api/v1?x=1', protocol: 'HTTP/1.1', headers: [{ key: 'host', value: 'backend' }] },
    },
  });
}

export function dnsFlow(time = T0, type: 'REQUEST' | 'RESPONSE' = 'REQUEST'): Flow {
  return makeFlow({
    time, verdict: 'FORWARDED', node_name: 'node1', traffic_direction: 'EGRESS', is_reply: type === 'RESPONSE',
    IP: { source: '10.244.1.7', destination: '10.96.0.10', ipVersion: 'IPv4' },
    l4: { UDP: { source_port: 53001, destination_port: 53 } },
    source: frontend, destination: coredns, destination_names: [],
    l7: {
      type,
      dns: type === 'RESPONSE'
        ? { query: 'api.github.com.', ips: ['140.82.121.6'], ttl: 30, rcode: 0, qtypes: ['A'], rrtypes: ['A'] }
        : { query: 'api.github.com.', qtypes: ['A'] },
    },
  });
}

/** A world flow to an FQDN, for fqdn and CIDR filters. */
export function worldFlow(time = T0): Flow {
  return makeFlow({
    time, verdict: 'FORWARDED', node_name: 'node2', traffic_direction: 'EGRESS',
    IP: { source: '10.244.1.7', destination: '140.82.121.6', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000, destination_port: 443, flags: { ACK: true, PSH: true } } },
    source: frontend, destination: { identity: 2, labels: ['reserved:world'] }, destination_names: ['api.github.com'],
    event_type: { type: 4, sub_type: 11 },
  });
}

export function env(flow: Flow): FlowEnvelope {
  return envelope(flow);
}

/** A time `ms` after T0's second, for ordering tests. */
export function at(ms: number): string {
  return new Date(Date.parse('2024-11-26T06:41:00Z') + ms).toISOString().replace('Z', '000000Z');
}
