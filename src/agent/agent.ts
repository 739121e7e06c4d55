/**
 * The node agent: Kubernetes objects in, kernel state out. This file is the
 * wiring; the parts are ClusterCache (cluster-cache.ts), the apply queue
 * (apply-queue.ts), the FQDN mirror (fqdn-mirror.ts) and the flow store
 * (agent-flows.ts).
 *
 *   ClusterCache (informers ─► PolicyEngine) ──────────────────┐
 *   CNI plugin ──► endpoint registry (this node's pods) ───────┼──► ApplyQueue ─► datapath.apply(snapshot)
 *   node proxy ──► FqdnMirror (toFQDNs), L7 flow records ──────┘
 *
 * Start-up order matters for "no allowed connection fails while the agent
 * restarts": nothing in the kernel is touched until every resource has been
 * listed, the registry and the name cache are loaded; then the whole policy
 * is swapped in one atomic transaction. In order: load the registry, load the
 * name cache file, start the cluster cache (listed), wait ≤ 2 s for the
 * proxy's names, set up the node, first apply, ready.
 *
 * The HTTP and DNS proxies run in a process of their own (node-proxy.ts), so
 * they keep serving while the agent restarts; the agent mirrors their name
 * cache, which is what the toFQDNs sets hold.
 */
import type { Logger } from 'pino';
import type { PolicyEngine } from '../policy/index.ts';
import type { ApplyResult, Datapath, DatapathStatus, DropCounter } from '../datapath/index.ts';
import type { FlowMetrics, FlowStore, FlowStoreStatus, WorkloadPairTotals } from '../flows/index.ts';
import type { DnsProxyStats } from '../proxy/dns/index.ts';
import { serviceEntries } from './service-table.ts';
import { nameCacheFile, type AgentConfig } from './config.ts';
import { EndpointRegistry, type Registration } from './endpoint-registry.ts';
import { ClusterCache } from './cluster-cache.ts';
import type { ProxyLink, ProxyLinkHandlers } from './proxy-link.ts';
import type { FlowContext } from './flow-events.ts';
import { ApplyQueue } from './apply-queue.ts';
import { FqdnMirror, type FqdnCacheRow } from './fqdn-mirror.ts';
import { agentFlows } from './agent-flows.ts';
import { TrafficTracker } from './agent-traffic.ts';

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

export class Agent {
  readonly #cfg: AgentConfig;
  readonly #datapath: Datapath;
  readonly #log: Logger;
  readonly #cluster: ClusterCache;
  readonly #registry: EndpointRegistry;
  readonly #applies: ApplyQueue<ApplyResult>;
  /** The node proxy's name cache, mirrored: toFQDNs selectors allow what it holds. */
  readonly #fqdn: FqdnMirror;
  #ready = false;
  #nodesDirty = false;
  /** The node's proxies: the datapath steers L7 ports to them. */
  httpProxyPort: number | undefined;
  dnsProxyPort: number | undefined;
  /** The link to the node proxy (set once it is dialled): its DNS counters and name cache on demand. */
  proxyLink: ProxyLink | undefined;
  /** Every decision as a Hubble flow record, and the metrics derived from them. */
  readonly flows: FlowStore;
  readonly metrics: FlowMetrics;
  /** Forwarded bytes per workload pair, from the datapath's counters. */
  readonly #traffic: TrafficTracker;

  constructor(cfg: AgentConfig, datapath: Datapath, log: Logger) {
    this.#cfg = cfg;
    this.#datapath = datapath;
    this.#log = log;
    this.#registry = new EndpointRegistry(`${cfg.runDir}/endpoints.json`);
    this.#applies = new ApplyQueue({
      run: () => this.#applyNow(),
      onError: (err) => this.#log.error({ err }, 'datapath apply failed'),
    });
    this.#fqdn = new FqdnMirror({ fqdn: cfg.fqdn, apply: () => this.#applies.apply(), schedule: () => this.#applies.schedule() });
    this.#cluster = new ClusterCache({
      cfg,
      log,
      localAddress: (ns, pod) => this.#registry.byPod(ns, pod)?.ip,
      onChange: (change) => {
        if (change === 'nodes') this.#nodesDirty = true;
        this.#applies.schedule();
      },
    });
    ({ flows: this.flows, metrics: this.metrics } = agentFlows(cfg));
    this.#traffic = new TrafficTracker(datapath, this.flowContext(), this.metrics);
  }

  /** What flow producers need to enrich records: the current snapshot and the node addresses. */
  flowContext(): FlowContext {
    return {
      node: this.#cfg.node,
      snapshot: () => this.#cluster.snapshot(),
      fqdns: (ip) => this.#fqdn.namesForIp(ip),
      ownAddresses: () => [this.#cfg.network.underlayIp],
      peerAddresses: () => [...this.#cluster.nodes.values()].filter((n) => n.name !== this.#cfg.node).map((n) => n.ip),
    };
  }

  get ready(): boolean {
    return this.#ready;
  }

  async start(): Promise<void> {
    await this.#registry.load();
    // toFQDNs sets come back full after a restart: the proxy's last saved names, before the first apply.
    const names = await this.#fqdn.load(nameCacheFile(this.#cfg.runDir));
    if (names > 0) this.#log.info({ entries: names }, 'FQDN names loaded from the node proxy\'s cache');
    await this.#cluster.start();
    // The proxy's cache is newer than its file (saved once a second): take it if it comes soon.
    if (this.proxyLink) await this.#fqdn.proxyNames(2000);
    await this.#setupNode();
    // Events from here on schedule an apply after the first one (they may postdate its snapshot).
    this.#applies.startScheduling();
    const first = await this.#applies.apply();
    this.#ready = true;
    this.#fqdn.firstApplied();
    this.#traffic.start((err) => this.#log.warn({ err }, 'reading the datapath\'s traffic counters failed'));
    this.#log.info({ apply: first, stats: this.#cluster.engine.stats }, 'agent ready');
  }

  async stop(): Promise<void> {
    this.#traffic.stop();
    await this.#cluster.stop();
  }

  /** What the node proxy's link delivers (proxy-link.ts): names to the FQDN mirror, records to the flow store. */
  proxyLinkHandlers(): ProxyLinkHandlers {
    return {
      ...this.#fqdn.linkHandlers(),
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
    await this.#cluster.waitForPod(r.namespace, r.pod, timeoutMs);
    this.#cluster.refreshLocalPod(r.namespace, r.pod);
    await this.#applies.apply();
  }

  async deregisterEndpoint(containerId: string): Promise<void> {
    const r = await this.#registry.remove(containerId);
    if (r) await this.#applies.apply();
  }

  // ------------------------------------------------------------ datapath

  /** One apply of the current state; the apply queue runs them one at a time. */
  async #applyNow(): Promise<ApplyResult> {
    if (this.#nodesDirty) await this.#setupNode();
    const snapshot = this.#cluster.snapshot();
    const known = new Set([...snapshot.endpoints()].map((e) => e.key));
    const peers = [...this.#cluster.nodes.values()].filter((n) => n.name !== this.#cfg.node);
    const fqdn = this.#fqdn.forApply();
    const result = await this.#datapath.apply({
      snapshot,
      services: serviceEntries(this.#cluster.services.values(), this.#cluster.slices.values()),
      ...(this.httpProxyPort !== undefined ? { httpProxyPort: this.httpProxyPort } : {}),
      ...(this.dnsProxyPort !== undefined ? { dnsProxyPort: this.dnsProxyPort } : {}),
      fqdnIps: fqdn.fqdnIps,
      localEndpoints: this.#registry.localEndpoints().filter((e) => known.has(e.key)),
      ownAddresses: [this.#cfg.network.underlayIp],
      peerAddresses: peers.map((n) => n.ip),
    });
    fqdn.installed();
    if (result.endpointsProgrammed > 0 || result.ipcacheChanges > 0) this.#log.debug({ result }, 'datapath updated');
    return result;
  }

  /** The name cache with the pods behind each lookup named: `palisade fqdn cache`. The proxy's own when it answers, else the mirror. */
  async fqdnCacheEntries(): Promise<FqdnCacheRow[]> {
    const fresh = await this.proxyLink?.names();
    return this.#fqdn.cacheEntries(this.#cluster.snapshot(), fresh);
  }

  /** GET /v1/traffic: cumulative forwarded packets and bytes per workload pair, read at most a second ago. */
  traffic(): Promise<WorkloadPairTotals[]> {
    return this.#traffic.totals();
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
      applies: this.#applies.applied,
      flows: this.flows.status(),
      proxyLinked: this.#fqdn.linked,
      ...(dnsProxy ? { dnsProxy } : {}),
    };
  }
}
