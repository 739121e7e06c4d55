/**
 * Talking to a Kubernetes API server: @kubernetes/client-node with objects
 * kept as the server's JSON. A folder of its own because client-node is
 * heavy (about 30 MiB of heap): what only needs object types, manifests or
 * HTTP rule regexes (src/k8s) must not load it.
 */
export { rawLister, RawObjectApi } from './raw-client.ts';
