/**
 * The node agent: Kubernetes objects in, kernel state out.
 *
 *   ClusterCache (informers ─► PolicyEngine) ──────────────────┐
 *   CNI plugin ──► endpoint registry (this node's pods) ───────┼──► datapath.apply(snapshot)
 *   node proxy ──► learned names (toFQDNs), L7 flow records ───┘
 *
 * Start-up order matters for "no allowed connection fails while the agent
 * restarts": nothing in the kernel is touched until every resource has been
 * listed, the registry and the name cache are loaded; then the whole policy
 * is swapped in one atomic transaction.
 *
 * The HTTP and DNS proxies run in a process of their own (node-proxy.ts), so
 * they keep serving while the agent restarts; the agent mirrors their name
 * cache, which is what the toFQDNs sets hold.
 */
import type { Logger } from 'pino';
import type { PolicyEngine } from '../policy/index.ts';
import { serviceEntries } from './service-table.ts';
import type { ApplyResult, Datapath, DatapathStatus, DropCounter } from '../datapath/index.ts';
import type { AgentConfig } from './config.ts';
import { EndpointRegistry, type Registration } from './endpoint-registry.ts';
import { ClusterCache } from './cluster-cache.ts';
import type { ProxyLink, ProxyLinkHandlers } from './proxy-link.ts';
import { FlowLog, FlowMetrics, FlowStore, type FlowFilter, type FlowStoreStatus } from '../flows/index.ts';
import type { FlowContext } from './flow-events.ts';
import { fqdnSelectorKey, NameCache, type NameMatcher } from '../fqdn/index.ts';
import { type DnsProxyStats } from '../proxy/dns/index.ts';

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
  /** Whether the node proxy (HTTP and DNS) is connected. */
  proxyLinked: boolean;
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
  readonly #cluster: ClusterCache;
  readonly #registry: EndpointRegistry;
  #ready = false;
  #applies = 0;
  #applyChain: Promise<ApplyResult | undefined> = Promise.resolve(undefined);
  #applyPending = false;
  #nodesDirty = false;
  /** The node's proxies: the datapath steers L7 ports to them. */
  httpProxyPort: number | undefined;
  dnsProxyPort: number | undefined;
  /** The node proxy's name cache, mirrored: toFQDNs selectors allow what it holds. */
  #names: NameCache;
  /** The link to the node proxy (set once it is dialled): its DNS counters for status. */
  proxyLink: ProxyLink | undefined;
  #proxyLinked = false;
  /** The proxy's rules for expiry and eviction, so a mirrored record expires when the proxy's does. */
  #newNameMirror(): NameCache {
    const f = this.#cfg.fqdn;
    return new NameCache({ ...(f?.minTtl !== undefined ? { minTtl: f.minTtl } : {}), ...(f?.maxIpsPerName !== undefined ? { maxIpsPerName: f.maxIpsPerName } : {}) });
  }

  /** Resolves with the node proxy's first names message. */
  readonly #firstNames = Promise.withResolvers<void>();
  /** Resolves once the first apply is in the kernel: only then can learned addresses be confirmed. */
  readonly #firstApply = Promise.withResolvers<void>();
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
    this.#names = this.#newNameMirror();
    this.#cluster = new ClusterCache({
      cfg,
      log,
      localAddress: (ns, pod) => this.#registry.byPod(ns, pod)?.ip,
      onChange: (change) => {
        if (change === 'nodes') this.#nodesDirty = true;
        this.#scheduleApply();
      },
    });
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
      snapshot: () => this.#cluster.snapshot(),
      fqdns: (ip) => this.#names.namesForIp(ip),
      ownAddresses: () => [this.#cfg.network.underlayIp],
      peerAddresses: () => [...this.#cluster.nodes.values()].filter((n) => n.name !== this.#cfg.node).map((n) => n.ip),
    };
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** The file the node proxy saves its name cache to: loaded before the first apply. */
  get nameCacheFile(): string {
    return `${this.#cfg.runDir}/fqdn-cache.json`;
  }

  async start(): Promise<void> {
    await this.#registry.load();
    // toFQDNs sets come back full after a restart: the proxy's last saved names, before the first apply.
    const names = await this.#names.load(this.nameCacheFile);
    if (names > 0) this.#log.info({ entries: names }, 'FQDN names loaded from the node proxy\'s cache');
    await this.#cluster.start();
    // The proxy's cache is newer than its file (saved once a second): take it if it comes soon.
    if (this.proxyLink) await Promise.race([this.#firstNames.promise, new Promise((r) => setTimeout(r, 2000))]);
    await this.#setupNode();
    const first = await this.#apply();
    this.#ready = true;
    this.#firstApply.resolve();
    this.#log.info({ apply: first, stats: this.#cluster.engine.stats }, 'agent ready');
  }

  async stop(): Promise<void> {
    await this.#cluster.stop();
  }

  /** What the node proxy's link delivers (proxy-link.ts). */
  proxyLinkHandlers(): ProxyLinkHandlers {
    return {
      names: (entries) => {
        // The proxy's cache is the truth: what it forgot while we were away goes too.
        const mirror = this.#newNameMirror();
        mirror.restore(entries);
        this.#names = mirror;
        this.#proxyLinked = true;
        this.#firstNames.resolve();
        this.#scheduleApply();
      },
      unlinked: () => void (this.#proxyLinked = false),
      learned: (pod, name, ips, ttl) => {
        this.#names.record(pod, name, ips, ttl);
        return this.#firstApply.promise.then(() => this.fqdnLearned(name, ips));
      },
      forgotten: (name, ips) => {
        this.#names.forget(name, ips);
        this.#scheduleApply();
      },
      flow: (flow) => void this.flows.addFlow(flow),
      lost: (n) => this.flows.recordLost('HUBBLE_RING_BUFFER', n),
    };
  }

  async #setupNode(): Promise<void> {
    this.#nodesDirty = false;
    const n = this.#cfg.network;
    await this.#datapath.setupNode(
      { name: this.#cfg.node, underlayIp: n.underlayIp, underlayIf: n.underlayIf, underlayCIDR: n.underlayCIDR, podCIDR: n.podCIDR, clusterPodCIDR: n.clusterPodCIDR },
      [...this.#cluster.nodes.values()],
    );
  }

  // ------------------------------------------------------------ endpoints (CNI)

  /** Registers a pod the CNI plugin wired; resolves once its policy is in the kernel. */
  async registerEndpoint(r: Registration, timeoutMs = 10_000): Promise<void> {
    await this.#registry.add(r);
    const key = `${r.namespace}/${r.pod}`;
    const deadline = Date.now() + timeoutMs;
    while (!this.#cluster.pods.has(key)) {
      if (Date.now() > deadline) throw new Error(`pod ${key} is not known to the API server`);
      await new Promise((res) => setTimeout(res, 20));
    }
    this.#cluster.refreshLocalPod(r.namespace, r.pod);
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
    const snapshot = this.#cluster.snapshot();
    const known = new Set([...snapshot.endpoints()].map((e) => e.key));
    const peers = [...this.#cluster.nodes.values()].filter((n) => n.name !== this.#cfg.node);
    const installed = new Map<string, { selectors: readonly NameMatcher[]; ips: ReadonlySet<string> }>();
    const names = this.#names;
    const result = await this.#datapath.apply({
      snapshot,
      services: serviceEntries(this.#cluster.services.values(), this.#cluster.slices.values()),
      ...(this.httpProxyPort !== undefined ? { httpProxyPort: this.httpProxyPort } : {}),
      ...(this.dnsProxyPort !== undefined ? { dnsProxyPort: this.dnsProxyPort } : {}),
      fqdnIps: (selectors: readonly NameMatcher[]) => {
        const ips = names.ipsMatching(selectors);
        installed.set(fqdnSelectorKey(selectors), { selectors, ips });
        return ips;
      },
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

  /** The name cache with the pods behind each lookup named: `palisade fqdn cache`. The proxy's own when it answers, else the mirror. */
  async fqdnCacheEntries(): Promise<FqdnCacheRow[]> {
    const fresh = await this.proxyLink?.names();
    const names = fresh ? this.#newNameMirror() : this.#names;
    if (fresh) names.restore(fresh);
    const snap = this.#cluster.snapshot();
    return names.cacheEntries().map((e) => ({
      ...e,
      resolvedBy: e.resolvedBy.map((ip) => {
        const ep = snap.endpointByIp(ip);
        return ep ? { ip, namespace: ep.namespace, pod: ep.name } : { ip };
      }),
    }));
  }

  async status(): Promise<AgentStatus> {
    const dnsProxy = await this.proxyLink?.stats();
    return {
      node: this.#cfg.node,
      pid: process.pid,
      ready: this.#ready,
      datapath: this.#datapath.status(),
      endpoints: this.#registry.all(),
      engine: this.#cluster.engine.stats,
      rejectedPolicies: this.#cluster.rejected(),
      drops: await this.#datapath.dropCounters(),
      applies: this.#applies,
      flows: this.flows.status(),
      proxyLinked: this.#proxyLinked,
      ...(dnsProxy ? { dnsProxy } : {}),
    };
  }
}
