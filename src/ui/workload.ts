/**
 * A flow endpoint → the workload the UI draws it as (api.ts "Workload ids"):
 *
 *   pod        "<namespace>/<app label>", else "<namespace>/<pod name without ReplicaSet/pod hash>"
 *   world      "world/<first DNS name of the address>", else "world/<ip>"
 *   host       "host/<node>"
 *   reserved   "reserved/<name>" (remote-node, kube-apiserver, health, …)
 */
import type { Endpoint } from '../flows/index.ts';
import type { Workload } from './api.ts';

export interface WorkloadRef {
  id: string;
  namespace: string;
  name: string;
  kind: Workload['kind'];
}

// Kubernetes' hashes use this alphabet (no vowels, no 0 1 3): `-<rs hash>-<pod suffix>` or `-<pod suffix>`.
// After a ReplicaSet hash any 5 characters are the pod's suffix; alone, only the alphabet's (so `web-proxy` stays).
const RS_POD_SUFFIX = /-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[a-z0-9]{5}$/;
const POD_SUFFIX = /-[bcdfghjklmnpqrstvwxz2456789]{5}$/;

/** `frontend-7d4b9c8f6-x2x9z` → `frontend`; `web-0` stays. */
export function workloadName(pod: string): string {
  if (RS_POD_SUFFIX.test(pod)) return pod.replace(RS_POD_SUFFIX, '');
  if (POD_SUFFIX.test(pod)) return pod.replace(POD_SUFFIX, '');
  return pod;
}

/** The `app` label's value (`k8s:app=x`), if any. */
function appLabel(labels: readonly string[] | undefined): string | undefined {
  if (labels === undefined) return undefined;
  for (const l of labels) if (l.startsWith('k8s:app=')) return l.slice(8);
  return undefined;
}

function reservedName(labels: readonly string[] | undefined): string | undefined {
  if (labels === undefined) return undefined;
  for (const l of labels) if (l.startsWith('reserved:')) return l.slice(9).split('=')[0];
  return undefined;
}

// Flows repeat the same pods endlessly: remember each pod's workload, by namespace then pod
// (no key string to build per flow); bounded, cleared when full.
const podCache = new Map<string, Map<string, WorkloadRef>>();
let podCacheSize = 0;
const POD_CACHE_MAX = 50_000;

/** `ip` and `names` are the endpoint's side of the flow (address, DNS names it is known by); `node` the flow's node. */
export function workloadOf(ep: Endpoint | undefined, ip: string | undefined, names: readonly string[] | undefined, node: string | undefined): WorkloadRef {
  if (ep?.pod_name) {
    const ns = ep.namespace ?? '';
    let pods = podCache.get(ns);
    let ref = pods?.get(ep.pod_name);
    if (ref === undefined) {
      const name = appLabel(ep.labels) ?? ep.workloads?.[0]?.name ?? workloadName(ep.pod_name);
      ref = { id: `${ns}/${name}`, namespace: ns, name, kind: 'pod' };
      if (podCacheSize >= POD_CACHE_MAX) {
        podCache.clear();
        podCacheSize = 0;
        pods = undefined;
      }
      if (pods === undefined) podCache.set(ns, (pods = new Map()));
      pods.set(ep.pod_name, ref);
      podCacheSize++;
    }
    return ref;
  }
  const reserved = reservedName(ep?.labels) ?? (ep?.identity === 2 ? 'world' : ep?.identity === 1 ? 'host' : undefined);
  if (reserved === 'host') {
    const n = node ?? '';
    return { id: `host/${n}`, namespace: 'host', name: n, kind: 'host' };
  }
  if (reserved === undefined || reserved === 'world' || reserved.startsWith('world-')) {
    const name = names?.[0]?.replace(/\.$/, '') ?? (ip !== undefined && ip !== '' ? ip : 'unknown');
    return { id: `world/${name}`, namespace: 'world', name, kind: 'world' };
  }
  return { id: `reserved/${reserved}`, namespace: 'reserved', name: reserved, kind: 'reserved' };
}
