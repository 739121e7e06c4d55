/**
 * Every flow → the views of api.ts, incrementally:
 *
 *   add(envelope) ─┬─ totals, flows/s
 *                  ├─ workloads (by id: pods, labels, HTTP endpoints) and edges (by source->destination:
 *                  │  ports, forwarded/dropped, rate, L7/DNS badges; heat: flows, requests, latency)
 *                  ├─ drops by reason / policy / source / destination, series by reason
 *                  ├─ DNS per name (queries, rcodes, last IPs), series; names → IPs seen (FQDN fallback)
 *                  └─ HTTP by method / status, latency histogram per bucket, top denied paths
 *   snapshot() ─► UiSnapshot (sorted, capped), built by the server at most 4×/s
 *
 * The per-flow path is map lookups and counter increments: no JSON, no
 * sorting, no per-flow allocation beyond new keys. Every map is bounded
 * (AggregatorLimits); past a bound new keys count under "(other)" or the
 * least recently seen edges/workloads are evicted.
 */
import { parseFlowTime, type Endpoint, type Flow, type FlowEnvelope } from '../flows/index.ts';
import type { DnsView, Edge, FlowRow, FqdnView, HttpView, NodeHealth, UiSnapshot, Workload } from './api.ts';
import { BoundedCounts, BucketSeries, Newest, RateWindow } from './aggregate-parts.ts';
import { destinationPort, flowRow, l4Protocol, policyName, rcodeName, urlPath } from './flow-row.ts';
import { RecentFlows } from './recent-flows.ts';
import { workloadOf, type WorkloadRef } from './workload.ts';

export interface AggregatorLimits {
  /** Workloads and edges kept; past these the least recently seen are evicted. */
  workloads: number;
  edges: number;
  /** Edges and heat cells a snapshot carries (busiest first); workloads of those edges come first. */
  snapshotEdges: number;
  snapshotWorkloads: number;
  heatCells: number;
  /** Keys of each drop / HTTP / DNS counter. */
  keys: number;
  dnsNames: number;
  /** Addresses remembered from DNS answers (world endpoints named by FQDN); cleared when full. */
  ipNames: number;
}

export const DEFAULT_LIMITS: AggregatorLimits = {
  workloads: 20_000,
  edges: 50_000,
  snapshotEdges: 5_000,
  snapshotWorkloads: 5_000,
  heatCells: 2_000,
  keys: 1_000,
  dnsNames: 2_000,
  ipNames: 20_000,
};

export interface AggregatorOptions {
  /** "lab <name>" or "relay <host:port>". */
  source: string;
  prometheus?: string;
  bucketSeconds?: number;
  /** Buckets in every series (the window is buckets × bucketSeconds). */
  buckets?: number;
  rateWindowSeconds?: number;
  limits?: Partial<AggregatorLimits>;
  now?: () => number;
}

/** Upper bounds, seconds: Hubble's http_request_duration_seconds buckets (Prometheus' defaults). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LATENCY_KEYS = [...LATENCY_BUCKETS.map(String), '+Inf'];

interface WorkloadAgg {
  ref: WorkloadRef;
  pods: Set<string>;
  labels: string[];
  endpoints: Map<string, { method: string; path: string; count: number }>;
  lastSeen: number;
}

interface EdgeAgg {
  id: string;
  source: string;
  destination: string;
  ports: Set<string>;
  forwarded: number;
  dropped: number;
  lastForwarded: number;
  lastDropped: number;
  rate: RateWindow;
  l7: boolean;
  dns: boolean;
  lastSeen: number;
  requests: number;
  latencySumMs: number;
  latencyCount: number;
}

interface DnsNameAgg {
  queries: number;
  rcodes: Record<string, number>;
  lastIps: string[];
  ttl: number;
  answeredAt: number;
  node: string;
  pods: Set<string>;
}

interface Recent {
  seq: number;
  e: FlowEnvelope;
}

const MAX_ENDPOINTS = 20;
const MAX_PORTS = 16;
const MAX_PODS = 5_000;
const MAX_LABELS = 32;

export class Aggregator {
  readonly source: string;
  readonly prometheus: string | undefined;
  readonly bucketMs: number;
  readonly rateWindowSeconds: number;
  readonly limits: AggregatorLimits;
  readonly #now: () => number;
  readonly #windowMs: number;

  /** Bumped by every change a snapshot would show. */
  changes = 0;

  #flows = 0;
  #forwarded = 0;
  #dropped = 0;
  #lost = 0;
  readonly #rate: RateWindow;

  readonly #workloads = new Map<string, WorkloadAgg>();
  readonly #edges = new Map<string, EdgeAgg>();
  /** The same edges by source, then destination: the per-flow lookup builds no key string. */
  readonly #edgesBySource = new Map<string, Map<string, EdgeAgg>>();

  #drops = 0;
  readonly #dropReason: BoundedCounts;
  readonly #dropPolicy: BoundedCounts;
  readonly #dropSource: BoundedCounts;
  readonly #dropDestination: BoundedCounts;
  readonly #dropSeries: BucketSeries;
  readonly #dropRecent = new Newest<Recent>(50);

  #dnsQueries = 0;
  readonly #dnsNames = new Map<string, DnsNameAgg>();
  /** Address → the name a DNS answer gave it, for world endpoints whose flow names none. */
  readonly #ipNames = new Map<string, string[]>();
  readonly #dnsSeries: BucketSeries;
  readonly #dnsRecent = new Newest<Recent>(50);

  #httpRequests = 0;
  readonly #httpMethod: BoundedCounts;
  readonly #httpStatus: BoundedCounts;
  readonly #httpLatency: BucketSeries;
  readonly #httpDenied = new Map<string, { method: string; path: string; destination: string; count: number }>();
  readonly #httpRecent = new Newest<Recent>(50);

  readonly #heatSeries: BucketSeries;
  /** Bytes per source, then destination workload id, cumulative: the agents' datapath counters (setTraffic). */
  #trafficBytes = new Map<string, Map<string, number>>();
  /** Their sum at the last reading (-1 before the first): what grew since goes into the `bytes` series. */
  #trafficTotal = -1;
  #health: NodeHealth[] = [];
  #healthJson = '[]';

  constructor(o: AggregatorOptions) {
    this.source = o.source;
    this.prometheus = o.prometheus;
    this.bucketMs = (o.bucketSeconds ?? 10) * 1000;
    const buckets = o.buckets ?? 60;
    this.#windowMs = buckets * this.bucketMs;
    this.rateWindowSeconds = o.rateWindowSeconds ?? 10;
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.#now = o.now ?? Date.now;
    this.#rate = new RateWindow(this.rateWindowSeconds);
    const k = this.limits.keys;
    this.#dropReason = new BoundedCounts(k);
    this.#dropPolicy = new BoundedCounts(k);
    this.#dropSource = new BoundedCounts(k);
    this.#dropDestination = new BoundedCounts(k);
    this.#httpMethod = new BoundedCounts(k);
    this.#httpStatus = new BoundedCounts(k);
    this.#dropSeries = new BucketSeries(buckets, this.bucketMs);
    this.#dnsSeries = new BucketSeries(buckets, this.bucketMs);
    this.#httpLatency = new BucketSeries(buckets, this.bucketMs);
    this.#heatSeries = new BucketSeries(buckets, this.bucketMs);
  }

  /** Events the sources could not deliver (Hubble lost_events). */
  lost(n: number): void {
    this.#lost += n;
    this.changes++;
  }

  setHealth(health: NodeHealth[]): void {
    const json = JSON.stringify(health);
    if (json === this.#healthJson) return;
    this.#health = health;
    this.#healthJson = json;
    this.changes++;
  }

  /**
   * Bytes per workload pair, cumulative, as the source read them (sources.ts
   * followTraffic): flows carry no byte counts, the datapath's counters do.
   * What the total grew by since the last reading is put in the current
   * bucket of the heat series; a total that shrank (an agent's pairs evicted,
   * a node gone) only moves the baseline.
   */
  setTraffic(rows: readonly { source: string; destination: string; bytes: number }[]): void {
    const bytes = new Map<string, Map<string, number>>();
    let total = 0;
    for (const r of rows) {
      let byDst = bytes.get(r.source);
      if (byDst === undefined) bytes.set(r.source, (byDst = new Map()));
      byDst.set(r.destination, (byDst.get(r.destination) ?? 0) + r.bytes);
      total += r.bytes;
    }
    this.#trafficBytes = bytes;
    if (total === this.#trafficTotal) return;
    if (this.#trafficTotal >= 0 && total > this.#trafficTotal) this.#heatSeries.add(this.#now(), 'bytes', total - this.#trafficTotal);
    this.#trafficTotal = total;
    this.changes++;
  }

  /** One flow. `seq` is its place in RecentFlows (for row ids of the recent lists). */
  add(e: FlowEnvelope, seq: number): void {
    const f = e.flow;
    const now = this.#now();
    let t = parseFlowTime(f.time);
    if (!(t <= now)) t = now; // NaN or a clock ahead of ours: count it as now
    this.changes++;
    this.#flows++;
    this.#rate.add(Math.floor(t / 1000));
    const dropped = f.verdict === 'DROPPED' || f.verdict === 'ERROR';
    if (f.verdict === 'DROPPED') this.#dropped++;
    else if (f.verdict === 'FORWARDED') this.#forwarded++;

    const node = f.node_name ?? e.node_name;
    const src = workloadOf(f.source, f.IP?.source, f.source_names ?? this.#namesOf(f.source, f.IP?.source), node);
    const dst = workloadOf(f.destination, f.IP?.destination, f.destination_names ?? this.#namesOf(f.destination, f.IP?.destination), node);
    const srcAgg = this.#touchWorkload(src, f.source?.pod_name, f.source?.labels, t);
    const dstAgg = this.#touchWorkload(dst, f.destination?.pod_name, f.destination?.labels, t);
    // A reply (an L7 answer: Hubble's source is the server) belongs to the client → server edge.
    const reply = f.is_reply === true;
    const client = reply ? dst : src;
    const server = reply ? src : dst;
    const serverAgg = reply ? srcAgg : dstAgg;

    const l7 = f.l7;
    const http = l7?.http;
    const dns = l7?.dns;
    const isRequest = l7 === undefined || l7.type !== 'RESPONSE';
    const inWindow = t > now - this.#windowMs;

    // Edges: client → server only. L3/L4 replies are left out (every edge would count its packets twice);
    // L7 answers count, on the request's edge, for their status and latency.
    let edge: EdgeAgg | undefined;
    if (!reply || l7 !== undefined) {
      edge = this.#touchEdge(client.id, server.id, t);
      const port = destinationPort(f, reply);
      if (port !== undefined && edge.ports.size < MAX_PORTS) edge.ports.add(`${port}/${l4Protocol(f)}`);
      if (dropped) {
        edge.dropped++;
        edge.lastDropped = Math.max(edge.lastDropped, t);
      } else {
        edge.forwarded++;
        edge.lastForwarded = Math.max(edge.lastForwarded, t);
      }
      edge.rate.add(Math.floor(t / 1000));
      if (http !== undefined) edge.l7 = true;
      if (dns !== undefined) edge.dns = true;
    }
    if (inWindow) this.#heatSeries.add(t, 'flows');

    // Drops: an L7 denial is one drop (its request), not two (request and 403 answer).
    if (f.verdict === 'DROPPED' && isRequest) {
      this.#drops++;
      const reason = f.drop_reason_desc ?? (http !== undefined ? 'L7_HTTP_DENIED' : dns !== undefined ? 'L7_DNS_DENIED' : 'UNKNOWN');
      this.#dropReason.add(reason);
      const by = f.ingress_denied_by ?? f.egress_denied_by;
      if (by !== undefined && by.length > 0) for (const p of by) this.#dropPolicy.add(policyName(p));
      else this.#dropPolicy.add('(no policy)');
      this.#dropSource.add(src.id);
      this.#dropDestination.add(dst.id);
      if (inWindow) this.#dropSeries.add(t, reason);
      this.#dropRecent.push({ seq, e });
    }

    if (dns !== undefined) this.#addDns(dns, l7?.type, reply ? f.destination : f.source, client, node, t, inWindow, seq, e);

    if (http !== undefined) {
      const path = urlPath(http.url);
      const method = http.method ?? '';
      if (isRequest) {
        this.#httpRequests++;
        this.#httpMethod.add(method);
        if (edge !== undefined) edge.requests++;
        if (inWindow) this.#heatSeries.add(t, 'requests');
        const key = `${method} ${path}`;
        const ep = serverAgg.endpoints.get(key);
        if (ep !== undefined) ep.count++;
        else if (serverAgg.endpoints.size < MAX_ENDPOINTS) serverAgg.endpoints.set(key, { method, path, count: 1 });
      } else {
        if (http.code !== undefined && http.code !== 0) this.#httpStatus.add(String(http.code));
        const latencyNs = Number(l7?.latency_ns ?? 0);
        if (latencyNs > 0) {
          const s = latencyNs / 1e9;
          let b = 0;
          while (b < LATENCY_BUCKETS.length && s > (LATENCY_BUCKETS[b] as number)) b++;
          if (inWindow) this.#httpLatency.add(t, LATENCY_KEYS[b] as string);
          if (edge !== undefined) {
            edge.latencySumMs += latencyNs / 1e6;
            edge.latencyCount++;
          }
        }
        if (http.code === 403 && f.verdict === 'DROPPED') {
          const key = `${method} ${path} ${server.id}`;
          const d = this.#httpDenied.get(key);
          if (d !== undefined) d.count++;
          else if (this.#httpDenied.size < this.limits.keys) this.#httpDenied.set(key, { method, path, destination: server.id, count: 1 });
        }
      }
      this.#httpRecent.push({ seq, e });
    }
  }

  #addDns(dns: NonNullable<NonNullable<Flow['l7']>['dns']>, type: string | undefined, clientEp: Endpoint | undefined, client: WorkloadRef, node: string, t: number, inWindow: boolean, seq: number, e: FlowEnvelope): void {
    const name = dns.query ?? '';
    let agg = this.#dnsNames.get(name);
    if (agg === undefined && this.#dnsNames.size < this.limits.dnsNames) {
      agg = { queries: 0, rcodes: {}, lastIps: [], ttl: 0, answeredAt: 0, node, pods: new Set() };
      this.#dnsNames.set(name, agg);
    }
    const isQuery = type !== 'RESPONSE';
    if (isQuery) {
      this.#dnsQueries++;
      if (agg !== undefined) agg.queries++;
      if (inWindow) this.#dnsSeries.add(t, 'queries');
    }
    // Answers carry the rcode; so does a query the proxy refused itself (no answer record follows).
    if (!isQuery || dns.rcode !== undefined) {
      const rc = rcodeName(dns.rcode);
      if (agg !== undefined) agg.rcodes[rc] = (agg.rcodes[rc] ?? 0) + 1;
      if (inWindow) this.#dnsSeries.add(t, rc === 'NOERROR' || rc === 'REFUSED' || rc === 'NXDOMAIN' ? rc : 'other');
    }
    if (dns.ips !== undefined && name !== '') {
      for (const ip of dns.ips) {
        if (this.#ipNames.size >= this.limits.ipNames) this.#ipNames.clear();
        this.#ipNames.set(ip, [name]);
      }
    }
    if (agg !== undefined && dns.ips !== undefined && dns.ips.length > 0) {
      agg.lastIps = dns.ips.slice(0, 16);
      agg.ttl = dns.ttl ?? 0;
      agg.answeredAt = t;
      agg.node = node;
      // The pod that asked: the answer's destination.
      const pod = clientEp?.pod_name;
      if (agg.pods.size < 64) agg.pods.add(pod !== undefined ? `${clientEp?.namespace ?? ''}/${pod}` : client.id);
    }
    this.#dnsRecent.push({ seq, e });
  }

  /** Names of a world address from the DNS answers seen (pods and known identities need none). */
  #namesOf(ep: Endpoint | undefined, ip: string | undefined): string[] | undefined {
    if (ip === undefined || ep?.pod_name !== undefined || this.#ipNames.size === 0) return undefined;
    return this.#ipNames.get(ip);
  }

  #touchWorkload(ref: WorkloadRef, pod: string | undefined, labels: string[] | undefined, t: number): WorkloadAgg {
    let w = this.#workloads.get(ref.id);
    if (w === undefined) {
      if (this.#workloads.size >= this.limits.workloads) evictOldest(this.#workloads, this.limits.workloads);
      w = { ref, pods: new Set(), labels: labels?.slice(0, MAX_LABELS) ?? [], endpoints: new Map(), lastSeen: t };
      this.#workloads.set(ref.id, w);
    } else if (t > w.lastSeen) w.lastSeen = t;
    if (pod !== undefined && w.pods.size < MAX_PODS) w.pods.add(pod);
    return w;
  }

  #touchEdge(source: string, destination: string, t: number): EdgeAgg {
    let bySource = this.#edgesBySource.get(source);
    let edge = bySource?.get(destination);
    if (edge === undefined) {
      if (this.#edges.size >= this.limits.edges) {
        for (const gone of evictOldest(this.#edges, this.limits.edges)) this.#edgesBySource.get(gone.source)?.delete(gone.destination);
      }
      const id = `${source}->${destination}`;
      edge = {
        id, source, destination, ports: new Set(), forwarded: 0, dropped: 0, lastForwarded: 0, lastDropped: 0,
        rate: new RateWindow(this.rateWindowSeconds), l7: false, dns: false, lastSeen: t, requests: 0, latencySumMs: 0, latencyCount: 0,
      };
      this.#edges.set(id, edge);
      if (bySource === undefined) this.#edgesBySource.set(source, (bySource = new Map()));
      bySource.set(destination, edge);
    } else if (t > edge.lastSeen) edge.lastSeen = t;
    return edge;
  }

  /** Names → addresses as DNS answers showed them (for sources without an FQDN cache API: a relay). */
  observedFqdn(): FqdnView {
    const now = this.#now();
    const byNode = new Map<string, FqdnView['nodes'][number]['entries']>();
    for (const [name, a] of this.#dnsNames) {
      if (a.lastIps.length === 0) continue;
      const entries = byNode.get(a.node) ?? [];
      entries.push({ name, ips: a.lastIps, ttlSeconds: Math.round(a.ttl - (now - a.answeredAt) / 1000), pods: [...a.pods] });
      byNode.set(a.node, entries);
    }
    return { nodes: [...byNode].sort(([a], [b]) => a.localeCompare(b)).map(([node, entries]) => ({ node, entries: entries.sort((x, y) => x.name.localeCompare(y.name)) })) };
  }

  snapshot(): UiSnapshot {
    const now = this.#now();
    const nowSec = Math.floor(now / 1000);
    const recentRows = (n: Newest<Recent>): FlowRow[] => n.newestFirst().map((r) => flowRow(RecentFlows.rowId(r.seq, r.e), r.e));
    const edges = this.#snapshotEdges(now, nowSec);
    return {
      generatedAt: new Date(now).toISOString(),
      rateWindowSeconds: this.rateWindowSeconds,
      bucketSeconds: this.bucketMs / 1000,
      source: this.source,
      ...(this.prometheus !== undefined ? { prometheus: this.prometheus } : {}),
      totals: { flows: this.#flows, forwarded: this.#forwarded, dropped: this.#dropped, lost: this.#lost, flowsPerSecond: this.#rate.rate(nowSec) },
      map: this.#map(edges),
      drops: {
        total: this.#drops,
        byReason: this.#dropReason.top(),
        byPolicy: this.#dropPolicy.top(),
        bySource: this.#dropSource.top(100),
        byDestination: this.#dropDestination.top(100),
        series: this.#dropSeries.points(now),
        recent: recentRows(this.#dropRecent),
      },
      dns: this.#dnsView(now, recentRows(this.#dnsRecent)),
      http: this.#httpView(now, recentRows(this.#httpRecent)),
      heat: this.#heat(edges, now),
      health: this.#health,
    };
  }

  /** The busiest edges (rate, then most recent), capped, as api.ts Edges, sorted by id for a stable layout. */
  #snapshotEdges(now: number, nowSec: number): { agg: EdgeAgg; edge: Edge }[] {
    const all: { agg: EdgeAgg; edge: Edge }[] = [];
    const recentMs = this.#windowMs;
    for (const a of this.#edges.values()) {
      const fwdRecent = a.lastForwarded > now - recentMs;
      const dropRecent = a.lastDropped > now - recentMs;
      // Mixed while both happened within the series window; an idle edge keeps its last state.
      const verdict: Edge['verdict'] =
        fwdRecent && dropRecent ? 'mixed' : dropRecent ? 'dropped' : fwdRecent ? 'forwarded' : a.lastDropped > a.lastForwarded ? 'dropped' : 'forwarded';
      all.push({
        agg: a,
        edge: {
          id: a.id, source: a.source, destination: a.destination, ports: [...a.ports].sort(), forwarded: a.forwarded, dropped: a.dropped,
          rate: round3(a.rate.rate(nowSec)), verdict, l7: a.l7, dns: a.dns, tunnelled: false, lastSeen: Math.floor(a.lastSeen),
        },
      });
    }
    if (all.length > this.limits.snapshotEdges) {
      all.sort((x, y) => y.edge.rate - x.edge.rate || y.agg.lastSeen - x.agg.lastSeen);
      all.length = this.limits.snapshotEdges;
    }
    return all.sort((x, y) => (x.edge.id < y.edge.id ? -1 : x.edge.id > y.edge.id ? 1 : 0));
  }

  #map(edges: { edge: Edge }[]): UiSnapshot['map'] {
    const max = this.limits.snapshotWorkloads;
    const chosen = new Set<string>();
    for (const { edge } of edges) {
      if (chosen.size >= max) break;
      chosen.add(edge.source);
      if (chosen.size < max) chosen.add(edge.destination);
    }
    if (chosen.size < max) {
      // Workloads without a drawn edge, most recently seen first.
      const rest = [...this.#workloads.values()].filter((w) => !chosen.has(w.ref.id)).sort((a, b) => b.lastSeen - a.lastSeen);
      for (const w of rest) {
        if (chosen.size >= max) break;
        chosen.add(w.ref.id);
      }
    }
    const workloads: Workload[] = [];
    const namespaces = new Set<string>();
    for (const id of chosen) {
      const w = this.#workloads.get(id);
      if (w === undefined) continue;
      if (w.ref.kind === 'pod') namespaces.add(w.ref.namespace);
      workloads.push({
        id, namespace: w.ref.namespace, name: w.ref.name, kind: w.ref.kind, pods: w.pods.size, labels: w.labels,
        endpoints: [...w.endpoints.values()].sort((a, b) => b.count - a.count).map((x) => ({ ...x })),
      });
    }
    workloads.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const omittedWorkloads = Math.max(0, this.#workloads.size - workloads.length);
    const omittedEdges = Math.max(0, this.#edges.size - edges.length);
    return {
      namespaces: [...namespaces].sort(),
      workloads,
      edges: edges.map((x) => x.edge),
      ...(omittedWorkloads + omittedEdges > 0 ? { omitted: { workloads: omittedWorkloads, edges: omittedEdges } } : {}),
    };
  }

  #dnsView(now: number, recent: FlowRow[]): DnsView {
    const names = [...this.#dnsNames].map(([name, a]) => ({ name, queries: a.queries, rcodes: { ...a.rcodes }, lastIps: a.lastIps }));
    names.sort((a, b) => b.queries - a.queries || a.name.localeCompare(b.name));
    return { queries: this.#dnsQueries, names, series: this.#dnsSeries.points(now), recent };
  }

  #httpView(now: number, recent: FlowRow[]): HttpView {
    const topDenied = [...this.#httpDenied.values()].sort((a, b) => b.count - a.count).slice(0, 50).map((x) => ({ ...x }));
    return {
      requests: this.#httpRequests,
      byMethod: this.#httpMethod.top(),
      byStatus: this.#httpStatus.top(),
      latencyBuckets: LATENCY_BUCKETS,
      latency: this.#httpLatency.points(now),
      topDenied,
      recent,
    };
  }

  /**
   * A cell's bytes, from the datapath's counters (0 without them: a relay
   * source has none). Edges run client → server, so the answers' bytes
   * (server → client) count on the request's cell too, unless the other way
   * is an edge of its own.
   */
  #cellBytes(source: string, destination: string): number {
    const sent = this.#trafficBytes.get(source)?.get(destination) ?? 0;
    const back = this.#edgesBySource.get(destination)?.has(source) === true ? 0 : (this.#trafficBytes.get(destination)?.get(source) ?? 0);
    return sent + back;
  }

  #heat(edges: { agg: EdgeAgg }[], now: number): UiSnapshot['heat'] {
    let cells = edges.map(({ agg: a }) => ({
      source: a.source, destination: a.destination, flows: a.forwarded + a.dropped,
      bytes: this.#cellBytes(a.source, a.destination), requests: a.requests, latencyMsAvg: a.latencyCount > 0 ? round3(a.latencySumMs / a.latencyCount) : null,
    }));
    if (cells.length > this.limits.heatCells) cells = cells.sort((a, b) => b.flows - a.flows).slice(0, this.limits.heatCells);
    const ids = new Set<string>();
    for (const c of cells) { ids.add(c.source); ids.add(c.destination); }
    return { workloads: [...ids].sort(), cells, series: this.#heatSeries.points(now) };
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Evict the least recently seen tenth (one sweep per tenth of inserts, not a sort per insert); returns what went. */
function evictOldest<V extends { lastSeen: number }>(m: Map<string, V>, max: number): V[] {
  const n = Math.max(1, Math.floor(max / 10));
  const cut = [...m.values()].map((v) => v.lastSeen).sort((a, b) => a - b)[n - 1] ?? Infinity;
  const gone: V[] = [];
  for (const [k, v] of m) {
    if (gone.length >= n) break;
    if (v.lastSeen <= cut) {
      m.delete(k);
      gone.push(v);
    }
  }
  return gone;
}
