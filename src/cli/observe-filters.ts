/**
 * `palisade observe` filter flags → Hubble FlowFilters, the way `hubble
 * observe` builds them (hubble/cmd/observe/observe_filter.go):
 *
 *   1. Two filters are built side by side, "left" and "right"; the result is
 *      left OR right (one filter when they end up equal).
 *   2. `--from-*`, `--to-*` and side-less flags (`--verdict`, `--type`,
 *      `--protocol`, `--http-*`, `--node`, …) go into both.
 *   3. Either-side flags (`--pod`, `--ip`, `--label`, `--fqdn`, `--port`,
 *      `--namespace`, `--identity`) put their value in the source field of
 *      left and the destination field of right: "from X, or to X".
 *   4. `--not` sends the next filter flag (only that one) to a second pair of
 *      filters, the blacklist, built by the same rules.
 *   5. A pod without a namespace is in the `--namespace` namespace, else
 *      `default`; `--namespace` alone selects every pod of the namespace.
 */
import { FlowFilterError, parseEventType, type FlowFilter, parseTcpFlags, FLOW_VERDICTS, type FlowVerdict } from '../flows/index.ts';

/** One filter flag as given on the command line, in order: `['from-pod', 'default/a']`, `['not', '']`. */
export type FilterFlag = readonly [flag: string, value: string];

export interface FlowFilters {
  whitelist: FlowFilter[];
  blacklist: FlowFilter[];
}

type Field = keyof FlowFilter;
type Side = 'both' | 'split';
interface FlagRule {
  side: Side;
  /** Field for `both`; source field of `split` (its destination twin is `dst`). */
  field: Field;
  dst?: Field;
  value: (v: string) => unknown[];
}

const str = (v: string): string[] => [v];
const list = (v: string): string[] => v.split(',').map((s) => s.trim()).filter((s) => s !== '');
const upperList = (v: string): string[] => list(v).map((s) => s.toUpperCase());
const num = (flag: string) => (v: string): number[] => {
  if (!/^\d+$/.test(v)) throw new FlowFilterError(`--${flag}: ${JSON.stringify(v)} is not a number`);
  return [Number(v)];
};
const verdicts = (v: string): FlowVerdict[] =>
  upperList(v).map((x) => {
    if (!FLOW_VERDICTS.includes(x as FlowVerdict)) throw new FlowFilterError(`--verdict: unknown verdict ${JSON.stringify(x)} (${FLOW_VERDICTS.slice(1).join(', ')})`);
    return x as FlowVerdict;
  });

/** Flag → field(s). Pod and namespace values are qualified in a first pass (rule 5). */
export const FILTER_FLAGS: Record<string, FlagRule> = {
  'from-ip': { side: 'both', field: 'source_ip', value: str },
  'to-ip': { side: 'both', field: 'destination_ip', value: str },
  ip: { side: 'split', field: 'source_ip', dst: 'destination_ip', value: str },
  'from-pod': { side: 'both', field: 'source_pod', value: str },
  'to-pod': { side: 'both', field: 'destination_pod', value: str },
  pod: { side: 'split', field: 'source_pod', dst: 'destination_pod', value: str },
  'from-namespace': { side: 'both', field: 'source_pod', value: (v) => [`${v}/`] },
  'to-namespace': { side: 'both', field: 'destination_pod', value: (v) => [`${v}/`] },
  namespace: { side: 'split', field: 'source_pod', dst: 'destination_pod', value: (v) => [`${v}/`] },
  'from-label': { side: 'both', field: 'source_label', value: str },
  'to-label': { side: 'both', field: 'destination_label', value: str },
  label: { side: 'split', field: 'source_label', dst: 'destination_label', value: str },
  'from-fqdn': { side: 'both', field: 'source_fqdn', value: str },
  'to-fqdn': { side: 'both', field: 'destination_fqdn', value: str },
  fqdn: { side: 'split', field: 'source_fqdn', dst: 'destination_fqdn', value: str },
  'from-port': { side: 'both', field: 'source_port', value: str },
  'to-port': { side: 'both', field: 'destination_port', value: str },
  port: { side: 'split', field: 'source_port', dst: 'destination_port', value: str },
  'from-identity': { side: 'both', field: 'source_identity', value: num('from-identity') },
  'to-identity': { side: 'both', field: 'destination_identity', value: num('to-identity') },
  identity: { side: 'split', field: 'source_identity', dst: 'destination_identity', value: num('identity') },
  verdict: { side: 'both', field: 'verdict', value: verdicts },
  type: { side: 'both', field: 'event_type', value: (v) => [parseEventType(v)] },
  protocol: { side: 'both', field: 'protocol', value: (v) => list(v).map((s) => s.toLowerCase()) },
  'http-method': { side: 'both', field: 'http_method', value: upperList },
  'http-path': { side: 'both', field: 'http_path', value: str },
  'http-url': { side: 'both', field: 'http_url', value: str },
  'http-status': { side: 'both', field: 'http_status_code', value: str },
  'dns-query': { side: 'both', field: 'dns_query', value: str },
  node: { side: 'both', field: 'node_name', value: str },
  'traffic-direction': { side: 'both', field: 'traffic_direction', value: upperList },
  'ip-version': { side: 'both', field: 'ip_version', value: (v) => [v === '4' || v.toLowerCase() === 'ipv4' ? 'IPv4' : v === '6' || v.toLowerCase() === 'ipv6' ? 'IPv6' : bad('ip-version', v)] },
  'drop-reason': { side: 'both', field: 'drop_reason_desc', value: upperList },
  'tcp-flags': { side: 'both', field: 'tcp_flags', value: (v) => [parseTcpFlags(v)] },
  uuid: { side: 'both', field: 'uuid', value: str },
};

function bad(flag: string, v: string): never {
  throw new FlowFilterError(`--${flag}: invalid value ${JSON.stringify(v)}`);
}

const POD_FLAGS = new Set(['pod', 'from-pod', 'to-pod']);

class FilterPair {
  left: FlowFilter | null = null;
  right: FlowFilter | null = null;

  add(side: 'left' | 'right', field: Field, values: unknown[]): void {
    const f = (this[side] ??= {}) as Record<string, unknown[]>;
    (f[field] ??= []).push(...values);
  }

  /** Rule 1: left OR right, one filter when equal. */
  filters(): FlowFilter[] {
    const out = [this.left, this.right].filter((f): f is FlowFilter => f !== null);
    if (out.length === 2 && JSON.stringify(out[0]) === JSON.stringify(out[1])) return [out[0] as FlowFilter];
    return out;
  }
}

/** The pure translation (table-tested). Throws FlowFilterError on a bad value or an unknown flag. */
export function filtersFromFlags(flags: readonly FilterFlag[]): FlowFilters {
  // Rule 5, first pass: the namespace pods without one belong to.
  const nsFlag = [...flags].reverse().find(([f]) => f === 'namespace');
  const anyPod = flags.some(([f]) => POD_FLAGS.has(f));
  const defaultNs = nsFlag?.[1] ?? 'default';

  const white = new FilterPair();
  const black = new FilterPair();
  let negateNext = false;
  for (const [flag, raw] of flags) {
    if (flag === 'not') {
      negateNext = true;
      continue;
    }
    const rule = FILTER_FLAGS[flag];
    if (rule === undefined) throw new FlowFilterError(`--${flag} is not a filter flag`);
    // `--namespace` with pod flags only qualifies the pods (rule 5).
    if (flag === 'namespace' && anyPod) continue;
    const value = POD_FLAGS.has(flag) && !raw.includes('/') ? `${defaultNs}/${raw}` : raw;
    const values = rule.value(value);
    const pair = negateNext ? black : white;
    negateNext = false;
    if (rule.side === 'both') {
      pair.add('left', rule.field, values);
      pair.add('right', rule.field, values);
    } else {
      pair.add('left', rule.field, values);
      pair.add('right', rule.dst as Field, values);
    }
  }
  if (negateNext) throw new FlowFilterError('--not must be followed by a filter flag');
  return { whitelist: white.filters(), blacklist: black.filters() };
}
