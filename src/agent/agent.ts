/**
 * The node agent: Kubernetes objects in, kernel state out.
 *
 *   informers ──► PolicyEngine (identities, compiled policy) ──┐
 *   CNI plugin ──► endpoint registry (this node's pods) ───────┼──► datapath.apply(snapshot)
 *   Node objects ──► routes to the other nodes' pods ──────────┘
 *
 * Start-up order matters for "no allowed connection fails while the agent
 * restarts": nothing in the kernel is touched until every resource has been
 * listed and the registry is loaded; then the whole policy is swapped in one
 * atomic transaction. A rejected (invalid) policy leaves the previous version
 * of that object in force.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { PolicyEngine } from '../policy/index.ts';
import { validateObject } from '../k8s/manifest/index.ts';
import type { KubeObject, Pod, Service } from '../k8s/objects.ts';
import { serviceEntries, type EndpointSlice } from './service-table.ts';
import type { ApplyResult, Datapath, DatapathStatus, DropCounter, PeerNode } from '../datapath/index.ts';
import type { AgentConfig } from './config.ts';
import { EndpointRegistry, type Registration } from './endpoint-registry.ts';
import { watchCluster, type EventType, type Watchers, type WatchedKind } from './informers.ts';
import { openApiTunnel, type Tunnel } from './api-tunnel.ts';
import { FlowLog, FlowMetrics, FlowStore, type FlowFilter, type FlowStoreStatus } from '../flows/index.ts';
import type { FlowContext } from './flow-events.ts';
import { fqdnSelectorKey, type DnsProxy, type DnsProxyStats, type NameMatcher } from '../fqdn/index.ts';

export interface AgentStatus {
  node: string;
  pid: number;
  ready: boolean;
  datapath: DatapathStatus;
  endpoints: Registration[];
  engine: PolicyEngine['stats'];
  rejectedPolicies: { policy: string; faults: string[] }[];
  drops: DropCounter[];
  applies: number;
  flows: FlowStoreStatus;
  dnsProxy?: DnsProxyStats;
}

/** One learned address of a name, and the pods whose lookups returned it. */
export interface FqdnCacheRow {
  name: string;
  ip: string;
  /** Seconds; ≤ 0 while an expired address is kept for open connections. */
  ttlLeft: number;
  resolvedBy: { ip: string; namespace?: string; pod?: string }[];
}

export class Agent {
  readonly #cfg: AgentConfig;
  readonly #datapath: Datapath;
  readonly #log: Logger;
  readonly #engine = new PolicyEngine();
  readonly #registry: EndpointRegistry;
  readonly #pods = new Map<string, Pod>();
  readonly #nodes = new Map<string, PeerNode>();
  readonly #services = new Map<string, Service>();
  readonly #slices = new Map<string, EndpointSlice>();
  readonly #rejected = new Map<string, string[]>();
  #watchers: Watchers | undefined;
  #tunnel: Tunnel | undefined;
  #ready = false;
  #applies = 0;
  #applyChain: Promise<ApplyResult | undefined> = Promise.resolve(undefined);
  #applyPending = false;
  #nodesDirty = false;
  /** The node's proxies: the datapath steers L7 ports to them. */
  httpProxyPort: number | undefined;
  dnsProxyPort: number | undefined;
  /** The node's DNS proxy: toFQDNs selectors allow what its name cache holds. */
  dnsProxy: DnsProxy | undefined;
  /** toFQDNs selector → the addresses the kernel holds for it (as of the last apply). */
  #fqdnInstalled = new Map<string, { selectors: readonly NameMatcher[]; ips: ReadonlySet<string> }>();
  #queuedApply: Promise<ApplyResult | undefined> | undefined;
  /** Every decision as a Hubble flow record, and the metrics derived from them. */
  readonly flows: FlowStore;
  readonly metrics: FlowMetrics;

  constructor(cfg: AgentConfig, datapath: Datapath, log: Logger) {
    this.#cfg = cfg;
    this.#datapath = datapath;
    this.#log = log;
    this.#registry = new EndpointRegistry(`${cfg.runDir}/endpoints.json`);
    this.flows = new FlowStore({ nodeName: cfg.node, ...(cfg.flowBufferSize ? { capacity: cfg.flowBufferSize } : {}) });
    this.metrics = new FlowMetrics();
    this.flows.onFlow((e) => this.metrics.observeFlow(e));
    this.metrics.trackLostEvents(() => this.flows.status().lost);
    if (cfg.flowLog) {
      const { path, maxSizeBytes, maxFiles, include } = cfg.flowLog;
      const log = new FlowLog({ path, ...(maxSizeBytes ? { maxSizeBytes } : {}), ...(maxFiles ? { maxFiles } : {}), ...(include ? { include: include as FlowFilter[] } : {}) });
      this.flows.onFlow((e) => log.write(e));
    }
  }

  /** What flow producers need to enrich records: the current snapshot and the node addresses. */
  flowContext(): FlowContext {
    return {
      node: this.#cfg.node,
      snapshot: () => this.#engine.snapshot(),
      fqdns: (ip) => this.dnsProxy?.fqdnCache.namesForIp(ip) ?? [],
      ownAddresses: () => [this.#cfg.network.underlayIp],
      peerAddresses: () => [...this.#nodes.values()].filter((n) => n.name !== this.#cfg.node).map((n) => n.ip),
    };
  }

  get ready(): boolean {
    return this.#ready;
  }

  async start(): Promise<void> {
    await this.#registry.load();
    const kc = new k8s.KubeConfig();
    if (this.#cfg.apiSocket) {
      this.#tunnel = await openApiTunnel(this.#cfg.apiSocket);
      kc.loadFromOptions({
        clusters: [{ name: 'lab', server: this.#tunnel.url, skipTLSVerify: true }],
        users: [{ name: 'agent' }],
        contexts: [{ name: 'lab', cluster: 'lab', user: 'agent' }],
        currentContext: 'lab',
      });
    } else if (this.#cfg.kubeconfig) {
      kc.loadFromFile(this.#cfg.kubeconfig);
    }
    this.#watchers = watchCluster(kc, (kind, type, obj) => this.#onEvent(kind, type, obj), (m) => this.#log.warn(m));
    await this.#watchers.synced;
    await this.#setupNode();
    const first = await this.#apply();
    this.#ready = true;
    this.#log.info({ apply: first, stats: this.#engine.stats }, 'agent ready');
  }

  async stop(): Promise<void> {
    await this.#watchers?.stop();
    await this.#tunnel?.close();
  }

  // ------------------------------------------------------------ objects

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
        if (type === 'delete') this.#slices.delete(key);
        else this.#slices.set(key, obj as unknown as EndpointSlice);
        this.#scheduleApply();
        return;
      }
      if (kind === 'Service') {
        const key = `${meta.namespace}/${name}`;
        if (type === 'delete') this.#services.delete(key);
        else this.#services.set(key, obj as unknown as Service);
      }
      if (type === 'delete') {
        if (kind === 'Pod') this.#pods.delete(`${meta.namespace}/${name}`);
        this.#rejected.delete(`${kind}/${meta.namespace ?? ''}/${name}`);
        this.#engine.delete(kind, meta.namespace, name);
      } else {
        const object = this.#accept(kind, obj);
        if (!object) return;
        if (object.kind === 'Pod') {
          this.#pods.set(`${object.metadata.namespace ?? 'default'}/${object.metadata.name}`, object);
          this.#engine.upsert(this.#withLocalAddress(object));
        } else {
          this.#engine.upsert(object);
        }
      }
      this.#scheduleApply();
    } catch (err) {
      this.#log.error({ err, kind, name }, 'could not absorb object');
    }
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
        this.#log.warn({ policy: key, faults }, 'policy rejected; the previous version stays in force');
        return undefined;
      }
      this.#rejected.delete(key);
      return r.object;
    }
    return { ...obj, kind } as unknown as KubeObject;
  }

  /** The CNI plugin knows a local pod's address before the API does: use it. */
  #withLocalAddress(pod: Pod): Pod {
    const reg = this.#registry.byPod(pod.metadata.namespace ?? 'default', pod.metadata.name);
    if (!reg || pod.status?.podIP) return pod;
    return { ...pod, status: { ...pod.status, podIP: reg.ip, podIPs: [{ ip: reg.ip }] } };
  }

  #onNode(type: EventType, obj: Record<string, unknown>): void {
    const name = (obj['metadata'] as { name: string }).name;
    const spec = (obj['spec'] ?? {}) as { podCIDR?: string };
    const addrs = ((obj['status'] as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? []);
    const ip = addrs.find((a) => a.type === 'InternalIP')?.address;
    if (type === 'delete' || !ip || !spec.podCIDR) this.#nodes.delete(name);
    else this.#nodes.set(name, { name, ip, podCIDR: spec.podCIDR });
    this.#nodesDirty = true;
    this.#scheduleApply();
  }

  async #setupNode(): Promise<void> {
    this.#nodesDirty = false;
    const n = this.#cfg.network;
    await this.#datapath.setupNode(
      { name: this.#cfg.node, underlayIp: n.underlayIp, underlayIf: n.underlayIf, underlayCIDR: n.underlayCIDR, podCIDR: n.podCIDR, clusterPodCIDR: n.clusterPodCIDR },
      [...this.#nodes.values()],
    );
  }

  // ------------------------------------------------------------ endpoints (CNI)

  /** Registers a pod the CNI plugin wired; resolves once its policy is in the kernel. */
  async registerEndpoint(r: Registration, timeoutMs = 10_000): Promise<void> {
    await this.#registry.add(r);
    const key = `${r.namespace}/${r.pod}`;
    const deadline = Date.now() + timeoutMs;
    while (!this.#pods.has(key)) {
      if (Date.now() > deadline) throw new Error(`pod ${key} is not known to the API server`);
      await new Promise((res) => setTimeout(res, 20));
    }
    this.#engine.upsert(this.#withLocalAddress(this.#pods.get(key)!));
    await this.#apply();
  }

  async deregisterEndpoint(containerId: string): Promise<void> {
    const r = await this.#registry.remove(containerId);
    if (r) await this.#apply();
  }

  // ------------------------------------------------------------ datapath

  #scheduleApply(): void {
    if (!this.#ready || this.#applyPending) return;
    this.#applyPending = true;
    // Coalesce a burst of events (a list after a restart, a multi-object apply) into one transaction.
    setTimeout(() => {
      this.#applyPending = false;
      void this.#apply().catch((err: unknown) => this.#log.error({ err }, 'datapath apply failed'));
    }, 5);
  }

  /**
   * Applies the current state. Applies are serialised so the kernel sees
   * them in order, and every caller waiting at once shares the next one: it
   * starts after the call, so it includes whatever the caller changed.
   */
  #apply(): Promise<ApplyResult | undefined> {
    if (this.#queuedApply) return this.#queuedApply;
    const next = this.#applyChain
      .catch(() => undefined)
      .then(() => {
        this.#queuedApply = undefined;
        return this.#applyNow();
      });
    this.#queuedApply = next;
    this.#applyChain = next;
    return next;
  }

  async #applyNow(): Promise<ApplyResult> {
    if (this.#nodesDirty) await this.#setupNode();
    const snapshot = this.#engine.snapshot();
    const known = new Set([...snapshot.endpoints()].map((e) => e.key));
    const peers = [...this.#nodes.values()].filter((n) => n.name !== this.#cfg.node);
    const installed = new Map<string, { selectors: readonly NameMatcher[]; ips: ReadonlySet<string> }>();
    const cache = this.dnsProxy?.fqdnCache;
    const result = await this.#datapath.apply({
      snapshot,
      services: serviceEntries(this.#services.values(), this.#slices.values()),
      ...(this.httpProxyPort !== undefined ? { httpProxyPort: this.httpProxyPort } : {}),
      ...(this.dnsProxyPort !== undefined ? { dnsProxyPort: this.dnsProxyPort } : {}),
      ...(cache
        ? {
            fqdnIps: (selectors: readonly NameMatcher[]) => {
              const ips = cache.ipsMatching(selectors);
              installed.set(fqdnSelectorKey(selectors), { selectors, ips });
              return ips;
            },
          }
        : {}),
      localEndpoints: this.#registry.localEndpoints().filter((e) => known.has(e.key)),
      ownAddresses: [this.#cfg.network.underlayIp],
      peerAddresses: peers.map((n) => n.ip),
    });
    this.#fqdnInstalled = installed;
    this.#applies++;
    if (result.endpointsProgrammed > 0 || result.ipcacheChanges > 0) this.#log.debug({ result }, 'datapath updated');
    return result;
  }

  /**
   * The DNS proxy learned addresses for a name: when a toFQDNs selector in
   * force matches the name and lacks one of them, re-apply, and resolve once
   * the kernel allows them (the proxy holds the answer until then). Nothing
   * to wait for otherwise.
   */
  fqdnLearned(name: string, ips: readonly string[]): Promise<void> | undefined {
    for (const { selectors, ips: have } of this.#fqdnInstalled.values()) {
      if (!selectors.some((m) => m.matches(name))) continue;
      if (ips.some((ip) => !have.has(ip) && !ip.includes(':'))) return this.#apply().then(() => undefined);
    }
    return undefined;
  }

  /** Addresses left the name cache: take them out of the datapath soon. */
  fqdnForgotten(): void {
    this.#scheduleApply();
  }

  /** The name cache with the pods behind each lookup named: `palisade fqdn cache`. */
  fqdnCacheEntries(): FqdnCacheRow[] {
    const snap = this.#engine.snapshot();
    return (this.dnsProxy?.fqdnCache.cacheEntries() ?? []).map((e) => ({
      ...e,
      resolvedBy: e.resolvedBy.map((ip) => {
        const ep = snap.endpointByIp(ip);
        return ep ? { ip, namespace: ep.namespace, pod: ep.name } : { ip };
      }),
    }));
  }

  async status(): Promise<AgentStatus> {
    return {
      node: this.#cfg.node,
      pid: process.pid,
      ready: this.#ready,
      datapath: this.#datapath.status(),
      endpoints: this.#registry.all(),
      engine: this.#engine.stats,
      rejectedPolicies: [...this.#rejected].map(([policy, faults]) => ({ policy, faults })),
      drops: await this.#datapath.dropCounters(),
      applies: this.#applies,
      flows: this.flows.status(),
      ...(this.dnsProxy ? { dnsProxy: this.dnsProxy.stats() } : {}),
    };
  }
}
