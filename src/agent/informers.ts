/**
 * The objects the agent watches, through @kubernetes/client-node informers —
 * the same code path against the lab API server and against kube-apiserver.
 *
 *   list+watch per resource ──► normalise (plain JSON) ──► onEvent(kind, type, object)
 *
 * An informer that fails restarts itself after a second; its list after a
 * restart re-delivers every object, which the engine absorbs idempotently.
 */
import * as k8s from '@kubernetes/client-node';
import { rawLister } from '../kube-client/index.ts';

export type WatchedKind =
  | 'Namespace'
  | 'Pod'
  | 'Service'
  | 'Node'
  | 'EndpointSlice'
  | 'NetworkPolicy'
  | 'CiliumNetworkPolicy'
  | 'CiliumClusterwideNetworkPolicy';

export type EventType = 'add' | 'update' | 'delete';
export type ObjectHandler = (kind: WatchedKind, type: EventType, obj: Record<string, unknown>) => void;

interface Source {
  kind: WatchedKind;
  path: string;
  list: () => Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
}

const SOURCES: [WatchedKind, string, string][] = [
  ['Namespace', 'v1', '/api/v1/namespaces'],
  ['Node', 'v1', '/api/v1/nodes'],
  ['Pod', 'v1', '/api/v1/pods'],
  ['Service', 'v1', '/api/v1/services'],
  ['EndpointSlice', 'discovery.k8s.io/v1', '/apis/discovery.k8s.io/v1/endpointslices'],
  ['NetworkPolicy', 'networking.k8s.io/v1', '/apis/networking.k8s.io/v1/networkpolicies'],
  ['CiliumNetworkPolicy', 'cilium.io/v2', '/apis/cilium.io/v2/ciliumnetworkpolicies'],
  ['CiliumClusterwideNetworkPolicy', 'cilium.io/v2', '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies'],
];

// Lists come back as the server's JSON (raw-client.ts) and watch events are
// JSON too, so every object the handlers see has the upstream field names.
function sources(kc: k8s.KubeConfig): Source[] {
  return SOURCES.map(([kind, apiVersion, path]) => ({ kind, path, list: rawLister(kc, apiVersion, kind) }));
}

function plain(obj: k8s.KubernetesObject): Record<string, unknown> {
  return obj as unknown as Record<string, unknown>;
}

export interface Watchers {
  /** Resolves once every resource has been listed once. */
  synced: Promise<void>;
  stop(): Promise<void>;
}

export function watchCluster(kc: k8s.KubeConfig, onEvent: ObjectHandler, log: (msg: string) => void): Watchers {
  const informers: k8s.Informer<k8s.KubernetesObject>[] = [];
  let stopped = false;
  const starts = sources(kc).map(async (src) => {
    const informer = k8s.makeInformer(kc, src.path, src.list);
    informers.push(informer);
    informer.on(k8s.ADD, (o) => onEvent(src.kind, 'add', plain(o)));
    informer.on(k8s.UPDATE, (o) => onEvent(src.kind, 'update', plain(o)));
    informer.on(k8s.DELETE, (o) => onEvent(src.kind, 'delete', plain(o)));
    informer.on(k8s.ERROR, (err) => {
      if (stopped) return;
      log(`watch ${src.path} failed (${err instanceof Error ? err.message : String(err)}); restarting in 1 s`);
      setTimeout(() => void informer.start().catch(() => {}), 1000);
    });
    for (;;) {
      try {
        await informer.start();
        return;
      } catch (err) {
        if (stopped) return;
        log(`list ${src.path} failed (${err instanceof Error ? err.message : String(err)}); retrying in 1 s`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  });
  return {
    synced: Promise.all(starts).then(() => undefined),
    async stop() {
      stopped = true;
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}
