/**
 * Palisade's web UI: tabs over one live UiSnapshot (GET /api/snapshot, then
 * `snapshot` events from /api/events), the Flows view with its own stream. The
 * URL hash keeps the view, the flows filters and the map's namespace.
 *
 * Test hooks (stable; the browser tests and bench rely on them):
 *   [data-testid="tab-<view>"]            tab links; views: map flows drops dns http heat health
 *   [data-testid="view-<view>"]           each view's section (the visible one has no `hidden`)
 *   [data-testid="live-status"]           data-state="live" | "connecting" | "offline"
 *   [data-testid="totals"]                header counts
 *   Service map
 *   [data-testid="service-map"]           the <svg>
 *   [data-testid="map-timing"]            hidden; data-render-ms = the last draw's script time, data-frame-ms = from
 *                                         its start to the painted frame, data-workloads, data-edges (shown)
 *   [data-testid="map-namespace-select"]  namespace chooser ('' = all)
 *   [data-testid="map-namespace"][data-namespace="<ns>"]   namespace boxes
 *   [data-testid="map-node"][data-workload="<id>"]         workload cards (click → Flows filtered to it)
 *   [data-testid="map-edge"][data-edge="<src>-><dst>"]     edges, data-verdict="forwarded|dropped|mixed" (click → its flows);
 *                                         only a map of at most 400 edges: a bigger one paints them on a canvas (clicks hit-tested)
 *   Flows
 *   [data-testid="flow-filter"]           the filter input (Enter applies; Escape clears)
 *   [data-testid="flows-pause"]           pause/resume button (aria-pressed)
 *   [data-testid="flow-row"][data-flow-id][data-verdict]   table rows, newest first
 *   [data-testid="flows-error"]           a rejected filter's message
 *   [data-testid="flow-detail"], [data-testid="flow-detail-json"]   the detail pane and the record
 *   Drops:  [data-testid="drops-total"], rows drops-reason-row / drops-policy-row / drops-source-row /
 *           drops-destination-row (each data-key), recent drops [data-testid="drop-row"]
 *   DNS:    [data-testid="dns-row"][data-name], dns-refused-rate, dns-nxdomain-rate, fqdn-row[data-name], dns-flow-row
 *   HTTP:   http-method-row / http-status-row (data-key), http-latency-cell, http-denied-row[data-path], http-row
 *   Heat:   [data-testid="heat-metric"] select, [data-testid="heat-cell"][data-row][data-col]
 *   Health: [data-testid="health-row"][data-node][data-state]
 */
import type { Edge, UiSnapshot, Workload } from '../../src/ui/api.ts';
import { byId, esc, getJson, num, rate } from './dom.ts';
import { FlowsView } from './flows.ts';
import { ServiceMapView } from './map.ts';
import { readRoute, type Route, VIEWS, writeRoute } from './route.ts';
import { drawDns, drawDrops, drawHealth, drawHeat, drawHttp, refreshFqdn } from './views.ts';

let route: Route = readRoute(location.hash);
let snapshot: UiSnapshot | null = null;

const mapSvg = byId('service-map') as unknown as SVGSVGElement;
const map = new ServiceMapView(mapSvg, {
  node: (w) => go({ ...route, view: 'flows', filters: nodeFilters(w) }),
  edge: (e) => go({ ...route, view: 'flows', filters: edgeFilters(e) }),
});
const flows = new FlowsView((filters) => go({ ...route, view: 'flows', filters }));

/** The observe filters that select a workload's flows (either direction). */
function nodeFilters(w: Workload): [string, string][] {
  return endpointFilters(w.id, '');
}

function edgeFilters(e: Edge): [string, string][] {
  return [...endpointFilters(e.source, 'from-'), ...endpointFilters(e.destination, 'to-')];
}

function endpointFilters(id: string, side: '' | 'from-' | 'to-'): [string, string][] {
  const slash = id.indexOf('/');
  const ns = id.slice(0, slash);
  const name = id.slice(slash + 1);
  if (ns === 'world') return /^[\d.:a-f]+$/i.test(name) ? [[`${side}ip`, name]] : [['fqdn', name]];
  if (ns === 'host') return [[`${side}label`, 'reserved:host'], ['node', name]];
  if (ns === 'reserved') return [[`${side}label`, `reserved:${name}`]];
  return [[`${side}pod`, `${ns}/${name}`]];
}

function go(next: Route): void {
  const hash = writeRoute(next);
  if (hash === location.hash) apply(next);
  else location.hash = hash;
}

function apply(next: Route): void {
  route = next;
  for (const v of VIEWS) {
    byId(`view-${v}`).hidden = v !== route.view;
    byId(`tab-${v}`).classList.toggle('active', v === route.view);
    byId(`tab-${v}`).setAttribute('aria-selected', String(v === route.view));
  }
  // Tab links carry the filters along, so switching views keeps a shared link's state.
  for (const v of VIEWS) byId<HTMLAnchorElement>(`tab-${v}`).href = writeRoute({ ...route, view: v });
  // Leaving Flows stops its stream before the filters change, so that change loads nothing.
  if (route.view !== 'flows') flows.setActive(false);
  flows.setFilters(route.filters);
  if (route.view === 'flows') flows.setActive(true);
  byId<HTMLSelectElement>('heat-metric').value = route.heatMetric;
  if (route.view === 'dns') refreshFqdn(true);
  // A view that needs more than the map's snapshot gets its stream (once the first snapshot opened one).
  if (events !== null) stream();
  draw();
}

function draw(): void {
  const s = snapshot;
  if (s === null) return;
  drawHeader(s);
  // A map-only snapshot (?only=map) has nothing for the other views: they wait for their stream's first.
  if (s.only === 'map' && route.view !== 'map' && route.view !== 'flows') return;
  switch (route.view) {
    case 'map': drawMap(s); break;
    case 'drops': drawDrops(s); break;
    case 'dns': drawDns(s); refreshFqdn(); break;
    case 'http': drawHttp(s); break;
    case 'heat': drawHeat(s, route.heatMetric); break;
    case 'health': drawHealth(s); break;
    case 'flows': break;
  }
}

/** Changes text only when it differs: any change outside the map makes the browser lay the page out again. */
function setText(id: string, text: string, html = false): void {
  const el = byId(id);
  if (el.dataset['text'] === text) return;
  el.dataset['text'] = text;
  if (html) el.innerHTML = text;
  else el.textContent = text;
}

function drawHeader(s: UiSnapshot): void {
  const t = s.totals;
  setText('totals', `<span><b>${num(t.flows)}</b> flows</span><span><b>${rate(t.flowsPerSecond)}</b></span>`
    + `<span class="fwd"><b>${num(t.forwarded)}</b> forwarded</span><span class="drop"><b>${num(t.dropped)}</b> dropped</span>`
    + (t.lost > 0 ? `<span class="drop"><b>${num(t.lost)}</b> lost</span>` : ''), true);
  setText('source', `${esc(s.source)}${s.prometheus ? ' · <span class="badge">Prometheus</span>' : ''}`, true);
}

let nsOptions = '';
function drawMap(s: UiSnapshot): void {
  const select = byId<HTMLSelectElement>('map-ns');
  const namespaces = [...new Set([...s.map.namespaces, ...(route.mapNamespace ? [route.mapNamespace] : [])])].sort();
  const options = `<option value="">all namespaces (${namespaces.length})</option>${namespaces.map((ns) => `<option value="${esc(ns)}">${esc(ns)}</option>`).join('')}`;
  if (options !== nsOptions) { select.innerHTML = options; nsOptions = options; }
  select.value = route.mapNamespace;
  const started = performance.now();
  const shown = map.render(s.map, route.mapNamespace);
  const ms = performance.now() - started;
  // Timings go on an element of their own: an attribute changed on the <svg> would make the browser repaint the whole map.
  const timing = byId('map-timing');
  timing.dataset['renderMs'] = ms.toFixed(1);
  timing.dataset['workloads'] = String(shown.workloads);
  timing.dataset['edges'] = String(shown.edges);
  // Draw time including the browser's style, layout and paint: the frame after next has been painted.
  requestAnimationFrame(() => requestAnimationFrame(() => { timing.dataset['frameMs'] = (performance.now() - started).toFixed(1); }));
  setText('map-stats', `${shown.workloads} workloads · ${shown.edges} edges`);
  byId('map-empty').hidden = shown.workloads > 0;
}

function setLive(state: 'live' | 'connecting' | 'offline'): void {
  const el = byId('live-status');
  el.dataset['state'] = state;
  el.textContent = state === 'live' ? '● live' : state === 'connecting' ? '○ connecting…' : '● offline (retrying)';
}

const VERDICTS: Edge['verdict'][] = ['forwarded', 'dropped', 'mixed'];

/** The map's edges back from their compact rows (?edges=rows, see api.ts EdgeRows). */
function expandEdges(s: UiSnapshot): UiSnapshot {
  const r = s.map.edgeRows;
  if (r === undefined) return s;
  const edges: Edge[] = [];
  const ports = r.ports.map((p) => (p === '' ? [] : p.split(',')));
  const rows = r.rows;
  for (let i = 0; i + 7 < rows.length; i += 8) {
    const source = r.ids[rows[i] ?? 0] ?? '';
    const destination = r.ids[rows[i + 1] ?? 0] ?? '';
    const flags = rows[i + 6] ?? 0;
    edges.push({
      id: `${source}->${destination}`, source, destination, ports: ports[rows[i + 2] ?? 0] ?? [],
      forwarded: rows[i + 3] ?? 0, dropped: rows[i + 4] ?? 0, rate: rows[i + 5] ?? 0,
      verdict: VERDICTS[flags & 3] ?? 'mixed', l7: (flags & 4) !== 0, dns: (flags & 8) !== 0, tunnelled: (flags & 16) !== 0,
      lastSeen: r.since + (rows[i + 7] ?? 0),
    });
  }
  const { edgeRows: _, ...map } = s.map;
  return { ...s, map: { ...map, edges } };
}

let drawQueued = false;
/** Snapshots arriving faster than frames are drawn once, the newest. */
function receive(wire: UiSnapshot): void {
  const s = expandEdges(wire);
  snapshot = s;
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; draw(); });
}

/**
 * The first snapshot comes from /api/snapshot (preloaded by index.html while the
 * script loads); the live stream opens once it is drawn, since every snapshot the
 * stream brings costs the page a parse of the whole map, better after the first paint.
 */
/** The snapshot shape this view needs (api.ts): the map and the flows table draw nothing of the other views' data. */
function snapshotQuery(): string {
  return route.view === 'map' || route.view === 'flows' ? 'edges=rows&only=map' : 'edges=rows';
}

let events: EventSource | null = null;
let eventsQuery = '';
/** (Re)opens the live stream for the view's snapshot shape; a new stream brings the current snapshot at once. */
function stream(): void {
  const query = snapshotQuery();
  if (events !== null && query === eventsQuery) return;
  events?.close();
  eventsQuery = query;
  const es = new EventSource(`/api/events?${query}`);
  events = es;
  es.addEventListener('open', () => { setLive('live'); byId('banner').textContent = ''; });
  es.addEventListener('error', () => setLive(es.readyState === EventSource.CLOSED ? 'offline' : 'connecting'));
  es.addEventListener('snapshot', (ev) => {
    setLive('live');
    receive(JSON.parse((ev as MessageEvent<string>).data) as UiSnapshot);
  });
}

/**
 * The first snapshot comes from /api/snapshot (preloaded by index.html while the
 * script loads); the live stream opens once it is drawn, since every snapshot the
 * stream brings costs the page a parse of the whole map, better after the first paint.
 */
function connect(): void {
  setLive('connecting');
  getJson<UiSnapshot>(`/api/snapshot?${snapshotQuery()}`).then((s) => {
    receive(s);
    // After the frame that draws it (the rAF queued by receive runs first).
    requestAnimationFrame(() => setTimeout(stream, 0));
  }, (err: unknown) => {
    byId('banner').textContent = `Could not load /api/snapshot: ${err instanceof Error ? err.message : String(err)}`;
    stream();
  });
}

byId('map-ns').addEventListener('change', (ev) => go({ ...route, mapNamespace: (ev.target as HTMLSelectElement).value }));
byId('map-fit').addEventListener('click', () => map.fit());
byId('heat-metric').addEventListener('change', (ev) => go({ ...route, heatMetric: (ev.target as HTMLSelectElement).value }));
window.addEventListener('hashchange', () => apply(readRoute(location.hash)));
window.addEventListener('palisade:redraw', () => draw());
apply(route);
connect();
