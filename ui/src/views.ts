/** The aggregate views (Drops, DNS, HTTP, Heat maps, Health): each draws its part of a UiSnapshot. */
import type { FqdnView, SeriesPoint, UiSnapshot } from '../../src/ui/api.ts';
import { bars, heatMap, timeSeries } from './charts.ts';
import { byId, bytes, esc, getJson, num, shortClock } from './dom.ts';
import { decumulate, leValue, promRange } from './prom.ts';
import { tableMarkup } from './rows.ts';

/** Sets a panel's markup only when it changed, so unchanged panels keep their scroll and hover. */
function put(id: string, html: string): void {
  const el = byId(id);
  if (el.dataset['drawn'] === html) return;
  el.dataset['drawn'] = html;
  el.innerHTML = html;
}

/** Series from Prometheus while it answers, cached and refreshed at most every 10 s. */
class PromSeries {
  private points: SeriesPoint[] | null = null;
  private fetchedAt = 0;
  private inFlight = false;
  error = '';
  constructor(private readonly query: () => Promise<SeriesPoint[]>) {}

  /** The cached series (null when none yet or Prometheus failed); starts a refresh when stale. */
  get(onFresh: () => void): SeriesPoint[] | null {
    if (!this.inFlight && Date.now() - this.fetchedAt > 10_000) {
      this.inFlight = true;
      this.query().then((p) => { this.points = p; this.error = ''; }, (err: unknown) => {
        this.points = null;
        this.error = err instanceof Error ? err.message : String(err);
      }).finally(() => { this.inFlight = false; this.fetchedAt = Date.now(); onFresh(); });
    }
    return this.points;
  }
}

const REFRESH = (): void => { window.dispatchEvent(new Event('palisade:redraw')); };

const dropsProm = new PromSeries(() => promRange('sum by (reason) (rate(hubble_drop_total[1m]))', 'reason'));
const latencyProm = new PromSeries(async () => decumulate(await promRange('sum by (le) (rate(hubble_http_request_duration_seconds_bucket[1m]))', 'le')));

const RECENT_COLS = ['time', 'srcPod', 'dstPod', 'port', 'verdict', 'l7'];

export function drawDrops(s: UiSnapshot): void {
  const d = s.drops;
  put('drops-total', `<b data-testid="drops-total">${num(d.total)}</b> drops · ${num(s.totals.lost)} lost events`);
  put('drops-reason', bars(d.byReason, { rowTestId: 'drops-reason-row', colour: '#cf222e', empty: 'no drops' }));
  put('drops-policy', bars(d.byPolicy, { rowTestId: 'drops-policy-row', colour: '#cf222e', empty: 'no drops' }));
  put('drops-source', bars(d.bySource, { rowTestId: 'drops-source-row', colour: '#bc4c00', empty: 'no drops' }));
  put('drops-destination', bars(d.byDestination, { rowTestId: 'drops-destination-row', colour: '#bc4c00', empty: 'no drops' }));
  const prom = s.prometheus ? dropsProm.get(REFRESH) : null;
  // An empty answer (nothing scraped yet) falls back to the flows' own series too.
  if (prom !== null && prom.length > 0) {
    put('drops-series-title', 'Drops per second by reason <span class="src">Prometheus · hubble_drop_total</span>');
    put('drops-series', timeSeries(prom, { warm: true, unit: 'drops/s', empty: 'Prometheus has no drops in the last 15 minutes' }));
  } else {
    const why = !s.prometheus ? '' : dropsProm.error ? ` · Prometheus: ${dropsProm.error}` : prom !== null ? ' · Prometheus has no drops yet' : '';
    put('drops-series-title', `Drops by reason per ${s.bucketSeconds} s <span class="src">from the flows${esc(why)}</span>`);
    put('drops-series', timeSeries(d.series, { stacked: true, warm: true, unit: `drops per ${s.bucketSeconds} s`, empty: 'no drops yet' }));
  }
  put('drops-recent', tableMarkup(d.recent, ['time', 'srcPod', 'dstPod', 'port', 'reason', 'policy', 'l7', 'node'], 'drop-row', 'no drops yet'));
}

export function drawDns(s: UiSnapshot): void {
  const d = s.dns;
  const rc = { NOERROR: 0, NXDOMAIN: 0, REFUSED: 0, other: 0 };
  for (const n of d.names) for (const [code, count] of Object.entries(n.rcodes)) {
    if (code === 'NOERROR' || code === 'NXDOMAIN' || code === 'REFUSED') rc[code] += count;
    else rc.other += count;
  }
  const answers = rc.NOERROR + rc.NXDOMAIN + rc.REFUSED + rc.other;
  const pct = (n: number): string => (answers > 0 ? `${((100 * n) / answers).toFixed(1)}%` : '–');
  put('dns-summary', `<span class="stat"><b>${num(d.queries)}</b> queries</span>`
    + `<span class="stat stat-bad" data-testid="dns-refused-rate"><b>${pct(rc.REFUSED)}</b> REFUSED (${num(rc.REFUSED)})</span>`
    + `<span class="stat stat-warn" data-testid="dns-nxdomain-rate"><b>${pct(rc.NXDOMAIN)}</b> NXDOMAIN (${num(rc.NXDOMAIN)})</span>`
    + `<span class="stat"><b>${pct(rc.NOERROR)}</b> NOERROR</span>`);
  const names = d.names.slice(0, 200);
  put('dns-names', names.length === 0 ? '<div class="empty">no DNS queries yet</div>'
    : `<table class="grid-table"><thead><tr><th>Name</th><th class="num">Queries</th><th class="num">NOERROR</th><th class="num">NXDOMAIN</th><th class="num">REFUSED</th><th class="num">other</th><th>Last addresses</th></tr></thead><tbody>${names.map((n) => {
      const other = Object.entries(n.rcodes).filter(([k]) => !['NOERROR', 'NXDOMAIN', 'REFUSED'].includes(k)).reduce((a, [, v]) => a + v, 0);
      return `<tr data-testid="dns-row" data-name="${esc(n.name)}"><td class="mono">${esc(n.name)}</td><td class="num">${num(n.queries)}</td><td class="num">${num(n.rcodes['NOERROR'] ?? 0)}</td>`
        + `<td class="num${n.rcodes['NXDOMAIN'] ? ' warn' : ''}">${num(n.rcodes['NXDOMAIN'] ?? 0)}</td><td class="num${n.rcodes['REFUSED'] ? ' bad' : ''}">${num(n.rcodes['REFUSED'] ?? 0)}</td>`
        + `<td class="num">${num(other)}</td><td class="mono small">${esc(n.lastIps.join(', '))}</td></tr>`;
    }).join('')}</tbody></table>`);
  put('dns-series', timeSeries(d.series, { keys: ['queries', 'NOERROR', 'NXDOMAIN', 'REFUSED', 'other'].filter((k) => d.series.some((p) => (p.values[k] ?? 0) > 0)), unit: `per ${s.bucketSeconds} s`, empty: 'no DNS traffic yet' }));
  put('dns-recent', tableMarkup(d.recent, RECENT_COLS, 'dns-flow-row', 'no DNS records yet'));
}

let fqdnAt = 0;
let fqdnBusy = false;
/** The FQDN cache is fetched separately (it is per agent, not in the snapshot), at most every 5 s. */
export function refreshFqdn(force = false): void {
  if (fqdnBusy || (!force && Date.now() - fqdnAt < 5000)) return;
  fqdnBusy = true;
  getJson<FqdnView>('/api/fqdn').then((v) => {
    const rows = v.nodes.flatMap((n) => n.entries.map((e) => ({ node: n.node, ...e })));
    const errors = v.nodes.filter((n) => n.error).map((n) => `<div class="error">${esc(n.node)}: ${esc(n.error ?? '')}</div>`).join('');
    put('dns-fqdn', errors + (rows.length === 0 ? '<div class="empty">the FQDN cache is empty</div>'
      : `<table class="grid-table"><thead><tr><th>Name</th><th>Addresses</th><th class="num">TTL</th><th>Pods</th><th>Node</th></tr></thead><tbody>${rows.map((r) => `<tr data-testid="fqdn-row" data-name="${esc(r.name)}"><td class="mono">${esc(r.name)}</td><td class="mono small">${esc(r.ips.join(', '))}</td><td class="num">${r.ttlSeconds} s</td><td class="small">${esc(r.pods.join(', '))}</td><td>${esc(r.node)}</td></tr>`).join('')}</tbody></table>`));
  }, (err: unknown) => {
    put('dns-fqdn', `<div class="error">FQDN cache: ${esc(err instanceof Error ? err.message : String(err))}</div>`);
  }).finally(() => { fqdnBusy = false; fqdnAt = Date.now(); });
}

export function drawHttp(s: UiSnapshot): void {
  const h = s.http;
  put('http-summary', `<span class="stat"><b>${num(h.requests)}</b> requests</span>`
    + h.byStatus.filter((c) => c.key.startsWith('4') || c.key.startsWith('5')).map((c) => `<span class="stat stat-bad"><b>${num(c.count)}</b> ${esc(c.key)}</span>`).join(''));
  put('http-method', bars(h.byMethod, { rowTestId: 'http-method-row', colour: '#8250df', empty: 'no HTTP requests yet' }));
  put('http-status', bars(h.byStatus, { rowTestId: 'http-status-row', colour: '#0969da', empty: 'no HTTP responses yet' }));
  const answer = s.prometheus ? latencyProm.get(REFRESH) : null;
  const prom = answer !== null && answer.length > 0 ? answer : null;
  const points = prom ?? h.latency;
  const bounds = prom ? [...new Set(prom.flatMap((p) => Object.keys(p.values)))].sort((a, b) => leValue(a) - leValue(b)) : [...h.latencyBuckets.map(String), '+Inf'];
  const rows = [...bounds].reverse();
  const cols = [...points].sort((a, b) => a.t - b.t);
  const byT = new Map(cols.map((p) => [String(p.t), p.values]));
  put('http-latency-title', prom ? 'Latency over time <span class="src">Prometheus · hubble_http_request_duration_seconds_bucket, requests/s</span>'
    : `Latency over time <span class="src">from the flows, requests per ${s.bucketSeconds} s bucket${s.prometheus && latencyProm.error ? ` · Prometheus: ${esc(latencyProm.error)}` : ''}</span>`);
  put('http-latency', heatMap(rows, cols.map((p) => String(p.t)), (r, c) => byT.get(c)?.[r] ?? null, {
    rowLabel: (le) => (le === '+Inf' ? `> ${latencyLabel(Number(bounds[bounds.length - 2] ?? 0))}` : `≤ ${latencyLabel(Number(le))}`),
    colLabel: (t) => shortClock(Number(t)),
    cellTestId: 'http-latency-cell',
    gutter: 80,
    timeColumns: true,
    empty: 'no HTTP latencies yet',
  }));
  put('http-denied', h.topDenied.length === 0 ? '<div class="empty">no denied paths</div>'
    : `<table class="grid-table"><thead><tr><th>Method</th><th>Path</th><th>Destination</th><th class="num">Denied</th></tr></thead><tbody>${h.topDenied.map((d) => `<tr data-testid="http-denied-row" data-path="${esc(d.path)}"><td>${esc(d.method)}</td><td class="mono">${esc(d.path)}</td><td>${esc(d.destination)}</td><td class="num bad">${num(d.count)}</td></tr>`).join('')}</tbody></table>`);
  put('http-recent', tableMarkup(h.recent, RECENT_COLS, 'http-row', 'no HTTP records yet'));
}

function latencyLabel(seconds: number): string {
  return seconds < 1 ? `${+(seconds * 1000).toPrecision(3)} ms` : `${+seconds.toPrecision(3)} s`;
}

const HEAT_LIMIT = 40;

export function drawHeat(s: UiSnapshot, metric: string): void {
  const cells = s.heat.cells;
  const value = (c: UiSnapshot['heat']['cells'][number]): number | null => (metric === 'bytes' ? c.bytes : metric === 'requests' ? c.requests : metric === 'latency' ? c.latencyMsAvg : c.flows);
  // The busiest workloads only: a 2,000 × 2,000 grid is not readable.
  const weight = new Map<string, number>();
  for (const c of cells) {
    const v = value(c) ?? 0;
    weight.set(c.source, (weight.get(c.source) ?? 0) + v + c.flows * 1e-6);
    weight.set(c.destination, (weight.get(c.destination) ?? 0) + v + c.flows * 1e-6);
  }
  const top = (side: 'source' | 'destination'): string[] => {
    const ids = [...new Set(cells.map((c) => c[side]))];
    return ids.sort((a, b) => (weight.get(b) ?? 0) - (weight.get(a) ?? 0) || a.localeCompare(b)).slice(0, HEAT_LIMIT).sort();
  };
  const rows = top('source');
  const cols = top('destination');
  const index = new Map(cells.map((c) => [`${c.source}\u0000${c.destination}`, c]));
  const fmt = metric === 'bytes' ? bytes : metric === 'latency' ? (v: number): string => `${v.toFixed(1)} ms` : num;
  const shown = new Set([...rows, ...cols]).size;
  put('heat-note', `${esc(metricTitle(metric))}, source (rows) × destination (columns)${weight.size > shown ? ` · the ${HEAT_LIMIT} busiest of ${weight.size} workloads each way` : ''}`);
  put('heat-map', heatMap(rows, cols, (r, c) => { const cell = index.get(`${r}\u0000${c}`); return cell ? value(cell) : null; }, {
    rowLabel: (id) => id, colLabel: (id) => id, cellTestId: 'heat-cell', format: fmt,
    empty: cells.length === 0 ? 'no traffic yet' : `no ${metricTitle(metric).toLowerCase()} recorded for these flows yet`,
  }));
  const key = metric === 'latency' ? 'requests' : metric;
  put('heat-series', timeSeries(s.heat.series, { keys: [key], unit: `${key} per ${s.bucketSeconds} s`, empty: `no ${key} recorded yet` }));
}

function metricTitle(metric: string): string {
  return metric === 'bytes' ? 'Bytes' : metric === 'requests' ? 'HTTP requests' : metric === 'latency' ? 'Mean HTTP latency' : 'Flows';
}

export function drawHealth(s: UiSnapshot): void {
  put('health-table', s.health.length === 0 ? '<div class="empty">no nodes reported</div>'
    : `<table class="grid-table"><thead><tr><th>Node</th><th>State</th><th>Datapath</th><th>Version</th><th class="num">Flows</th><th class="num">Lost events</th><th>Message</th></tr></thead><tbody>${s.health.map((n) => `<tr data-testid="health-row" data-node="${esc(n.node)}" data-state="${n.state}"><td><b>${esc(n.node)}</b></td><td><span class="state state-${n.state}">${esc(n.state)}</span></td><td>${esc(n.datapath ?? '–')}</td><td class="mono">${esc(n.version ?? '–')}</td><td class="num">${n.flows === undefined ? '–' : num(n.flows)}</td><td class="num${n.lost ? ' bad' : ''}">${n.lost === undefined ? '–' : num(n.lost)}</td><td class="small">${esc(n.message ?? '')}</td></tr>`).join('')}</tbody></table>`);
}
