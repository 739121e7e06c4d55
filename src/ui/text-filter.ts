/**
 * The flows table's filter box (`q`): Hubble UI's words, `[!][from:|to:]kind=value`,
 * separated by spaces; every word must hold. Plain words (no `=`) match any
 * part of the row's text (pods, workloads, IPs, verdict, drop reason, L7 info).
 *
 *   pod=frontend          from or to a pod whose name starts with frontend (any namespace; ns/pod for one)
 *   from:label=k8s:app=x  from endpoints with these labels (a selector, as --from-label)
 *   to:ip=10.244.0.0/16   to this address or CIDR        !verdict=forwarded   everything but forwarded
 *   dns=*.example.com     from or to this DNS name       identity=1234, namespace=demo, workload=demo/backend, port=80
 *   verdict, protocol, node, http-status, http-method, http-path, dns-query, type, …: `palisade observe`'s flags
 *
 * Every kind but pod and workload is observe's flag of that name (from:/to: its
 * from-/to- twin), translated by observe's own parser, so `q`, the filter
 * parameters and the CLI agree on what a value, selector, CIDR or wildcard means.
 */
import { compileFilters, FlowFilterError, type Flow, type FlowFilter, type FlowPredicate } from '../flows/index.ts';
import { l7Summary } from './flow-row.ts';
import { workloadOf } from './workload.ts';

type Side = 'from' | 'to' | 'both';

/**
 * `palisade observe`'s translation of filter flags (src/cli/observe-filters.ts), handed in
 * by the command: every `kind=value` word but pod and workload is that flag, so the box and
 * the CLI accept and refuse the same values.
 */
export type FiltersFromFlags = (flags: readonly (readonly [string, string])[]) => { whitelist: FlowFilter[]; blacklist: FlowFilter[] };

const KINDS = 'pod, workload, or any of observe\'s filter flags: verdict, ip, label, dns (fqdn), identity, port, namespace, protocol, node, type, http-status, http-method, http-path, dns-query, …';

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

function podPredicate(word: string, side: Side, value: string, flags: FiltersFromFlags): FlowPredicate {
  // ns/prefix: observe's pod flags; a bare name: that prefix in any namespace (observe would read default/).
  if (value.includes('/')) return flagPredicate(word, 'pod', side, value, flags);
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

/** One flag's FlowFilters as a predicate; a FlowFilterError says what is wrong with the word. */
function flagPredicate(word: string, kind: string, side: Side, value: string, flags: FiltersFromFlags): FlowPredicate {
  const name = kind === 'dns' ? 'fqdn' : kind;
  const isFlag = (flag: string): boolean => {
    try {
      flags([[flag, value]]);
      return true;
    } catch (err) {
      return !(err instanceof FlowFilterError && / is not a filter flag/.test(err.message));
    }
  };
  const flag = side === 'both' ? name : `${side}-${name}`;
  try {
    return compileFilters(flags([[flag, value]]).whitelist);
  } catch (err) {
    if (!(err instanceof FlowFilterError)) throw err;
    if (!/ is not a filter flag/.test(err.message)) throw new FlowFilterError(`q: ${JSON.stringify(word)}: ${err.message.replace(/^--[a-z0-9-]+: /, '')}`);
    if (side !== 'both' && isFlag(name)) throw new FlowFilterError(`q: ${JSON.stringify(word)}: ${kind} has no from:/to: side`);
    throw new FlowFilterError(`q: ${JSON.stringify(word)}: unknown kind ${JSON.stringify(kind)} (${KINDS})`);
  }
}

function wordPredicate(word: string, flags: FiltersFromFlags): FlowPredicate {
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
    if (kind === 'pod') p = podPredicate(word, side, value, flags);
    else if (kind === 'workload') p = workloadPredicate(side, value);
    else p = flagPredicate(word, kind, side, value, flags);
  }
  return negate ? (f) => !p(f) : p;
}

/** All words must hold; undefined when `q` is empty. Throws FlowFilterError naming the bad word. */
export function textFilter(q: string, flags: FiltersFromFlags): FlowPredicate | undefined {
  const words = q.split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return undefined;
  const ps = words.map((w) => wordPredicate(w, flags));
  if (ps.length === 1) return ps[0];
  return (f) => {
    for (const p of ps) if (!p(f)) return false;
    return true;
  };
}
