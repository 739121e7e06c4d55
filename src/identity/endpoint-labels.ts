/**
 * The security-relevant labels of a pod, as Cilium derives them
 * (pkg/k8s/utils, pkg/labelsfilter): the pod's own labels, its namespace's
 * name and labels, its service account and the cluster name, all with source
 * `k8s`. Labels that change on every rollout are left out, or every new
 * ReplicaSet would get a new identity.
 */
import { type Label, LabelSet, SOURCE_K8S } from '../labels/index.ts';

export const LABEL_POD_NAMESPACE = 'io.kubernetes.pod.namespace';
export const LABEL_NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
export const LABEL_SERVICE_ACCOUNT = 'io.cilium.k8s.policy.serviceaccount';
export const LABEL_CLUSTER = 'io.cilium.k8s.policy.cluster';
export const DEFAULT_CLUSTER_NAME = 'default';

// Cilium's default label filter drops these: they identify a rollout, not a workload.
const UNSTABLE_LABELS = new Set([
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'controller-uid',
  'batch.kubernetes.io/controller-uid',
  'job-name',
  'batch.kubernetes.io/job-name',
]);

export interface EndpointLabelSource {
  namespace: string;
  podLabels?: Record<string, string>;
  namespaceLabels?: Record<string, string>;
  serviceAccount?: string;
  cluster?: string;
}

export function endpointLabels(src: EndpointLabelSource): LabelSet {
  const out: Label[] = [];
  const k8s = (key: string, value: string): void => {
    out.push({ source: SOURCE_K8S, key, value });
  };
  for (const [k, v] of Object.entries(src.podLabels ?? {})) {
    if (!UNSTABLE_LABELS.has(k)) k8s(k, v);
  }
  for (const [k, v] of Object.entries(namespaceLabelsWithName(src.namespace, src.namespaceLabels))) {
    k8s(LABEL_NAMESPACE_LABELS_PREFIX + k, v);
  }
  k8s(LABEL_POD_NAMESPACE, src.namespace);
  k8s(LABEL_SERVICE_ACCOUNT, src.serviceAccount ?? 'default');
  k8s(LABEL_CLUSTER, src.cluster ?? DEFAULT_CLUSTER_NAME);
  return new LabelSet(out);
}

/**
 * Kubernetes (1.21+) sets `kubernetes.io/metadata.name` on every namespace, and
 * NetworkPolicies commonly select namespaces by it: make sure it is there.
 */
export function namespaceLabelsWithName(name: string, labels: Record<string, string> | undefined): Record<string, string> {
  return { ...labels, 'kubernetes.io/metadata.name': name };
}
