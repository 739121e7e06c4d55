/** Manifests the end-to-end suites apply, as YAML text (what `palisade apply` reads). */

export interface ContainerSpec {
  name: string;
  command: readonly string[];
}

/**
 * A lab Pod on `node`, labelled `app: <app>` (default: its name). Without
 * containers it gets one, `c`, that only holds the pod's network namespace.
 */
export function pod(ns: string, name: string, node: string, o: { app?: string; containers?: readonly ContainerSpec[] } = {}): string {
  const containers = o.containers?.length ? o.containers.map((c) => `{name: ${c.name}, command: ${JSON.stringify(c.command)}}`).join(', ') : '{name: c}';
  return `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${o.app ?? name}}}
spec: {nodeName: ${node}, containers: [${containers}]}
`;
}

/** `palisade workload <kind> --port <port>`: a server for a pod's container. */
export const workload = (kind: 'http-echo' | 'https-echo' | 'tcp-echo' | 'udp-echo', port: number): string[] => ['palisade', 'workload', kind, '--port', String(port)];

/**
 * One egress rule (a list item under `egress:`, indented two spaces) sending
 * the pod's DNS to kube-dns through the DNS proxy, which allows names matching
 * `pattern` and answers the rest REFUSED; the queries become DNS flows.
 */
export const dnsThroughProxy = (pattern: string): string => `  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [{matchPattern: "${pattern}"}]`;
