/**
 * Prometheus metrics from flows, with Hubble's names and labels
 * (cilium pkg/hubble/metrics: flow, drop, dns, httpV2, tcp, policy handlers),
 * so Hubble's Grafana dashboards (and deploy/grafana) work unchanged. One
 * registry per agent, served at GET /metrics on its API socket
 * (handleMetricsRequest) or on a TCP listener such as Hubble's :9965
 * (startMetricsServer).
 *
 *   store.onFlow(e => metrics.observeFlow(e))  ──►  counters  ──►  GET /metrics
 *
 * Context labels, as Hubble's context options name them:
 * - `labelsContext` (default source_namespace, source_workload,
 *   destination_namespace, destination_workload, traffic_direction): one
 *   label each, first in every series as Hubble puts them. A workload is the
 *   endpoint's first `workloads` entry when the record has one, else its app
 *   label (app.kubernetes.io/name, k8s-app, app, as Hubble's `app`), else the
 *   pod name: Palisade knows pods, not their owners. Endpoints that are not
 *   pods (world, host, remote-node, …) get an empty namespace and their
 *   reserved identity as workload, so dashboards can show traffic to the
 *   world; Hubble leaves the workload empty there.
 * - `source`, `destination` ("namespace/pod", or the reserved identity such
 *   as "world"): Hubble's sourceContext/destinationContext=pod|reserved-identity.
 * - palisade_traffic_{bytes,packets}_total: forwarded bytes per workload
 *   pair from the datapath's counters (trackTraffic), with the four
 *   source/destination namespace/workload labels whatever labelsContext says:
 *   flows carry no byte counts, so these come from the kernel, not observeFlow.
 * Every context label is bounded: after `maxContextValues` distinct values of
 * a label, new values count as "other", so a churn of pods cannot blow up the
 * series count. The same cap bounds the DNS `query` label.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Histogram, Registry } from 'prom-client';
import { EVENT_TYPE, TRACE_POINTS, endpointName, flowProtocol, policyMatchTypeName, type Endpoint, type FlowEnvelope } from './flow.ts';

export type ContextLabel = 'source' | 'destination';

/** Hubble's labelsContext values, in the order Hubble puts them in a series. */
const LABELS_CONTEXT = [
  'source_pod', 'source_namespace', 'source_workload', 'source_app',
  'destination_pod', 'destination_namespace', 'destination_workload', 'destination_app',
  'traffic_direction',
] as const;
export type LabelsContextLabel = (typeof LABELS_CONTEXT)[number];

const DEFAULT_LABELS_CONTEXT: readonly LabelsContextLabel[] = ['source_namespace', 'source_workload', 'destination_namespace', 'destination_workload', 'traffic_direction'];

export interface FlowMetricsOptions {
  /** `source` / `destination` labels ("namespace/pod" or the reserved identity); default both. */
  contextLabels?: readonly ContextLabel[];
  /** Hubble's labelsContext; default DEFAULT_LABELS_CONTEXT. */
  labelsContext?: readonly LabelsContextLabel[];
  /** The DNS metrics' `query` label (Hubble's dns:query option); default true. */
  dnsQuery?: boolean;
  /** Distinct values per context label before "other". Default 256. */
  maxContextValues?: number;
  /**
   * The events that record each forwarded new connection once, which
   * hubble_tcp_flags_total and palisade_forward_* count. The legacy datapath
   * records every new connection as a trace event, and policy verdicts repeat
   * some of those packets ('trace', the default); the eBPF datapath records
   * policy verdicts only ('policy-verdict').
   */
  connectionEvents?: 'trace' | 'policy-verdict';
  registry?: Registry;
}

/** DNS rcodes as Hubble's dns handler names them. */
const RCODES: Record<number, string> = {
  0: 'No Error', 1: 'Format Error', 2: 'Server Failure', 3: 'Non-Existent Domain', 4: 'Not Implemented', 5: 'Query Refused',
};

/** Hubble's `app` context: the first of these pod labels that has a value. */
const APP_LABELS = ['k8s:app.kubernetes.io/name=', 'k8s:k8s-app=', 'k8s:app='];

type SideField = 'pod' | 'namespace' | 'workload' | 'app';

/**
 * One endpoint's context label values on one side of a flow (source or
 * destination), interned: endpoints with the same values share one object,
 * which the series trie takes as a key, so a flow costs no string building.
 */
interface Side {
  /** The side's labelsContext values, in LABELS_CONTEXT order. */
  readonly ctx: readonly string[];
  /** `source` / `destination` label value ('' when that label is off). */
  readonly name: string;
}

/** A flow's context: which label values of each side, and the direction. */
type Context = readonly [Side, Side, string];

/**
 * Counts kept by label values and handed to prom-client only at scrape
 * time: prom-client's inc(labels) hashes and validates the label object on
 * every call (~1 µs, too much per flow); a Map hit costs a fraction of that.
 */
class Series {
  /** A trie on the key parts (context objects, then label values): no key string built per flow; leaves are the counts. */
  readonly #root = new Map<unknown, unknown>();
  readonly #entries: { ctx: Context; values: string[]; n: number }[] = [];
  inc(ctx: Context, values: string[], n = 1): void {
    let node = this.#root;
    for (const k of ctx) {
      let next = node.get(k) as Map<unknown, unknown> | undefined;
      if (next === undefined) node.set(k, (next = new Map()));
      node = next;
    }
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const v = values[i] as string;
      let next = node.get(v) as Map<unknown, unknown> | undefined;
      if (next === undefined) node.set(v, (next = new Map()));
      node = next;
    }
    const leafKey = values[last] as string;
    const entry = node.get(leafKey) as { n: number } | undefined;
    if (entry !== undefined) entry.n += n;
    else {
      const e = { ctx, values, n };
      node.set(leafKey, e);
      this.#entries.push(e);
    }
  }
  /** Called from the counter's collect(): the counter becomes exactly these counts. */
  publish(counter: Counter, labels: (ctx: Context, values: readonly string[]) => Record<string, string>): void {
    counter.reset();
    for (const { ctx, values, n } of this.#entries) counter.inc(labels(ctx, values), n);
  }
}

const DIRECTIONS: Record<string, string> = { INGRESS: 'ingress', EGRESS: 'egress' };

/** Hubble's lost-event sources, as its lost_events_total labels them. */
const LOST_SOURCES = ['perf_event_ring_buffer', 'observer_events_queue', 'hubble_ring_buffer'];

/** Hubble's `app`: the value of the first app label the endpoint has. */
function appOf(ep: Endpoint): string {
  for (const prefix of APP_LABELS) for (const l of ep.labels ?? []) if (l.startsWith(prefix) && l.length > prefix.length) return l.slice(prefix.length);
  return '';
}

/** A workload label: the endpoint's first `workloads` entry, its app, its pod name, or its reserved identity (not a pod). */
function workloadName(ep: Endpoint): string {
  return ep.workloads?.[0]?.name || appOf(ep) || ep.pod_name || reservedName(ep);
}

/** A workload as the workload labels name it: `namespace` is '' for what is not a pod, whose workload is then its reserved identity. */
export interface WorkloadRef {
  namespace: string;
  workload: string;
}

/** One workload pair's forwarded totals, cumulative: what trackTraffic's provider hands over, and an agent's GET /v1/traffic rows. */
export interface WorkloadPairTotals {
  source: WorkloadRef;
  destination: WorkloadRef;
  packets: number;
  bytes: number;
}

const TRAFFIC_LABELS = ['source_namespace', 'source_workload', 'destination_namespace', 'destination_workload'] as const;

/** "world", "host", … for endpoints that are not pods; kube-apiserver first, as Hubble's reserved-identity context. */
function reservedName(ep: Endpoint): string {
  const labels = ep.labels ?? [];
  if (labels.includes('reserved:kube-apiserver')) return 'kube-apiserver';
  for (const l of labels) if (l.startsWith('reserved:')) return l.slice(9).split('=')[0] ?? '';
  return '';
}

export class FlowMetrics {
  readonly registry: Registry;
  readonly #context: readonly ContextLabel[];
  readonly #maxContext: number;
  /** Values admitted per capped label (context labels and the DNS query). */
  readonly #seen = new Map<string, Set<string>>();
  readonly #lostProviders: (() => Record<string, number>)[] = [];
  readonly #trafficProviders: (() => Promise<readonly WorkloadPairTotals[]>)[] = [];
  readonly #series: Record<'flowsProcessed' | 'drops' | 'dnsQueries' | 'dnsResponses' | 'httpRequests' | 'tcpFlags' | 'policyVerdicts' | 'forwardPackets' | 'forwardBytes' | 'dropPackets' | 'dropBytes', Series>;
  /** Which fields each side's labelsContext asks for, in LABELS_CONTEXT order. */
  readonly #sideFields: Record<ContextLabel, SideField[]> = { source: [], destination: [] };
  readonly #direction: boolean;
  readonly #dnsQuery: boolean;
  readonly #connectionEvent: number;
  /** Endpoint → its interned Side, per side: records share endpoint objects (flow-events memoises them per snapshot). */
  readonly #sideOf = { source: new WeakMap<Endpoint, Side>(), destination: new WeakMap<Endpoint, Side>() };
  readonly #interned = { source: new Map<string, Side>(), destination: new Map<string, Side>() };
  readonly #noEndpoint: Record<ContextLabel, Side>;
  /** Label names of the context, in series order (labelsContext, then source, destination). */
  readonly #contextNames: string[];

  readonly flowsProcessed: Counter;
  readonly drops: Counter;
  readonly dnsQueries: Counter;
  readonly dnsResponses: Counter;
  readonly httpRequests: Counter;
  readonly httpDuration: Histogram;
  readonly tcpFlags: Counter;
  readonly policyVerdicts: Counter;
  readonly lostEvents: Counter;
  readonly forwardPackets: Counter;
  readonly forwardBytes: Counter;
  readonly dropPackets: Counter;
  readonly dropBytes: Counter;
  readonly trafficBytes: Counter;
  readonly trafficPackets: Counter;

  constructor(opts: FlowMetricsOptions = {}) {
    this.registry = opts.registry ?? new Registry();
    this.#context = opts.contextLabels ?? ['source', 'destination'];
    this.#maxContext = opts.maxContextValues ?? 256;
    this.#dnsQuery = opts.dnsQuery ?? true;
    this.#connectionEvent = opts.connectionEvents === 'policy-verdict' ? EVENT_TYPE.POLICY_VERDICT : EVENT_TYPE.TRACE;
    const wanted = new Set(opts.labelsContext ?? DEFAULT_LABELS_CONTEXT);
    const labelsContext = LABELS_CONTEXT.filter((l) => wanted.has(l));
    for (const l of labelsContext) {
      if (l === 'traffic_direction') continue;
      const [side, field] = l.split('_') as [ContextLabel, SideField];
      this.#sideFields[side].push(field);
    }
    this.#direction = wanted.has('traffic_direction');
    this.#contextNames = [...labelsContext, ...this.#context];
    const empty = (side: ContextLabel): Side => ({ ctx: this.#sideFields[side].map(() => ''), name: '' });
    this.#noEndpoint = { source: empty('source'), destination: empty('destination') };

    const registers = [this.registry];
    const ctxNames = this.#contextNames;
    const series = {} as Record<string, Series>;
    const counter = (name: string, help: string, labelNames: string[]): Counter => {
      const kept = (series[name] = new Series());
      const labels = (ctx: Context, values: readonly string[]): Record<string, string> => this.#labels(ctx, labelNames, values);
      return new Counter({ name, help, labelNames: [...ctxNames, ...labelNames], registers, collect(this: Counter) { kept.publish(this, labels); } });
    };

    const dnsLabels = ['rcode', 'qtypes', 'ips_returned', ...(this.#dnsQuery ? ['query'] : [])];
    this.flowsProcessed = counter('hubble_flows_processed_total', 'Total number of flows processed', ['protocol', 'type', 'subtype', 'verdict']);
    this.drops = counter('hubble_drop_total', 'Number of drops', ['reason', 'protocol']);
    this.dnsQueries = counter('hubble_dns_queries_total', 'Number of DNS queries observed', dnsLabels);
    this.dnsResponses = counter('hubble_dns_responses_total', 'Number of DNS responses observed', dnsLabels);
    this.httpRequests = counter('hubble_http_requests_total', 'Count of HTTP requests', ['method', 'protocol', 'status', 'reporter']);
    this.httpDuration = new Histogram({
      name: 'hubble_http_request_duration_seconds',
      help: 'Quantiles of HTTP request duration in seconds',
      labelNames: [...ctxNames, 'method', 'reporter'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.tcpFlags = counter('hubble_tcp_flags_total', 'TCP flag occurrences', ['flag', 'family']);
    this.policyVerdicts = counter('hubble_policy_verdicts_total', 'Number of policy verdicts', ['direction', 'match', 'action']);
    const lostProviders = this.#lostProviders;
    this.lostEvents = new Counter({
      name: 'hubble_lost_events_total',
      help: 'Number of lost events',
      labelNames: ['source'],
      registers,
      // Read at scrape time from the stores: the ring owns the counts, no double bookkeeping.
      // Every source is published from zero, so a rate of loss reads 0, not "no data".
      collect(this: Counter) {
        this.reset();
        for (const source of LOST_SOURCES) this.inc({ source }, 0);
        for (const p of lostProviders) for (const [source, n] of Object.entries(p())) this.inc({ source: source.toLowerCase() }, n);
      },
    });
    this.forwardPackets = counter('palisade_forward_packets_total', 'Packets forwarded', ['direction', 'reason']);
    this.forwardBytes = counter('palisade_forward_bytes_total', 'Bytes forwarded', ['direction', 'reason']);
    this.dropPackets = counter('palisade_drop_packets_total', 'Packets dropped', ['direction', 'reason']);
    this.dropBytes = counter('palisade_drop_bytes_total', 'Bytes dropped', ['direction', 'reason']);
    // Read at scrape time from the providers (the agent's TrafficTracker), which own the totals.
    const trafficProviders = this.#trafficProviders;
    const capped = (label: string, v: string): string => this.#capped(label, v);
    const traffic = (field: 'bytes' | 'packets') =>
      async function collect(this: Counter): Promise<void> {
        const rows = (await Promise.all(trafficProviders.map((p) => p()))).flat();
        this.reset();
        for (const r of rows) {
          const labels = {
            source_namespace: capped('source_namespace', r.source.namespace),
            source_workload: capped('source_workload', r.source.workload),
            destination_namespace: capped('destination_namespace', r.destination.namespace),
            destination_workload: capped('destination_workload', r.destination.workload),
          };
          this.inc(labels, r[field]);
        }
      };
    this.trafficBytes = new Counter({ name: 'palisade_traffic_bytes_total', help: 'Bytes forwarded per workload pair (IP bytes, from the datapath)', labelNames: [...TRAFFIC_LABELS], registers, collect: traffic('bytes') });
    this.trafficPackets = new Counter({ name: 'palisade_traffic_packets_total', help: 'Packets forwarded per workload pair (from the datapath; a GSO batch counts once)', labelNames: [...TRAFFIC_LABELS], registers, collect: traffic('packets') });
    const by = (name: string): Series => series[name] as Series;
    this.#series = {
      flowsProcessed: by('hubble_flows_processed_total'), drops: by('hubble_drop_total'), dnsQueries: by('hubble_dns_queries_total'),
      dnsResponses: by('hubble_dns_responses_total'), httpRequests: by('hubble_http_requests_total'), tcpFlags: by('hubble_tcp_flags_total'),
      policyVerdicts: by('hubble_policy_verdicts_total'), forwardPackets: by('palisade_forward_packets_total'), forwardBytes: by('palisade_forward_bytes_total'),
      dropPackets: by('palisade_drop_packets_total'), dropBytes: by('palisade_drop_bytes_total'),
    };
  }

  /** Lost-event counts to publish as hubble_lost_events_total, e.g. `() => store.status().lost`. */
  trackLostEvents(provider: () => Record<string, number>): void {
    this.#lostProviders.push(provider);
  }

  /** Workload-pair totals to publish as palisade_traffic_*_total, read on each scrape. */
  trackTraffic(provider: () => Promise<readonly WorkloadPairTotals[]>): void {
    this.#trafficProviders.push(provider);
  }

  /** An endpoint's namespace and workload as the workload labels name it ('' namespace when it is not a pod). */
  workloadOf(ep: Endpoint): WorkloadRef {
    return { namespace: ep.namespace ?? '', workload: workloadName(ep) };
  }

  /** Updates every metric the flow concerns. `bytes`, when the datapath knows it, feeds palisade_*_bytes_total. */
  observeFlow(e: FlowEnvelope, bytes?: number): void {
    const f = e.flow;
    const direction = f.traffic_direction === undefined ? 'unknown' : (DIRECTIONS[f.traffic_direction] ?? 'unknown');
    const ctx: Context = [this.#side('source', f.source), this.#side('destination', f.destination), this.#direction ? direction : ''];
    const S = this.#series;
    const protocol = flowProtocol(f);
    const type = f.event_type?.type;

    // flow handler: type/subtype as Hubble names monitor message types.
    let typeName = 'Unknown';
    let subtype = '';
    switch (type) {
      case EVENT_TYPE.L7: typeName = 'L7'; subtype = f.l7?.dns ? 'DNS' : f.l7?.http ? 'HTTP' : ''; break;
      case EVENT_TYPE.DROP: typeName = 'Drop'; break;
      case EVENT_TYPE.CAPTURE: typeName = 'Capture'; break;
      case EVENT_TYPE.TRACE: typeName = 'Trace'; subtype = TRACE_POINTS[f.event_type?.sub_type ?? 0] ?? ''; break;
      case EVENT_TYPE.POLICY_VERDICT: typeName = 'PolicyVerdict'; break;
      default: subtype = String(type ?? 0);
    }
    S.flowsProcessed.inc(ctx, [protocol, typeName, subtype, f.verdict]);

    if (f.verdict === 'DROPPED') S.drops.inc(ctx, [f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN', protocol]);

    const l4 = f.l4;
    // tcp handler: forwarded packets only, each once: from the events that record it (see connectionEvents).
    const opens = f.l7 === undefined && type === this.#connectionEvent;
    if (l4 !== undefined && 'TCP' in l4 && opens && (f.verdict === 'FORWARDED' || f.verdict === 'REDIRECTED')) {
      const fl = l4.TCP.flags ?? {};
      const family = f.IP?.ipVersion ?? 'IPv4';
      if (fl.SYN) S.tcpFlags.inc(ctx, [fl.ACK ? 'SYN-ACK' : 'SYN', family]);
      if (fl.FIN) S.tcpFlags.inc(ctx, ['FIN', family]);
      if (fl.RST) S.tcpFlags.inc(ctx, ['RST', family]);
    }

    const dns = f.l7?.dns;
    if (dns !== undefined) {
      const qtypes = (dns.qtypes ?? []).join(',');
      const response = f.l7?.type === 'RESPONSE' || (f.l7?.type === undefined && f.is_reply === true);
      const labels = response ? [RCODES[dns.rcode ?? 0] ?? String(dns.rcode), qtypes, String(dns.ips?.length ?? 0)] : ['', qtypes, '0'];
      const query = this.#dnsQuery ? this.#capped('query', dns.query ?? '') : '';
      if (this.#dnsQuery) labels.push(query);
      (response ? S.dnsResponses : S.dnsQueries).inc(ctx, labels);
      // A query the proxy refused carries the rcode it answered with: the pod got
      // that response (Cilium's proxy records it too), from the server's side.
      if (!response && f.verdict === 'DROPPED' && dns.rcode !== undefined) {
        const reply: Context = [this.#side('source', f.destination), this.#side('destination', f.source), ctx[2]];
        S.dnsResponses.inc(reply, [RCODES[dns.rcode] ?? String(dns.rcode), qtypes, '0', ...(this.#dnsQuery ? [query] : [])]);
      }
    }

    // httpV2: one count per response (it carries the status), with the
    // reporter being the side the proxy stood for.
    const http = f.l7?.http;
    if (http !== undefined && f.l7?.type === 'RESPONSE') {
      const reporter = f.traffic_direction === 'EGRESS' ? 'client' : f.traffic_direction === 'INGRESS' ? 'server' : 'unknown';
      const method = http.method ?? '';
      S.httpRequests.inc(ctx, [method, http.protocol ?? '', String(http.code ?? 0), reporter]);
      if (f.l7?.latency_ns !== undefined) this.httpDuration.observe(this.#labels(ctx, ['method', 'reporter'], [method, reporter]), Number(f.l7.latency_ns) / 1e9);
    }

    // policy handler: policy-verdict events, and L7 requests (match "l7/<proto>").
    const dir = direction === 'unknown' ? 'traffic_direction_unknown' : direction;
    if (type === EVENT_TYPE.POLICY_VERDICT) {
      S.policyVerdicts.inc(ctx, [dir, policyMatchTypeName(f.policy_match_type).toLowerCase(), f.verdict.toLowerCase()]);
    } else if (type === EVENT_TYPE.L7 && (f.l7?.type === 'REQUEST' || f.verdict === 'DROPPED')) {
      S.policyVerdicts.inc(ctx, [dir, `l7/${protocol.toLowerCase()}`, f.verdict.toLowerCase()]);
    }

    // Palisade's datapath counters: one packet per L3/L4 drop, and per new connection forwarded (see connectionEvents).
    if (f.verdict === 'DROPPED' && f.l7 === undefined && type !== EVENT_TYPE.POLICY_VERDICT) {
      const labels = [dir, f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN'];
      S.dropPackets.inc(ctx, labels);
      if (bytes !== undefined) S.dropBytes.inc(ctx, labels, bytes);
    } else if (opens && (f.verdict === 'FORWARDED' || f.verdict === 'REDIRECTED' || f.verdict === 'TRANSLATED')) {
      const labels = [dir, f.verdict.toLowerCase()];
      S.forwardPackets.inc(ctx, labels);
      if (bytes !== undefined) S.forwardBytes.inc(ctx, labels, bytes);
    }
  }

  /** A series' labels: the context (labelsContext, source, destination), then the metric's own. */
  #labels(ctx: Context, names: readonly string[], values: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {};
    const [src, dst, direction] = ctx;
    let i = 0;
    for (const v of src.ctx) out[this.#contextNames[i++] as string] = v;
    for (const v of dst.ctx) out[this.#contextNames[i++] as string] = v;
    if (this.#direction) out[this.#contextNames[i++] as string] = direction;
    for (const l of this.#context) out[l] = l === 'source' ? src.name : dst.name;
    names.forEach((n, j) => { out[n] = values[j] ?? ''; });
    return out;
  }

  /** The endpoint's interned label values on one side: computed once per endpoint object. */
  #side(side: ContextLabel, ep: Endpoint | undefined): Side {
    if (ep === undefined) return this.#noEndpoint[side];
    const cache = this.#sideOf[side];
    const hit = cache.get(ep);
    if (hit !== undefined) return hit;
    const ctx = this.#sideFields[side].map((field) => {
      switch (field) {
        case 'pod': return this.#capped(`${side}_pod`, ep.pod_name ?? '');
        case 'namespace': return this.#capped(`${side}_namespace`, ep.namespace ?? '');
        case 'app': return this.#capped(`${side}_app`, appOf(ep));
        case 'workload': return this.#capped(`${side}_workload`, workloadName(ep));
      }
    });
    const name = this.#context.includes(side) ? this.#capped(side, endpointName(ep)) : '';
    const key = `${ctx.join('\0')}\0${name}`;
    const interned = this.#interned[side];
    let s = interned.get(key);
    if (s === undefined) interned.set(key, (s = { ctx, name }));
    cache.set(ep, s);
    return s;
  }

  /** The value, or "other" once the label has `maxContextValues` others. */
  #capped(label: string, value: string): string {
    let seen = this.#seen.get(label);
    if (seen === undefined) this.#seen.set(label, (seen = new Set()));
    if (seen.has(value)) return value;
    if (seen.size < this.#maxContext) { seen.add(value); return value; }
    return 'other';
  }

  /** Serves the registry in Prometheus text format (any path: mount it where you like). */
  readonly handler = (_req: IncomingMessage, res: ServerResponse): void => {
    this.registry.metrics().then(
      (text) => { res.writeHead(200, { 'content-type': this.registry.contentType }); res.end(text); },
      (err: unknown) => { res.writeHead(500, { 'content-type': 'text/plain' }); res.end(`${String(err)}\n`); },
    );
  };
}

/** `GET /metrics` on the agent's own socket; resolves false for other paths. */
export function handleMetricsRequest(metrics: FlowMetrics, req: IncomingMessage, res: ServerResponse): boolean {
  if (new URL(req.url ?? '/', 'http://agent').pathname !== '/metrics') return false;
  metrics.handler(req, res);
  return true;
}

/** A metrics listener (Hubble's is :9965); port 0 picks one — read it from `server.address()`. */
export async function startMetricsServer(metrics: FlowMetrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (!handleMetricsRequest(metrics, req, res)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('try /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
