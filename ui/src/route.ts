/**
 * The URL hash holds what a shared link must reproduce: the view, the flows
 * filters (as /api/flows takes them) and the map's namespace, e.g.
 * `#flows?verdict=DROPPED&q=to:pod%3Ddefault/backend`.
 */

export const VIEWS = ['map', 'flows', 'drops', 'dns', 'http', 'heat', 'health'] as const;
export type View = (typeof VIEWS)[number];

/** `palisade observe`'s filters, as /api/flows takes them (see src/ui/api.ts). */
export const FILTER_NAMES = new Set([
  'namespace', 'pod', 'from-pod', 'to-pod', 'label', 'from-label', 'to-label', 'ip', 'from-ip', 'to-ip',
  'port', 'to-port', 'verdict', 'type', 'protocol', 'fqdn', 'http-status', 'http-method', 'http-path', 'node',
]);

export interface Route {
  view: View;
  /** Flows filters, in order: [name, value] with name a FILTER_NAMES entry or `q`. */
  filters: [string, string][];
  /** The map's namespace ('' = all). */
  mapNamespace: string;
  heatMetric: string;
}

export function readRoute(hash: string): Route {
  const text = hash.replace(/^#/, '');
  const q = text.indexOf('?');
  const name = q < 0 ? text : text.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : text.slice(q + 1));
  const view = (VIEWS as readonly string[]).includes(name) ? (name as View) : 'map';
  const filters: [string, string][] = [];
  for (const [k, v] of params) if (k === 'q' || FILTER_NAMES.has(k)) filters.push([k, v]);
  return { view, filters, mapNamespace: params.get('map-ns') ?? '', heatMetric: params.get('heat') ?? 'flows' };
}

export function writeRoute(r: Route): string {
  const p = new URLSearchParams(r.filters);
  if (r.mapNamespace) p.set('map-ns', r.mapNamespace);
  if (r.heatMetric !== 'flows') p.set('heat', r.heatMetric);
  const qs = p.toString();
  return `#${r.view}${qs ? `?${qs}` : ''}`;
}

/**
 * The filter box's text → query parameters. A word `name=value` (or `--name=value`)
 * naming one of observe's filters becomes that parameter; everything else — Hubble
 * UI's `[!][from:|to:]kind=value` words and free text — goes to the server as `q`.
 */
export function parseFilterText(text: string): [string, string][] {
  const out: [string, string][] = [];
  const rest: string[] = [];
  for (const word of text.trim().split(/\s+/).filter(Boolean)) {
    const m = /^(?:--)?([a-z-]+)=(.+)$/.exec(word);
    if (m && m[1] !== undefined && m[2] !== undefined && FILTER_NAMES.has(m[1])) out.push([m[1], m[2]]);
    else rest.push(word);
  }
  if (rest.length > 0) out.push(['q', rest.join(' ')]);
  return out;
}

export function filterText(filters: [string, string][]): string {
  return filters.map(([k, v]) => (k === 'q' ? v : `${k}=${v}`)).join(' ');
}

export function filterQuery(filters: [string, string][]): string {
  return new URLSearchParams(filters).toString();
}
