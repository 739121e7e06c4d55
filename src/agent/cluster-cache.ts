/**
 * What a node knows of the cluster: every object the policy engine needs,
 * listed and watched from the API server, and the engine they feed.
 *
 *   API server ─list+watch─► informers ─► validate policies ─► PolicyEngine
 *                                      └─► pods, Services, EndpointSlices, Nodes (kept for their users)
 *
 * The agent (datapath) and the node proxy (L7 and DNS decisions) each keep
 * one, so the proxy decides on its own while the agent restarts. A rejected
 * (invalid) policy leaves the previous version of that object in force.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { PolicyEngine, type PolicySnapshot } from '../policy/index.ts';
import { validateObject } from '../k8s/index.ts';
import type { KubeObject, Pod, Service } from '../k8s/index.ts';
import type { PeerNode } from '../datapath/index.ts';
import type { EndpointSlice } from './service-table.ts';
import type { AgentConfig } from './config.ts';
import { watchCluster, type EventType, type Watchers, type WatchedKind } from './informers.ts';
import { openApiTunnel, type Tunnel } from './api-tunnel.ts';

/** What changed, for whoever acts on it: the agent re-applies, re-plans routes when nodes changed. */
export type ClusterChange = 'objects' | 'nodes';

export interface ClusterCacheOptions {
  cfg: AgentConfig;
  log: Logger;
  /** The address the CNI plugin gave a local pod, before the API server knows it. */
  localAddress(namespace: string, pod: string): string | undefined;
  onChange(change: ClusterChange): void;
}

export class ClusterCache {
  readonly #o: ClusterCacheOptions;
  readonly engine: PolicyEngine;
  readonly pods = new Map<string, Pod>();
  readonly nodes = new Map<string, PeerNode>();
  readonly services = new Map<string, Service>();
  readonly slices = new Map<string, EndpointSlice>();
  readonly #rejected = new Map<string, string[]>();
  /** `ns/name` → whoever waits for the API server to know that pod. */
  readonly #podWaiters = new Map<string, Set<() => void>>();
  #watchers: Watchers | undefined;
  #tunnel: Tunnel | undefined;

  constructor(o: ClusterCacheOptions) {
    this.#o = o;
    this.engine = new PolicyEngine({ ipBlockSelectsPods: o.cfg.networkPolicy?.ipBlockSelectsPods ?? true });
  }

  snapshot(): PolicySnapshot {
    return this.engine.snapshot();
  }

  /** Policies the engine refused, with their faults. */
  rejected(): { policy: string; faults: string[] }[] {
    return [...this.#rejected].map(([policy, faults]) => ({ policy, faults }));
  }

  /** Lists every watched kind; resolves once all are in the engine. */
  async start(): Promise<void> {
    const kc = new k8s.KubeConfig();
    const cfg = this.#o.cfg;
    if (cfg.apiSocket) {
      this.#tunnel = await openApiTunnel(cfg.apiSocket);
      kc.loadFromOptions({
        clusters: [{ name: 'lab', server: this.#tunnel.url, skipTLSVerify: true }],
        users: [{ name: 'agent' }],
        contexts: [{ name: 'lab', cluster: 'lab', user: 'agent' }],
        currentContext: 'lab',
      });
    } else if (cfg.kubeconfig) {
      kc.loadFromFile(cfg.kubeconfig);
    }
    this.#watchers = watchCluster(kc, (kind, type, obj) => this.#onEvent(kind, type, obj), (m) => this.#o.log.warn(m));
    await this.#watchers.synced;
  }

  async stop(): Promise<void> {
    await this.#watchers?.stop();
    await this.#tunnel?.close();
  }

  /**
   * Resolves once the API server's pod `namespace/name` is in the cache (and
   * the engine); rejects after `timeoutMs`. The CNI plugin can run before the
   * pod's watch event reaches this node.
   */
  waitForPod(namespace: string, name: string, timeoutMs: number): Promise<void> {
    const key = `${namespace}/${name}`;
    if (this.pods.has(key)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let waiters = this.#podWaiters.get(key);
      if (!waiters) this.#podWaiters.set(key, (waiters = new Set()));
      const arrived = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(arrived);
        if (waiters.size === 0 && this.#podWaiters.get(key) === waiters) this.#podWaiters.delete(key);
        reject(new Error(`pod ${key} is not known to the API server`));
      }, timeoutMs);
      waiters.add(arrived);
    });
  }

  /** A local pod's registration changed: give the engine its address again. */
  refreshLocalPod(namespace: string, pod: string): void {
    const p = this.pods.get(`${namespace}/${pod}`);
    if (p) this.engine.upsert(this.#withLocalAddress(p));
  }

  #onEvent(kind: WatchedKind, type: EventType, obj: Record<string, unknown>): void {
    const meta = (obj['metadata'] ?? {}) as { name?: string; namespace?: string };
    const name = meta.name ?? '';
    try {
      if (kind === 'Node') {
        this.#onNode(type, obj);
        return;
      }
      if (kind === 'EndpointSlice') {
        const key = `${meta.namespace}/${name}`;
        if (type === 'delete') this.slices.delete(key);
        else this.slices.set(key, obj as unknown as EndpointSlice);
        this.#o.onChange('objects');
        return;
      }
      if (kind === 'Service') {
        const key = `${meta.namespace}/${name}`;
        if (type === 'delete') this.services.delete(key);
        else this.services.set(key, obj as unknown as Service);
      }
      if (type === 'delete') {
        if (kind === 'Pod') this.pods.delete(`${meta.namespace}/${name}`);
        this.#rejected.delete(`${kind}/${meta.namespace ?? ''}/${name}`);
        this.engine.delete(kind, meta.namespace, name);
      } else {
        const object = this.#accept(kind, obj);
        if (!object) return;
        if (object.kind === 'Pod') {
          const key = `${object.metadata.namespace ?? 'default'}/${object.metadata.name}`;
          this.pods.set(key, object);
          this.engine.upsert(this.#withLocalAddress(object));
          this.#podArrived(key);
        } else {
          this.engine.upsert(object);
        }
      }
      this.#o.onChange('objects');
    } catch (err) {
      this.#o.log.error({ err, kind, name }, 'could not absorb object');
    }
  }

  #podArrived(key: string): void {
    const waiters = this.#podWaiters.get(key);
    if (!waiters) return;
    this.#podWaiters.delete(key);
    for (const arrived of waiters) arrived();
  }

  /** Policies are validated again here: the API server of a real cluster does not know Palisade's rules. */
  #accept(kind: WatchedKind, obj: Record<string, unknown>): KubeObject | undefined {
    if (kind === 'CiliumNetworkPolicy' || kind === 'CiliumClusterwideNetworkPolicy' || kind === 'NetworkPolicy') {
      const { status: _s, ...spec } = obj;
      const r = validateObject({ ...spec, kind, apiVersion: kind === 'NetworkPolicy' ? 'networking.k8s.io/v1' : 'cilium.io/v2' });
      const meta = obj['metadata'] as { name?: string; namespace?: string };
      const key = `${kind}/${meta.namespace ?? ''}/${meta.name ?? ''}`;
      if (!r.object) {
        const faults = r.faults.map((f) => `${f.path}: ${f.message}`);
        this.#rejected.set(key, faults);
        this.#o.log.warn({ policy: key, faults }, 'policy rejected; the previous version stays in force');
        return undefined;
      }
      this.#rejected.delete(key);
      return r.object;
    }
    return { ...obj, kind } as unknown as KubeObject;
  }

  /** The CNI plugin knows a local pod's address before the API does: use it. */
  #withLocalAddress(pod: Pod): Pod {
    const ip = this.#o.localAddress(pod.metadata.namespace ?? 'default', pod.metadata.name);
    if (!ip || pod.status?.podIP) return pod;
    return { ...pod, status: { ...pod.status, podIP: ip, podIPs: [{ ip }] } };
  }

  #onNode(type: EventType, obj: Record<string, unknown>): void {
    const name = (obj['metadata'] as { name: string }).name;
    const spec = (obj['spec'] ?? {}) as { podCIDR?: string };
    const addrs = (obj['status'] as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? [];
    const ip = addrs.find((a) => a.type === 'InternalIP')?.address;
    if (type === 'delete' || !ip || !spec.podCIDR) this.nodes.delete(name);
    else this.nodes.set(name, { name, ip, podCIDR: spec.podCIDR });
    this.#o.onChange('nodes');
  }
}
