/**
 * bench/apply's manifests: 100 namespaces with 4 pods the policies select,
 * and CiliumNetworkPolicies in bench/policy's five shapes spread over them.
 */
export const NAMESPACES = 100;
export const NODES = ['node-1', 'node-2'];

/** One CNP in bench/policy's five shapes, spread over the namespaces. */
export function policy(i: number): string {
  const ns = `ns-${i % NAMESPACES}`;
  const app = `app-${i % 4}`;
  const peer = `app-${(i + 1) % 4}`;
  const head = `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: cnp-${i}, namespace: ${ns}}\nspec:\n  endpointSelector: {matchLabels: {app: ${app}}}\n`;
  switch (i % 5) {
    case 0:
      return `${head}  ingress:\n  - fromEndpoints: [{matchLabels: {app: ${peer}}}]\n    toPorts: [{ports: [{port: "${8000 + (i % 1000)}", protocol: TCP}]}]\n`;
    case 1:
      return `${head}  ingress:\n  - fromEndpoints: [{matchLabels: {app: ${peer}}}]\n    toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET, path: "/api/v${i}/.*"}]}}]\n`;
    case 2:
      return `${head}  egress:\n  - toEndpoints: [{matchLabels: {app: ${peer}}}]\n    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]\n  - toFQDNs: [{matchPattern: "*.github.com"}]\n    toPorts: [{ports: [{port: "443"}]}]\n  - toCIDRSet: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]\n`;
    case 3:
      return `${head}  ingress:\n  - fromEndpoints: [{}]\n  ingressDeny:\n  - fromEndpoints: [{matchLabels: {version: v2}}]\n    toPorts: [{ports: [{port: "${22 + (i % 100)}"}]}]\n`;
    default:
      return `${head}  ingress:\n  - fromEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": ns-${(i + 1) % NAMESPACES}, app: ${peer}}}]\n`;
  }
}

export function setupManifest(): string {
  const docs: string[] = [];
  for (let n = 0; n < NAMESPACES; n++) docs.push(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-${n}, labels: {team: t${n % 10}}}\n`);
  for (let p = 0; p < 4; p++) {
    docs.push(`apiVersion: v1\nkind: Pod\nmetadata: {name: pod-${p}, namespace: ns-${p % 2}, labels: {app: app-${p}, version: v${1 + (p % 2)}}}\nspec: {nodeName: ${NODES[p % 2]}, containers: [{name: c}]}\n`);
  }
  return docs.join('---\n');
}
