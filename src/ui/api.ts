/**
 * The UI server's HTTP API: the one contract between the server (src/ui) and
 * the page (ui/). Types only, so the page's bundle imports it with `import type`.
 *
 *   GET /                         the page (dist/ui/index.html, app.js, app.css)
 *   GET /api/snapshot             UiSnapshot: everything the views draw, aggregated
 *   GET /api/events               text/event-stream; `event: snapshot` carrying a UiSnapshot,
 *                                 at most 4 a second and only when something changed
 *   ?edges=rows on either         the map's edges as EdgeRows (map.edges empty, map.edgeRows set):
 *                                 half the bytes for the page to receive and parse
 *   ?only=map on either           for a page showing only the map (and header): drops, dns, http
 *                                 and heat sent empty, `only: 'map'` set
 *   GET /api/flows?<filters>      FlowsPage: the newest flows (≤ `limit`, default 500) matching
 *                                 the filters, newest first
 *   GET /api/flows/stream?<filters>  text/event-stream; `event: flows` carrying FlowRow[] batches,
 *                                 at most 4 a second, each oldest first (≤ 1,000: the newest of its 250 ms)
 *   GET /api/flows/:id            the whole Hubble record of one row (GetFlowsResponse JSON)
 *   GET /api/fqdn                 FqdnView
 *   GET /api/prom/query_range?…   proxied to Prometheus' /api/v1/query_range when the server has one
 *   GET /api/prom/query?…         proxied to /api/v1/query
 *
 * Filters are `palisade observe`'s, one query parameter each, repeatable:
 * `namespace`, `pod`, `from-pod`, `to-pod`, `label`, `from-label`, `to-label`,
 * `ip`, `from-ip`, `to-ip`, `port`, `to-port`, `verdict`, `type`, `protocol`,
 * `fqdn`, `http-status`, `http-method`, `http-path`, `node`, plus `q` (free text
 * in the flows table's filter box, Hubble UI's `[!][from:|to:]kind=value` words).
 * A bad filter answers 400 {"error": "<which parameter, what is wrong>"}.
 *
 * Workload ids: "<namespace>/<workload>" for pods ("app" label, else the pod
 * name without its ReplicaSet/pod hash); "world/<fqdn or ip>" for outside
 * destinations (the FQDN when a DNS answer named the address); "host/<node>";
 * "reserved/<name>" for other reserved identities.
 */

export type Verdict = 'forwarded' | 'dropped' | 'mixed';

export interface UiSnapshot {
  /** ISO time the snapshot was made. */
  generatedAt: string;
  /** Rates are per second over this window. */
  rateWindowSeconds: number;
  /** Width of one bucket in every time series (`t` is the bucket's start, ms since epoch). */
  bucketSeconds: number;
  /** Where the flows come from: "lab <name>" or "relay <host:port>". */
  source: string;
  /** Prometheus the charts may query through /api/prom, when there is one. */
  prometheus?: string;
  totals: { flows: number; forwarded: number; dropped: number; lost: number; flowsPerSecond: number };
  map: ServiceMap;
  drops: DropsView;
  dns: DnsView;
  http: HttpView;
  heat: HeatView;
  health: NodeHealth[];
  /** With ?only=map: drops, dns, http and heat were left out (sent empty). */
  only?: 'map';
}

export interface ServiceMap {
  /** Kubernetes namespaces of the map's pods, sorted. Other workloads carry namespace "world", "host" or "reserved" (their kind). */
  namespaces: string[];
  workloads: Workload[];
  edges: Edge[];
  /**
   * Set when the map was capped (the server sends at most 5,000 edges, the
   * busiest, and 5,000 workloads, those of the sent edges first): how many
   * workloads and edges the server knows but left out.
   */
  omitted?: { workloads: number; edges: number };
  /** With ?edges=rows: the edges, compactly (then `edges` is empty). */
  edgeRows?: EdgeRows;
}

/**
 * The map's edges as numbers, 8 per edge in `rows`: source and destination (indexes
 * into `ids`), ports (index into `ports`, each entry an edge's ports joined by ","),
 * forwarded, dropped, rate, flags (bits 0-1 the verdict: 0 forwarded, 1 dropped,
 * 2 mixed; 4 l7, 8 dns, 16 tunnelled), lastSeen − `since` (ms). An edge's id is
 * `${source}->${destination}`.
 */
export interface EdgeRows {
  ids: string[];
  ports: string[];
  since: number;
  rows: number[];
}

export interface Workload {
  /** See "Workload ids" above. */
  id: string;
  namespace: string;
  name: string;
  kind: 'pod' | 'world' | 'host' | 'reserved';
  /** Distinct pods seen for it. */
  pods: number;
  /** Security labels, as flows carry them (`k8s:app=x`). */
  labels: string[];
  /** HTTP endpoints seen on it (as Hubble UI's cards): up to 20. */
  endpoints: { method: string; path: string; count: number }[];
}

export interface Edge {
  /** `${source}->${destination}` */
  id: string;
  source: string;
  destination: string;
  /** Destination ports with their protocol, e.g. "8080/TCP", "53/UDP". */
  ports: string[];
  forwarded: number;
  dropped: number;
  /** Flows per second over the rate window. */
  rate: number;
  verdict: Verdict;
  l7: boolean;
  dns: boolean;
  /** Carried through the mTLS tunnel (false until mTLS exists). */
  tunnelled: boolean;
  /** ms since epoch */
  lastSeen: number;
}

export interface Count {
  key: string;
  count: number;
}

export interface SeriesPoint {
  /** Bucket start, ms since epoch. */
  t: number;
  /** Count per key in that bucket (keys as in the view). */
  values: Record<string, number>;
}

export interface DropsView {
  total: number;
  byReason: Count[];
  /** "<namespace>/<policy name>" of the policy that enforced the default deny or whose deny rule matched; "(no policy)" when none is named. */
  byPolicy: Count[];
  bySource: Count[];
  byDestination: Count[];
  /** Per bucket, by reason. */
  series: SeriesPoint[];
  /** The newest drops, newest first (≤ 50). */
  recent: FlowRow[];
}

export interface DnsView {
  queries: number;
  /** Per queried name: queries and answers by rcode. */
  names: { name: string; queries: number; rcodes: Record<string, number>; lastIps: string[] }[];
  /** Per bucket: "queries", "NOERROR", "REFUSED", "NXDOMAIN", "other". */
  series: SeriesPoint[];
  /** The newest DNS records, newest first (≤ 50). */
  recent: FlowRow[];
}

export interface HttpView {
  requests: number;
  byMethod: Count[];
  /** Status code as text ("200", "403", …). */
  byStatus: Count[];
  /** Upper bounds, seconds, of the latency buckets used by `latency`. */
  latencyBuckets: number[];
  /** Per time bucket: counts per latency bucket, keyed by the upper bound as text ("0.005", …, "+Inf"). */
  latency: SeriesPoint[];
  /** Paths answered 403 by policy, most first. */
  topDenied: { method: string; path: string; destination: string; count: number }[];
  recent: FlowRow[];
}

export interface HeatView {
  /** Row and column keys are workload ids. */
  workloads: string[];
  /** Per source × destination pair with traffic. */
  cells: { source: string; destination: string; flows: number; bytes: number; requests: number; latencyMsAvg: number | null }[];
  /** Per bucket, total flows / bytes / requests (keys "flows", "bytes", "requests"). */
  series: SeriesPoint[];
}

export interface NodeHealth {
  node: string;
  state: 'ready' | 'unreachable' | 'degraded';
  datapath?: string;
  version?: string;
  flows?: number;
  lost?: number;
  /** What went wrong when not ready. */
  message?: string;
}

/** One row of the flows table (Hubble UI's columns). */
export interface FlowRow {
  /** Opaque; GET /api/flows/:id gives the whole record while it is kept. */
  id: string;
  /** ms since epoch */
  time: number;
  node: string;
  source: { workload: string; pod?: string; namespace?: string; ip: string; identity: number };
  destination: { workload: string; pod?: string; namespace?: string; ip: string; identity: number };
  port?: number;
  protocol: string;
  /** "HTTP GET /path → 403", "DNS A example.com. NOERROR", … */
  l7?: string;
  direction: 'ingress' | 'egress' | 'unknown';
  verdict: 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED' | 'TRANSLATED';
  dropReason?: string;
  /** The policies named by the record (allowed_by / denied_by), "<ns>/<name>". */
  policies: string[];
  tcpFlags?: string;
  authenticated: boolean;
}

export interface FlowsPage {
  flows: FlowRow[];
  /** How many flows the server keeps for the table. */
  kept: number;
}

export interface FqdnView {
  /** Per node: the FQDN cache the agent holds. */
  nodes: { node: string; entries: { name: string; ips: string[]; ttlSeconds: number; pods: string[] }[]; error?: string }[];
}
