/**
 * The UI's HTTP server: the routes of api.ts over one Aggregator and one
 * RecentFlows ring, fed by followFlows() from a UiSource.
 *
 *   source streams ─► ingest(e) ─► RecentFlows.push ─► Aggregator.add
 *   tick (every 250 ms) ─► snapshot built when something changed ─► one JSON string ─► every /api/events client
 *                       ─► each /api/flows/stream client: matching rows since its cursor
 *   health (every 5 s) ─► source.health() ─► Aggregator.setHealth
 *   traffic (every 2 s, a lab's agents only) ─► source.traffic() ─► Aggregator.setTraffic (the heat map's bytes)
 *
 * A snapshot is built at most 4× a second, and only while someone listens or
 * asks; every SSE client gets the same precomputed frame. A client whose
 * socket buffer is full is skipped until it drains (it gets the newest
 * snapshot then, never a backlog).
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { compileFilters, FlowFilterError, type FlowEnvelope, type FlowPredicate } from '../flows/index.ts';
import type { Edge, EdgeRows, FlowsPage, UiSnapshot } from './api.ts';
import { Aggregator, type AggregatorOptions } from './aggregator.ts';
import { RecentFlows } from './recent-flows.ts';
import { followFlows, followTraffic, type UiSource } from './sources.ts';
import { textFilter, type FiltersFromFlags } from './text-filter.ts';

/** `palisade observe`'s filter flags → FlowFilters (the command passes src/cli's translation in). */
export type { FiltersFromFlags };

export interface UiServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The built page (dist/ui): index.html, app.js, app.css. */
  staticDir: string;
  source: UiSource;
  filtersFromFlags: FiltersFromFlags;
  /** Base URL of Prometheus (http://127.0.0.1:9090) for /api/prom/*. */
  prometheus?: string;
  /** Flows kept for the table. Default 5,000. */
  recentFlows?: number;
  /** History read from the sources at start. Default: the series window (10 minutes). */
  historyMs?: number;
  aggregator?: Omit<AggregatorOptions, 'source' | 'prometheus'>;
  /** Default 250 ms: at most 4 snapshots a second. */
  tickMs?: number;
  healthIntervalMs?: number;
  /** Progress and source failures, one line each. */
  log?: (line: string) => void;
}

export interface UiServer {
  url: string;
  port: number;
  aggregator: Aggregator;
  /** Feeds one flow as the sources do (tests, benchmarks). */
  ingest(e: FlowEnvelope): void;
  close(): Promise<void>;
}

interface SnapshotClient {
  res: ServerResponse;
  sentVersion: number;
  lastSentAt: number;
  blocked: boolean;
  form: SnapshotForm;
}

/** Which shape of snapshot a client asked for (api.ts: ?edges=rows, ?only=map). */
interface SnapshotForm { rows: boolean; onlyMap: boolean }

interface FlowStreamClient {
  res: ServerResponse;
  pred: FlowPredicate | undefined;
  cursor: number;
  blocked: boolean;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

const MAX_STREAM_BATCH = 1000;
const KEEPALIVE_MS = 15_000;

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const log = o.log ?? (() => {});
  const aggregator = new Aggregator({ ...o.aggregator, source: o.source.describe, ...(o.prometheus !== undefined ? { prometheus: o.prometheus } : {}) });
  const ring = new RecentFlows(o.recentFlows ?? 5000);
  const tickMs = o.tickMs ?? 250;
  const stop = new AbortController();

  const ingest = (e: FlowEnvelope): void => {
    ring.push(e);
    aggregator.add(e, ring.written - 1);
  };

  // ── Snapshots: built on the tick (or on request), at most once per tick interval ──
  let snap: UiSnapshot | undefined;
  // Each form (api.ts: ?edges=rows, ?only=map) serialised at most once a version, and only when someone asks for it.
  const forms = new Map<string, { version: number; json: string; frame: string }>();
  const serialised = (form: SnapshotForm): { json: string; frame: string } => {
    const key = `${form.rows}|${form.onlyMap}`;
    let f = forms.get(key);
    if (f === undefined) { f = { version: -1, json: '', frame: '' }; forms.set(key, f); }
    if (f.version !== version && snap !== undefined) {
      let s = form.onlyMap ? onlyMap(snap) : snap;
      if (form.rows) s = withEdgeRows(s);
      f.json = JSON.stringify(s);
      f.frame = `event: snapshot\ndata: ${f.json}\n\n`;
      f.version = version;
    }
    return f;
  };
  const formOf = (params: URLSearchParams): SnapshotForm => ({ rows: params.get('edges') === 'rows', onlyMap: params.get('only') === 'map' });
  let version = 0;
  let builtChanges = -1;
  let builtAt = -Infinity;
  let ratesActive = false;
  // A large map costs tens of ms to build and serialise: past 50 ms a build, space builds out
  // so that they take at most a fifth of a core (the page then gets fewer than 4 a second).
  let minInterval = tickMs;
  const build = (now: number): void => {
    const stale = aggregator.changes !== builtChanges || (ratesActive && now - builtAt >= 1000);
    if (!stale || now - builtAt < minInterval) return;
    builtChanges = aggregator.changes;
    const s = aggregator.snapshot();
    snap = s;
    ratesActive = s.totals.flowsPerSecond > 0 || s.map.edges.some((e) => e.rate > 0);
    version++;
    for (const c of snapshotClients) serialised(c.form);
    minInterval = Math.max(tickMs, 5 * (performance.now() - now));
    builtAt = now;
  };

  const snapshotClients = new Set<SnapshotClient>();
  const streamClients = new Set<FlowStreamClient>();
  const sendSnapshot = (c: SnapshotClient, now: number): void => {
    c.sentVersion = version;
    c.lastSentAt = now;
    if (!c.res.write(serialised(c.form).frame)) {
      c.blocked = true;
      c.res.once('drain', () => { c.blocked = false; });
    }
  };
  const tick = (): void => {
    const now = performance.now();
    if (snapshotClients.size > 0) {
      build(now);
      for (const c of snapshotClients) if (!c.blocked && c.sentVersion < version && now - c.lastSentAt >= tickMs) sendSnapshot(c, now);
    }
    for (const c of streamClients) {
      if (c.blocked || c.cursor >= ring.written) continue;
      // A stream's batch is in arrival order (the newest 1,000 when more came in one tick).
      const rows = ring.newest(c.pred, MAX_STREAM_BATCH, c.cursor).reverse();
      c.cursor = ring.written;
      if (rows.length === 0) continue;
      if (!c.res.write(`event: flows\ndata: ${JSON.stringify(rows)}\n\n`)) {
        c.blocked = true;
        c.res.once('drain', () => { c.blocked = false; });
      }
    }
  };
  const ticker = setInterval(tick, tickMs);
  const keepalive = setInterval(() => {
    for (const c of [...snapshotClients, ...streamClients]) if (!c.blocked) c.res.write(': keepalive\n\n');
  }, KEEPALIVE_MS);

  // ── Filters: observe's parameters plus q ──
  const predicate = (params: URLSearchParams): FlowPredicate | undefined => {
    const flags: [string, string][] = [];
    let q = '';
    for (const [k, v] of params) {
      if (k === 'q') q += ` ${v}`;
      else if (k !== 'limit') flags.push([k, v]);
    }
    let base: FlowPredicate | undefined;
    if (flags.length > 0) {
      const { whitelist, blacklist } = o.filtersFromFlags(flags);
      if (whitelist.length + blacklist.length > 0) base = compileFilters(whitelist, blacklist);
    }
    const text = textFilter(q, o.filtersFromFlags);
    if (base === undefined) return text;
    if (text === undefined) return base;
    const b = base;
    return (f) => b(f) && text(f);
  };

  const sse = (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
  };

  const statics = new Map<string, StaticFile>();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://ui');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `${req.method} not allowed; the UI's API is read-only (GET)` });

    if (path === '/api/snapshot') {
      build(performance.now());
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(serialised(formOf(url.searchParams)).json);
      return;
    }
    if (path === '/api/events') {
      sse(res);
      const now = performance.now();
      build(now);
      const c: SnapshotClient = { res, sentVersion: 0, lastSentAt: -Infinity, blocked: false, form: formOf(url.searchParams) };
      snapshotClients.add(c);
      res.once('close', () => snapshotClients.delete(c));
      sendSnapshot(c, now);
      return;
    }
    if (path === '/api/flows' || path === '/api/flows/stream') {
      let pred: FlowPredicate | undefined;
      let limit = 500;
      try {
        pred = predicate(url.searchParams);
        const l = url.searchParams.get('limit');
        if (l !== null) {
          if (!/^\d+$/.test(l) || Number(l) === 0) throw new FlowFilterError(`limit: ${JSON.stringify(l)} is not a positive integer`);
          limit = Math.min(Number(l), ring.capacity);
        }
      } catch (err) {
        if (!(err instanceof FlowFilterError)) throw err;
        return sendJson(res, 400, { error: err.message.replace(/--([a-z][a-z0-9-]*)/g, 'parameter $1') });
      }
      if (path === '/api/flows') {
        const page: FlowsPage = { flows: ring.newest(pred, limit), kept: ring.size };
        return sendJson(res, 200, page);
      }
      sse(res);
      const c: FlowStreamClient = { res, pred, cursor: ring.written, blocked: false };
      streamClients.add(c);
      res.once('close', () => streamClients.delete(c));
      return;
    }
    if (path.startsWith('/api/flows/')) {
      const id = decodeURIComponent(path.slice('/api/flows/'.length));
      const e = ring.find(id);
      if (e === undefined) return sendJson(res, 404, { error: `no flow ${JSON.stringify(id)} is kept (the table keeps the newest ${ring.capacity})` });
      return sendJson(res, 200, e);
    }
    if (path === '/api/fqdn') {
      const view = o.source.fqdn !== undefined ? await o.source.fqdn(AbortSignal.any([stop.signal, AbortSignal.timeout(5000)])) : aggregator.observedFqdn();
      return sendJson(res, 200, view);
    }
    if (path === '/api/prom/query' || path === '/api/prom/query_range') return proxyPrometheus(o.prometheus, path.slice('/api/prom/'.length), url.search, res);
    if (path.startsWith('/api/')) return sendJson(res, 404, { error: `no route ${path}` });
    const page = serveStatic(statics, o.staticDir, path, req.method === 'HEAD', res);
    // The page asks for the snapshot next (index.html preloads it): build it while the browser parses.
    if (page && snapshotClients.size === 0) setImmediate(() => build(performance.now()));
    return;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`ui: ${req.method} ${req.url}: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;

  // ── Sources ──
  const historyMs = o.historyMs ?? (o.aggregator?.buckets ?? 60) * (o.aggregator?.bucketSeconds ?? 10) * 1000;
  const follows = o.source.flows.map((src) =>
    followFlows(src, {
      flow: ingest,
      lost: (n) => aggregator.lost(n),
      status: (node, err) => log(err === undefined ? `flows from ${node}: streaming again` : `flows from ${node}: ${err instanceof Error ? err.message : String(err)} (retrying)`),
    }, stop.signal, historyMs),
  );
  const pollHealth = async (): Promise<void> => {
    try {
      aggregator.setHealth(await o.source.health(AbortSignal.any([stop.signal, AbortSignal.timeout(5000)])));
    } catch (err) {
      if (!stop.signal.aborted) log(`health: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  void pollHealth();
  const readTraffic = o.source.traffic?.bind(o.source);
  const traffic = readTraffic
    ? followTraffic(readTraffic, (rows) => aggregator.setTraffic(rows), (err) => log(`traffic: ${err instanceof Error ? err.message : String(err)}`), stop.signal)
    : Promise.resolve();
  const healthTimer = setInterval(() => void pollHealth(), o.healthIntervalMs ?? 5000);

  return {
    url: `http://${host}:${port}/`,
    port,
    aggregator,
    ingest,
    async close(): Promise<void> {
      stop.abort();
      clearInterval(ticker);
      clearInterval(keepalive);
      clearInterval(healthTimer);
      for (const c of [...snapshotClients, ...streamClients]) c.res.end();
      o.source.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.allSettled([...follows, traffic]);
    },
  };
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function proxyPrometheus(base: string | undefined, route: string, search: string, res: ServerResponse): Promise<void> {
  if (base === undefined) return sendJson(res, 404, { error: 'no Prometheus: start the UI with --prometheus URL (a lab: lab up --prometheus)' });
  let upstream: Response;
  try {
    upstream = await fetch(`${base.replace(/\/$/, '')}/api/v1/${route}${search}`, { signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    return sendJson(res, 502, { error: `Prometheus at ${base}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}` });
  }
  const body = await upstream.text();
  res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json', 'cache-control': 'no-store' });
  res.end(body);
}

/** The snapshot for a page showing only the map: the other views' data left out (empty). */
function onlyMap(s: UiSnapshot): UiSnapshot {
  return {
    ...s,
    only: 'map',
    drops: { total: 0, byReason: [], byPolicy: [], bySource: [], byDestination: [], series: [], recent: [] },
    dns: { queries: 0, names: [], series: [], recent: [] },
    http: { requests: 0, byMethod: [], byStatus: [], latencyBuckets: s.http.latencyBuckets, latency: [], topDenied: [], recent: [] },
    heat: { workloads: [], cells: [], series: [] },
  };
}

const VERDICT_BITS: Record<Edge['verdict'], number> = { forwarded: 0, dropped: 1, mixed: 2 };

/** The snapshot with its map's edges as EdgeRows (api.ts): the bulk of a big map's bytes is the edges' keys and repeated ids. */
function withEdgeRows(s: UiSnapshot): UiSnapshot {
  const ids: string[] = [];
  const ports: string[] = [];
  const idIndex = new Map<string, number>();
  const portIndex = new Map<string, number>();
  const at = (list: string[], index: Map<string, number>, key: string): number => {
    let i = index.get(key);
    if (i === undefined) { i = list.length; list.push(key); index.set(key, i); }
    return i;
  };
  let since = Infinity;
  for (const e of s.map.edges) since = Math.min(since, e.lastSeen);
  if (since === Infinity) since = 0;
  const rows: number[] = [];
  for (const e of s.map.edges) {
    const flags = VERDICT_BITS[e.verdict] | (e.l7 ? 4 : 0) | (e.dns ? 8 : 0) | (e.tunnelled ? 16 : 0);
    rows.push(at(ids, idIndex, e.source), at(ids, idIndex, e.destination), at(ports, portIndex, e.ports.join(',')), e.forwarded, e.dropped, e.rate, flags, e.lastSeen - since);
  }
  const edgeRows: EdgeRows = { ids, ports, since, rows };
  return { ...s, map: { ...s.map, edges: [], edgeRows } };
}

interface StaticFile { mtimeMs: number; size: number; body: Buffer }

/**
 * Files of the built page; paths without an extension are the page itself (views live in the URL).
 * They are kept in memory and checked against the disk on each request
 * (the page is rebuilt in place by scripts/build-ui.ts). Read synchronously: they
 * are a few small files in the page cache, and each asynchronous hop would wait
 * behind the flow ingest on a busy server. Returns whether the page itself was sent.
 */
function serveStatic(cache: Map<string, StaticFile>, dir: string, path: string, head: boolean, res: ServerResponse): boolean {
  let rel: string;
  try {
    rel = decodeURIComponent(path);
  } catch {
    sendJson(res, 400, { error: 'bad path encoding' });
    return false;
  }
  if (rel.endsWith('/') || extname(rel) === '') rel = '/index.html';
  const file = normalize(join(dir, rel));
  if (!file.startsWith(normalize(dir + sep))) {
    sendJson(res, 404, { error: 'not found' });
    return false;
  }
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file, { throwIfNoEntry: false });
  } catch {
    st = undefined; // a name no file can have (a NUL byte): not found, as any other
  }
  if (st === undefined || !st.isFile()) {
    cache.delete(file);
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`not found: ${path}\n`);
    return false;
  }
  let f = cache.get(file);
  if (f === undefined || f.mtimeMs !== st.mtimeMs || f.size !== st.size) {
    f = { mtimeMs: st.mtimeMs, size: st.size, body: readFileSync(file) };
    cache.set(file, f);
  }
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': f.body.length,
    // The page is rebuilt in place (node scripts/build-ui.ts): always revalidate.
    'cache-control': 'no-cache',
  });
  res.end(head ? undefined : f.body);
  return rel === '/index.html';
}
