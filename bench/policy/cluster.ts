/**
 * The policy bench's cluster: 1,000 policies (KNP, CNP with L7 HTTP, egress with
 * FQDN and CIDR, deny, cross-namespace) over 10,000 pods in 100 namespaces.
 * Shared by bench/policy/run.ts (the engine) and trace-batch.ts (the CLI).
 */
import type { KubeObject, Pod, PolicyObject } from '../../src/k8s/objects.ts';

export const NAMESPACES = 100;
export const PODS_PER_NS = 100;
export const APPS_PER_NS = 10;
const POLICIES_PER_NS = 10;

export function pod(ns: number, i: number, extra: Record<string, string> = {}): Pod {
  const app = i % APPS_PER_NS;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `pod-${i}`, namespace: `ns-${ns}`, labels: { app: `app-${app}`, version: i % 2 ? 'v1' : 'v2', ...extra } },
    spec: { containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: { podIP: `10.${ns >> 8}.${ns & 255}.${i + 1}` },
  };
}

export function policy(ns: number, j: number, port = 8080): PolicyObject {
  const namespace = `ns-${ns}`;
  const target = { matchLabels: { app: `app-${j}` } };
  const peer = { matchLabels: { app: `app-${(j + 1) % APPS_PER_NS}` } };
  switch (j % 5) {
    case 0:
      return {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: `knp-${j}`, namespace },
        spec: {
          podSelector: target,
          ingress: [{ from: [{ podSelector: peer }, { namespaceSelector: { matchLabels: { team: `t${ns % 10}` } } }], ports: [{ port }] }],
        },
      };
    case 1:
      return {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: `l7-${j}`, namespace },
        spec: {
          endpointSelector: target,
          ingress: [{ fromEndpoints: [peer], toPorts: [{ ports: [{ port: String(port), protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/api/.*' }] } }] }],
        },
      };
    case 2:
      return {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: `egress-${j}`, namespace },
        spec: {
          endpointSelector: target,
          egress: [
            { toEndpoints: [peer], toPorts: [{ ports: [{ port: 'http', protocol: 'TCP' }] }] },
            { toFQDNs: [{ matchPattern: '*.github.com' }], toPorts: [{ ports: [{ port: '443' }] }] },
            { toCIDRSet: [{ cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] }] },
          ],
        },
      };
    case 3:
      return {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: `deny-${j}`, namespace },
        spec: {
          endpointSelector: target,
          ingress: [{ fromEndpoints: [{}] }],
          ingressDeny: [{ fromEndpoints: [{ matchLabels: { version: 'v2' } }], toPorts: [{ ports: [{ port: '22' }] }] }],
        },
      };
    default:
      return {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: `xns-${j}`, namespace },
        spec: {
          endpointSelector: target,
          ingress: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': `ns-${(ns + 1) % NAMESPACES}`, ...peer.matchLabels } }] }],
        },
      };
  }
}

export function objects(): KubeObject[] {
  const out: KubeObject[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}`, labels: { team: `t${n % 10}` } } });
    for (let i = 0; i < PODS_PER_NS; i++) out.push(pod(n, i));
    for (let j = 0; j < POLICIES_PER_NS; j++) out.push(policy(n, j));
  }
  return out;
}

