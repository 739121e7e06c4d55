/**
 * Prometheus metrics from flows, with Hubble's names and labels
 * (cilium pkg/hubble/metrics: flow, drop, dns, httpV2, tcp, policy handlers),
 * so Hubble's Grafana dashboards work unchanged. One registry per agent,
 * served on :9965 by default.
 *
 *   store.onFlow(e => metrics.observeFlow(e))  ──►  counters  ──►  GET /metrics
 *
 * Context labels (`source`, `destination` = "namespace/pod", or the reserved
 * identity such as "world") are optional and bounded: after
 * `maxContextValues` distinct values of a label, new values count as "other",
 * so a churn of pod names cannot blow up the series count.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Histogram, Registry } from 'prom-client';
import { EVENT_TYPE, TRACE_POINTS, endpointName, flowProtocol, policyMatchTypeName, type FlowEnvelope } from './flow.ts';

export type ContextLabel = 'source' | 'destination';

export interface FlowMetricsOptions {
  contextLabels?: readonly ContextLabel[];
  /** Distinct values per context label before "other". Default 256. */
  maxContextValues?: number;
  registry?: Registry;
}

/** DNS rcodes as Hubble's dns handler names them. */
const RCODES: Record<number, string> = {
  0: 'No Error', 1: 'Format Error', 2: 'Server Failure', 3: 'Non-Existent Domain', 4: 'Not Implemented', 5: 'Query Refused',
};

/**
 * Counts kept by joined label values and handed to prom-client only at scrape
 * time: prom-client's inc(labels) hashes and validates the label object on
 * every call (~1 µs, too much per flow); a Map hit costs a fraction of that.
 */
class Series {
  readonly #labelNames: readonly string[];
  /** A trie on the label values (no key string built per flow); leaves are the counts. */
  readonly #root = new Map<string, unknown>();
  readonly #entries: { values: string[]; n: number }[] = [];
  constructor(labelNames: readonly string[]) {
    this.#labelNames = labelNames;
  }
  inc(values: string[], n = 1): void {
    let node = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const v = values[i] as string;
      let next = node.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) node.set(v, (next = new Map()));
      node = next;
    }
    const leafKey = values[last] as string;
    const entry = node.get(leafKey) as { values: string[]; n: number } | undefined;
    if (entry !== undefined) entry.n += n;
    else {
      const e = { values, n };
      node.set(leafKey, e);
      this.#entries.push(e);
    }
  }
  /** Called from the counter's collect(): the counter becomes exactly these counts. */
  publish(counter: Counter): void {
    counter.reset();
    for (const { values, n } of this.#entries) {
      const labels: Record<string, string> = {};
      this.#labelNames.forEach((name, i) => { labels[name] = values[i] ?? ''; });
      counter.inc(labels, n);
    }
  }
}

export class FlowMetrics {
  readonly registry: Registry;
  readonly #context: readonly ContextLabel[];
  readonly #maxContext: number;
  readonly #seen = new Map<ContextLabel, Set<string>>();
  readonly #lostProviders: (() => Record<string, number>)[] = [];
  readonly #series: Record<'flowsProcessed' | 'drops' | 'dnsQueries' | 'dnsResponses' | 'httpRequests' | 'tcpFlags' | 'policyVerdicts' | 'forwardPackets' | 'forwardBytes' | 'dropPackets' | 'dropBytes', Series>;

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

  constructor(opts: FlowMetricsOptions = {}) {
    this.registry = opts.registry ?? new Registry();
    this.#context = opts.contextLabels ?? ['source', 'destination'];
    this.#maxContext = opts.maxContextValues ?? 256;
    for (const l of this.#context) this.#seen.set(l, new Set());
    const registers = [this.registry];
    const ctx = [...this.#context];
    const series = {} as Record<string, Series>;
    const counter = (name: string, help: string, labelNames: string[]): Counter => {
      const all = [...ctx, ...labelNames];
      const kept = (series[name] = new Series(all));
      return new Counter({ name, help, labelNames: all, registers, collect(this: Counter) { kept.publish(this); } });
    };

    this.flowsProcessed = counter('hubble_flows_processed_total', 'Total number of flows processed', ['protocol', 'type', 'subtype', 'verdict']);
    this.drops = counter('hubble_drop_total', 'Number of drops', ['reason', 'protocol']);
    this.dnsQueries = counter('hubble_dns_queries_total', 'Number of DNS queries observed', ['rcode', 'qtypes', 'ips_returned']);
    this.dnsResponses = counter('hubble_dns_responses_total', 'Number of DNS responses observed', ['rcode', 'qtypes', 'ips_returned']);
    this.httpRequests = counter('hubble_http_requests_total', 'Count of HTTP requests', ['method', 'protocol', 'status', 'reporter']);
    this.httpDuration = new Histogram({
      name: 'hubble_http_request_duration_seconds',
      help: 'Quantiles of HTTP request duration in seconds',
      labelNames: [...ctx, 'method', 'reporter'],
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
      collect(this: Counter) {
        this.reset();
        for (const p of lostProviders) for (const [source, n] of Object.entries(p())) this.inc({ source: source.toLowerCase() }, n);
      },
    });
    this.forwardPackets = counter('palisade_forward_packets_total', 'Packets forwarded', ['direction', 'reason']);
    this.forwardBytes = counter('palisade_forward_bytes_total', 'Bytes forwarded', ['direction', 'reason']);
    this.dropPackets = counter('palisade_drop_packets_total', 'Packets dropped', ['direction', 'reason']);
    this.dropBytes = counter('palisade_drop_bytes_total', 'Bytes dropped', ['direction', 'reason']);
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

  /** Updates every metric the flow concerns. `bytes`, when the datapath knows it, feeds palisade_*_bytes_total. */
  observeFlow(e: FlowEnvelope, bytes?: number): void {
    const f = e.flow;
    const ctx = this.#contextValues(e);
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
    S.flowsProcessed.inc([...ctx, protocol, typeName, subtype, f.verdict]);

    if (f.verdict === 'DROPPED') S.drops.inc([...ctx, f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN', protocol]);

    const l4 = f.l4;
    // tcp handler: forwarded packets only; a policy-verdict event repeats a packet a trace event already counts.
    if (l4 !== undefined && 'TCP' in l4 && f.l7 === undefined && type !== EVENT_TYPE.POLICY_VERDICT && (f.verdict === 'FORWARDED' || f.verdict === 'REDIRECTED')) {
      const fl = l4.TCP.flags ?? {};
      const family = f.IP?.ipVersion ?? 'IPv4';
      if (fl.SYN) S.tcpFlags.inc([...ctx, fl.ACK ? 'SYN-ACK' : 'SYN', family]);
      if (fl.FIN) S.tcpFlags.inc([...ctx, 'FIN', family]);
      if (fl.RST) S.tcpFlags.inc([...ctx, 'RST', family]);
    }

    const dns = f.l7?.dns;
    if (dns !== undefined) {
      const qtypes = (dns.qtypes ?? []).join(',');
      if (f.l7?.type === 'RESPONSE' || (f.l7?.type === undefined && f.is_reply === true)) {
        S.dnsResponses.inc([...ctx, RCODES[dns.rcode ?? 0] ?? String(dns.rcode), qtypes, String(dns.ips?.length ?? 0)]);
      } else {
        S.dnsQueries.inc([...ctx, '', qtypes, '0']);
      }
    }

    // httpV2: one count per response (it carries the status), with the
    // reporter being the side the proxy stood for.
    const http = f.l7?.http;
    if (http !== undefined && f.l7?.type === 'RESPONSE') {
      const reporter = f.traffic_direction === 'EGRESS' ? 'client' : f.traffic_direction === 'INGRESS' ? 'server' : 'unknown';
      const method = http.method ?? '';
      S.httpRequests.inc([...ctx, method, http.protocol ?? '', String(http.code ?? 0), reporter]);
      if (f.l7?.latency_ns !== undefined) this.httpDuration.observe(Object.assign(this.#contextLabels(ctx), { method, reporter }), Number(f.l7.latency_ns) / 1e9);
    }

    // policy handler: policy-verdict events, and L7 requests (match "l7/<proto>").
    const direction = (f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN').toLowerCase();
    if (type === EVENT_TYPE.POLICY_VERDICT) {
      S.policyVerdicts.inc([...ctx, direction, policyMatchTypeName(f.policy_match_type).toLowerCase(), f.verdict.toLowerCase()]);
    } else if (type === EVENT_TYPE.L7 && (f.l7?.type === 'REQUEST' || f.verdict === 'DROPPED')) {
      S.policyVerdicts.inc([...ctx, direction, `l7/${protocol.toLowerCase()}`, f.verdict.toLowerCase()]);
    }

    // Palisade's datapath counters: one packet per L3/L4 event (policy verdicts are not packets).
    if (f.l7 === undefined && type !== EVENT_TYPE.POLICY_VERDICT) {
      if (f.verdict === 'DROPPED') {
        const labels = [...ctx, direction, f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN'];
        S.dropPackets.inc(labels);
        if (bytes !== undefined) S.dropBytes.inc(labels, bytes);
      } else if (f.verdict === 'FORWARDED' || f.verdict === 'REDIRECTED' || f.verdict === 'TRANSLATED') {
        const labels = [...ctx, direction, f.verdict.toLowerCase()];
        S.forwardPackets.inc(labels);
        if (bytes !== undefined) S.forwardBytes.inc(labels, bytes);
      }
    }
  }

  #contextLabels(values: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    this.#context.forEach((l, i) => { out[l] = values[i] ?? ''; });
    return out;
  }

  /** Context label values in declaration order, each bounded by the cap. */
  #contextValues(e: FlowEnvelope): string[] {
    const out: string[] = [];
    for (const l of this.#context) {
      const value = endpointName(l === 'source' ? e.flow.source : e.flow.destination);
      const seen = this.#seen.get(l) as Set<string>;
      if (seen.has(value)) out.push(value);
      else if (seen.size < this.#maxContext) { seen.add(value); out.push(value); }
      else out.push('other');
    }
    return out;
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
