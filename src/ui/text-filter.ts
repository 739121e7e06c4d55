/**
 * The flows table's filter box (`q`): Hubble UI's words, `[!][from:|to:]kind=value`,
 * separated by spaces; every word must hold. Plain words (no `=`) match any
 * part of the row's text (pods, workloads, IPs, verdict, drop reason, L7 info).
 *
 *   pod=frontend          from or to a pod whose name starts with frontend (any namespace; ns/pod for one)
 *   from:label=k8s:app=x  from endpoints with these labels (a selector, as --from-label)
 *   to:ip=10.244.0.0/16   to this address or CIDR        !verdict=forwarded   everything but forwarded
 *   dns=*.example.com     from or to this DNS name       identity=1234, namespace=demo, workload=demo/backend, port=80
 *   verdict, protocol, node, http-status, http-method, http-path, dns-query, type: as `palisade observe`'s flags
 *
 * Field semantics are src/flows' FlowFilter (compileFilters), so `q` and the
 * filter parameters agree on what a selector, CIDR or wildcard means.
 */
import { compileFilters, FlowFilterError, parseEventType, type Flow, type FlowFilter, type FlowPredicate } from '../flows/index.ts';
import { l7Summary } from './flow-row.ts';
import { workloadOf } from './workload.ts';

type Side = 'from' | 'to' | 'both';

/** Kinds with a source and a destination field. */
const SIDED: Record<string, [keyof FlowFilter, keyof FlowFilter, (v: string) => unknown]> = {
  label: ['source_label', 'destination_label', (v) => v],
  ip: ['source_ip', 'destination_ip', (v) => v],
  dns: ['source_fqdn', 'destination_fqdn', (v) => v],
  fqdn: ['source_fqdn', 'destination_fqdn', (v) => v],
  identity: ['source_identity', 'destination_identity', (v) => {
    if (!/^\d+$/.test(v)) throw new FlowFilterError(`q: identity=${v}: not a number`);
    return Number(v);
  }],
  port: ['source_port', 'destination_port', (v) => v],
  namespace: ['source_pod', 'destination_pod', (v) => `${v}/`],
};

/** Kinds without a side. */
const SIDELESS: Record<string, [keyof FlowFilter, (v: string) => unknown]> = {
  verdict: ['verdict', (v) => v.toUpperCase()],
  protocol: ['protocol', (v) => v.toLowerCase()],
  node: ['node_name', (v) => v],
  'http-status': ['http_status_code', (v) => v],
  'http-method': ['http_method', (v) => v.toUpperCase()],
  'http-path': ['http_path', (v) => v],
  'dns-query': ['dns_query', (v) => v],
  type: ['event_type', (v) => parseEventType(v)],
};

const KINDS = ['pod', 'workload', ...Object.keys(SIDED), ...Object.keys(SIDELESS)].join(', ');

/** Everything a plain word may match, lower-case. */
function rowText(f: Flow): string {
  const node = f.node_name ?? '';
  const s = workloadOf(f.source, f.IP?.source, f.source_names, node);
  const d = workloadOf(f.destination, f.IP?.destination, f.destination_names, node);
  return [s.id, f.source?.pod_name, f.IP?.source, d.id, f.destination?.pod_name, f.IP?.destination, f.verdict, f.drop_reason_desc, l7Summary(f), node]
    .filter((x) => x !== undefined && x !== '')
    .join(' ')
    .toLowerCase();
}

function sideFilter(side: Side, src: keyof FlowFilter, dst: keyof FlowFilter, value: unknown): FlowPredicate {
  const filters: FlowFilter[] = [];
  if (side !== 'to') filters.push({ [src]: [value] } as FlowFilter);
  if (side !== 'from') filters.push({ [dst]: [value] } as FlowFilter);
  return compileFilters(filters);
}

function podPredicate(side: Side, value: string): FlowPredicate {
  // ns/prefix: the FlowFilter's pod field; a bare name: that prefix in any namespace.
  if (value.includes('/')) return sideFilter(side, 'source_pod', 'destination_pod', value);
  const has = (pod: string | undefined): boolean => pod !== undefined && pod.startsWith(value);
  return (f) => (side !== 'to' && has(f.source?.pod_name)) || (side !== 'from' && has(f.destination?.pod_name));
}

function workloadPredicate(side: Side, value: string): FlowPredicate {
  const is = (id: string): boolean => id === value || id.slice(id.indexOf('/') + 1) === value;
  return (f) => {
    const node = f.node_name ?? '';
    if (side !== 'to' && is(workloadOf(f.source, f.IP?.source, f.source_names, node).id)) return true;
    return side !== 'from' && is(workloadOf(f.destination, f.IP?.destination, f.destination_names, node).id);
  };
}

function wordPredicate(word: string): FlowPredicate {
  let w = word;
  const negate = w.startsWith('!');
  if (negate) w = w.slice(1);
  let side: Side = 'both';
  if (w.startsWith('from:')) { side = 'from'; w = w.slice(5); }
  else if (w.startsWith('to:')) { side = 'to'; w = w.slice(3); }
  const eq = w.indexOf('=');
  let p: FlowPredicate;
  if (eq < 0) {
    if (side !== 'both') throw new FlowFilterError(`q: ${JSON.stringify(word)}: from:/to: needs kind=value (${KINDS})`);
    const needle = w.toLowerCase();
    p = (f) => rowText(f).includes(needle);
  } else {
    const kind = w.slice(0, eq).toLowerCase();
    const value = w.slice(eq + 1);
    if (value === '') throw new FlowFilterError(`q: ${JSON.stringify(word)}: empty value`);
    const sided = SIDED[kind];
    const sideless = SIDELESS[kind];
    if (kind === 'pod') p = podPredicate(side, value);
    else if (kind === 'workload') p = workloadPredicate(side, value);
    else if (sided !== undefined) p = sideFilter(side, sided[0], sided[1], sided[2](value));
    else if (sideless !== undefined) {
      if (side !== 'both') throw new FlowFilterError(`q: ${JSON.stringify(word)}: ${kind} has no from:/to: side`);
      p = compileFilters([{ [sideless[0]]: [sideless[1](value)] } as FlowFilter]);
    } else throw new FlowFilterError(`q: ${JSON.stringify(word)}: unknown kind ${JSON.stringify(kind)} (${KINDS})`);
  }
  return negate ? (f) => !p(f) : p;
}

/** All words must hold; undefined when `q` is empty. Throws FlowFilterError naming the bad word. */
export function textFilter(q: string): FlowPredicate | undefined {
  const words = q.split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return undefined;
  const ps = words.map(wordPredicate);
  if (ps.length === 1) return ps[0];
  return (f) => {
    for (const p of ps) if (!p(f)) return false;
    return true;
  };
}
