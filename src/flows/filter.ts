/**
 * Hubble's FlowFilter (flow.proto) as plain predicates `(flow) => boolean`,
 * built and validated once (pkg/hubble/filters). The rules, as Hubble states them:
 *
 *   1. Within one FlowFilter every set field must match (AND); the values of
 *      one field are alternatives (OR). An empty field constrains nothing.
 *   2. A flow passes the whitelist when any of its filters matches (OR); an
 *      empty whitelist lets everything through.
 *   3. A flow is excluded when any blacklist filter matches it.
 *
 * Field semantics follow Hubble: IPs exact or CIDR; pods `ns/` (whole
 * namespace) or `ns/prefix` (pod name prefix); labels are selector strings
 * (`k8s:app=x,env in (a,b),!debug`); http_path and dns_query are unanchored
 * regular expressions; http_status_code is `200` or a prefix `4+` / `40+`;
 * fqdn and node_name accept `*` wildcards.
 */
import { BlockList, isIP } from 'node:net';
import { LabelSet, parseLabelKey, Selector, type Label, type Requirement } from '../labels/index.ts';
import { compileMatchPattern, normaliseName } from '../fqdn/index.ts';
import {
  EVENT_TYPE,
  FLOW_VERDICTS,
  TRACE_POINTS,
  flowPorts,
  type Endpoint,
  type Flow,
  type FlowVerdict,
  type IPVersion,
  type TCPFlags,
  type TrafficDirection,
  type Workload,
} from './flow.ts';

export interface EventTypeFilter {
  type: number;
  match_sub_type?: boolean;
  sub_type?: number;
}

/** Hubble's FlowFilter with proto field names (only the fields Palisade evaluates). */
export interface FlowFilter {
  uuid?: string[];
  source_ip?: string[];
  destination_ip?: string[];
  source_pod?: string[];
  destination_pod?: string[];
  source_label?: string[];
  destination_label?: string[];
  source_fqdn?: string[];
  destination_fqdn?: string[];
  source_identity?: number[];
  destination_identity?: number[];
  source_workload?: Workload[];
  destination_workload?: Workload[];
  verdict?: FlowVerdict[];
  drop_reason_desc?: string[];
  event_type?: EventTypeFilter[];
  http_status_code?: string[];
  protocol?: string[];
  source_port?: string[];
  destination_port?: string[];
  reply?: boolean[];
  dns_query?: string[];
  http_method?: string[];
  http_path?: string[];
  http_url?: string[];
  tcp_flags?: TCPFlags[];
  node_name?: string[];
  ip_version?: IPVersion[];
  traffic_direction?: TrafficDirection[];
}

export type FlowPredicate = (flow: Flow) => boolean;

/** A filter that cannot be built; the message names the field and value. */
export class FlowFilterError extends Error {}

const matchAll: FlowPredicate = () => true;

/** Rules 2 and 3: one predicate for a whitelist and a blacklist. */
export function compileFilters(whitelist: readonly FlowFilter[] = [], blacklist: readonly FlowFilter[] = []): FlowPredicate {
  const wl = whitelist.map(compileFilter);
  const bl = blacklist.map(compileFilter);
  if (wl.length === 0 && bl.length === 0) return matchAll;
  return (flow) => {
    if (wl.length > 0) {
      let any = false;
      for (const p of wl) if (p(flow)) { any = true; break; }
      if (!any) return false;
    }
    for (const p of bl) if (p(flow)) return false;
    return true;
  };
}

/** Rule 1: every set field of one filter must match. */
export function compileFilter(f: FlowFilter): FlowPredicate {
  const parts: FlowPredicate[] = [];
  const add = <V>(values: readonly V[] | undefined, build: (values: readonly V[]) => FlowPredicate): void => {
    if (values !== undefined && values.length > 0) parts.push(build(values));
  };
  add(f.uuid, (v) => (flow) => flow.uuid !== undefined && v.includes(flow.uuid));
  add(f.source_ip, (v) => ipMatcher('source_ip', v, (flow) => flow.IP?.source));
  add(f.destination_ip, (v) => ipMatcher('destination_ip', v, (flow) => flow.IP?.destination));
  add(f.source_pod, (v) => podMatcher('source_pod', v, (flow) => flow.source));
  add(f.destination_pod, (v) => podMatcher('destination_pod', v, (flow) => flow.destination));
  add(f.source_label, (v) => labelMatcher('source_label', v, (flow) => flow.source));
  add(f.destination_label, (v) => labelMatcher('destination_label', v, (flow) => flow.destination));
  add(f.source_fqdn, (v) => fqdnMatcher('source_fqdn', v, (flow) => flow.source_names));
  add(f.destination_fqdn, (v) => fqdnMatcher('destination_fqdn', v, (flow) => flow.destination_names));
  add(f.source_identity, (v) => (flow) => v.includes(flow.source?.identity ?? 0));
  add(f.destination_identity, (v) => (flow) => v.includes(flow.destination?.identity ?? 0));
  add(f.source_workload, (v) => workloadMatcher(v, (flow) => flow.source));
  add(f.destination_workload, (v) => workloadMatcher(v, (flow) => flow.destination));
  add(f.verdict, (v) => {
    for (const x of v) if (!FLOW_VERDICTS.includes(x)) throw new FlowFilterError(`verdict: unknown verdict ${JSON.stringify(x)}`);
    return (flow) => v.includes(flow.verdict);
  });
  add(f.drop_reason_desc, (v) => (flow) => flow.drop_reason_desc !== undefined && v.includes(flow.drop_reason_desc));
  add(f.event_type, (v) => (flow) => v.some((e) => flow.event_type !== undefined && flow.event_type.type === e.type && (!e.match_sub_type || (flow.event_type.sub_type ?? 0) === (e.sub_type ?? 0))));
  add(f.http_status_code, statusMatcher);
  add(f.protocol, protocolMatcher);
  add(f.source_port, (v) => portMatcher('source_port', v, (flow) => flowPorts(flow)?.source_port));
  add(f.destination_port, (v) => portMatcher('destination_port', v, (flow) => flowPorts(flow)?.destination_port));
  add(f.reply, (v) => (flow) => v.includes(flow.is_reply === true));
  add(f.dns_query, (v) => {
    const res = v.map((s) => regex('dns_query', s));
    return (flow) => { const q = flow.l7?.dns?.query; return q !== undefined && res.some((r) => r.test(q)); };
  });
  add(f.http_method, (v) => {
    const want = v.map((m) => m.toUpperCase());
    return (flow) => { const m = flow.l7?.http?.method; return m !== undefined && want.includes(m.toUpperCase()); };
  });
  add(f.http_path, (v) => {
    const res = v.map((s) => regex('http_path', s));
    return (flow) => { const p = urlPath(flow.l7?.http?.url); return p !== undefined && res.some((r) => r.test(p)); };
  });
  add(f.http_url, (v) => {
    const res = v.map((s) => regex('http_url', s));
    return (flow) => { const u = flow.l7?.http?.url; return u !== undefined && res.some((r) => r.test(u)); };
  });
  add(f.tcp_flags, (v) => (flow) => {
    const l4 = flow.l4;
    if (l4 === undefined || !('TCP' in l4)) return false;
    const have = l4.TCP.flags ?? {};
    // Hubble: a flow matches a flag set when it has every flag of that set.
    return v.some((want) => Object.entries(want).every(([k, on]) => !on || have[k as keyof TCPFlags] === true));
  });
  add(f.node_name, (v) => {
    const res = v.map((s) => globToRegExp(s));
    return (flow) => { const n = flow.node_name ?? ''; return res.some((r) => r.test(n)); };
  });
  add(f.ip_version, (v) => (flow) => flow.IP !== undefined && v.includes(flow.IP.ipVersion));
  add(f.traffic_direction, (v) => (flow) => flow.traffic_direction !== undefined && v.includes(flow.traffic_direction));

  if (parts.length === 0) return matchAll;
  if (parts.length === 1) return parts[0] as FlowPredicate;
  return (flow) => {
    for (const p of parts) if (!p(flow)) return false;
    return true;
  };
}

// ── Field matchers ───────────────────────────────────────────────────────

function ipMatcher(field: string, values: readonly string[], get: (f: Flow) => string | undefined): FlowPredicate {
  const exact = new Set<string>();
  let cidrs: BlockList | undefined;
  for (const v of values) {
    const slash = v.indexOf('/');
    if (slash < 0) {
      if (isIP(v) === 0) throw new FlowFilterError(`${field}: ${JSON.stringify(v)} is not an IP address or CIDR`);
      exact.add(v);
      continue;
    }
    const addr = v.slice(0, slash);
    const family = isIP(addr);
    const prefix = Number(v.slice(slash + 1));
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
      throw new FlowFilterError(`${field}: ${JSON.stringify(v)} is not an IP address or CIDR`);
    }
    cidrs ??= new BlockList();
    cidrs.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return (flow) => {
    const ip = get(flow);
    if (ip === undefined || ip === '') return false;
    if (exact.has(ip)) return true;
    return cidrs !== undefined && cidrs.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
  };
}

/** `ns/` is every pod of ns; `ns/name` a pod name prefix (Hubble: deathstar matches deathstar-6f87…). */
function podMatcher(field: string, values: readonly string[], get: (f: Flow) => Endpoint | undefined): FlowPredicate {
  const wants = values.map((v) => {
    const slash = v.indexOf('/');
    if (slash <= 0) throw new FlowFilterError(`${field}: ${JSON.stringify(v)} must be "namespace/" or "namespace/pod"`);
    return { ns: v.slice(0, slash), prefix: v.slice(slash + 1) };
  });
  return (flow) => {
    const ep = get(flow);
    if (ep === undefined || ep.namespace === undefined || ep.namespace === '') return false;
    const pod = ep.pod_name ?? '';
    for (const w of wants) if (w.ns === ep.namespace && (w.prefix === '' || pod.startsWith(w.prefix))) return true;
    return false;
  };
}

function workloadMatcher(values: readonly Workload[], get: (f: Flow) => Endpoint | undefined): FlowPredicate {
  return (flow) => {
    const ws = get(flow)?.workloads ?? [];
    return values.some((v) => ws.some((w) => (v.name === '' || v.name === w.name) && (v.kind === '' || v.kind === w.kind)));
  };
}

// Flow labels arrive as `k8s:app=x` strings; parse each array once per array.
const labelSets = new WeakMap<readonly string[], LabelSet>();

function flowLabelSet(labels: readonly string[]): LabelSet {
  let set = labelSets.get(labels);
  if (set === undefined) {
    set = new LabelSet(labels.map(parseFlowLabel));
    labelSets.set(labels, set);
  }
  return set;
}

function parseFlowLabel(s: string): Label {
  const eq = s.indexOf('=');
  const { source, key } = parseLabelKey(eq < 0 ? s : s.slice(0, eq), 'unspec');
  return { source, key, value: eq < 0 ? '' : s.slice(eq + 1) };
}

function labelMatcher(field: string, values: readonly string[], get: (f: Flow) => Endpoint | undefined): FlowPredicate {
  const selectors = values.map((v) => parseLabelSelector(field, v));
  return (flow) => {
    const labels = get(flow)?.labels;
    if (labels === undefined) return false;
    const set = flowLabelSet(labels);
    return selectors.some((s) => s.matches(set));
  };
}

/**
 * The Kubernetes label selector string syntax (k8s.io/apimachinery labels.Parse):
 * `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, joined by commas.
 * Keys may carry a Cilium source (`k8s:app`); without one any source matches.
 */
export function parseLabelSelector(field: string, text: string): Selector {
  const reqs: Requirement[] = [];
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  const bad = (): never => { throw new FlowFilterError(`${field}: cannot parse label selector ${JSON.stringify(text)}`); };
  for (const raw of parts) {
    const p = raw.trim();
    if (p === '') bad();
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) {
      const values = (m[3] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      reqs.push({ key: m[1] ?? bad(), operator: m[2] === 'in' ? 'In' : 'NotIn', values });
    } else if ((m = /^([^=!\s]+)\s*!=\s*(\S*)$/.exec(p))) {
      reqs.push({ key: m[1] ?? bad(), operator: 'NotIn', values: [m[2] ?? ''] });
    } else if ((m = /^([^=!\s]+)\s*==?\s*(\S*)$/.exec(p))) {
      reqs.push({ key: m[1] ?? bad(), operator: 'In', values: [m[2] ?? ''] });
    } else if ((m = /^!\s*([^=!\s]+)$/.exec(p))) {
      reqs.push({ key: m[1] ?? bad(), operator: 'DoesNotExist', values: [] });
    } else if (/^[^=!\s()]+$/.test(p)) {
      reqs.push({ key: p, operator: 'Exists', values: [] });
    } else bad();
  }
  return new Selector(reqs);
}

function fqdnMatcher(field: string, values: readonly string[], get: (f: Flow) => string[] | undefined): FlowPredicate {
  const matchers = values.map((v) => {
    if (v === '') throw new FlowFilterError(`${field}: empty name`);
    return compileMatchPattern(v);
  });
  return (flow) => {
    const names = get(flow);
    if (names === undefined) return false;
    for (const n of names) {
      const norm = normaliseName(n);
      if (matchers.some((m) => m.matches(norm))) return true;
    }
    return false;
  };
}

function portMatcher(field: string, values: readonly string[], get: (f: Flow) => number | undefined): FlowPredicate {
  const ports = values.map((v) => {
    const n = Number(v);
    if (!/^\d+$/.test(String(v)) || n > 65535) throw new FlowFilterError(`${field}: ${JSON.stringify(v)} is not a port`);
    return n;
  });
  return (flow) => { const p = get(flow); return p !== undefined && ports.includes(p); };
}

/** `200` exact; `4+` or `40+` a prefix of the three digits (Hubble's filterByHTTPStatusCode). */
function statusMatcher(values: readonly string[]): FlowPredicate {
  const exact: number[] = [];
  const ranges: [number, number][] = [];
  for (const v of values) {
    if (/^\d{3}$/.test(v)) exact.push(Number(v));
    else if (/^\d{1,2}\+$/.test(v)) {
      const digits = v.slice(0, -1);
      const scale = 10 ** (3 - digits.length);
      ranges.push([Number(digits) * scale, Number(digits) * scale + scale - 1]);
    } else throw new FlowFilterError(`http_status_code: ${JSON.stringify(v)} must be a code (200) or a prefix (4+, 40+)`);
  }
  return (flow) => {
    const code = flow.l7?.http?.code;
    if (code === undefined || code === 0) return false;
    return exact.includes(code) || ranges.some(([lo, hi]) => code >= lo && code <= hi);
  };
}

const L4_PROTOCOLS: Record<string, readonly string[]> = {
  tcp: ['TCP'], udp: ['UDP'], sctp: ['SCTP'], icmp: ['ICMPv4', 'ICMPv6'], icmpv4: ['ICMPv4'], icmpv6: ['ICMPv6'],
};
const L7_PROTOCOLS: Record<string, 'http' | 'dns'> = { http: 'http', dns: 'dns' };

function protocolMatcher(values: readonly string[]): FlowPredicate {
  const l4: string[] = [];
  const l7: ('http' | 'dns')[] = [];
  for (const v of values) {
    const p = v.toLowerCase();
    const a = L4_PROTOCOLS[p];
    const b = L7_PROTOCOLS[p];
    if (a !== undefined) l4.push(...a);
    else if (b !== undefined) l7.push(b);
    else throw new FlowFilterError(`protocol: unknown protocol ${JSON.stringify(v)} (tcp, udp, sctp, icmp, icmpv4, icmpv6, http, dns)`);
  }
  return (flow) => {
    if (flow.l4 !== undefined) for (const k of l4) if (k in flow.l4) return true;
    const rec = flow.l7;
    if (rec !== undefined) for (const k of l7) if (rec[k] !== undefined) return true;
    return false;
  };
}

function regex(field: string, source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new FlowFilterError(`${field}: ${JSON.stringify(source)} is not a regular expression: ${(err as Error).message}`);
  }
}

function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
  return new RegExp(`^${body}$`);
}

function urlPath(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url, 'http://x').pathname;
  } catch {
    return undefined;
  }
}

/**
 * `hubble observe --type` values: `trace`, `drop`, `l7`, `policy-verdict`,
 * `capture`, `trace-sock`, optionally `:subtype` for traces (`trace:to-endpoint`).
 */
export function parseEventType(text: string): EventTypeFilter {
  const [name = '', sub] = text.split(':', 2);
  const types: Record<string, number> = {
    drop: EVENT_TYPE.DROP, debug: EVENT_TYPE.DEBUG, capture: EVENT_TYPE.CAPTURE, trace: EVENT_TYPE.TRACE,
    l7: EVENT_TYPE.L7, agent: EVENT_TYPE.AGENT, 'trace-sock': EVENT_TYPE.TRACE_SOCK, 'policy-verdict': EVENT_TYPE.POLICY_VERDICT,
  };
  const type = /^\d+$/.test(name) ? Number(name) : types[name.toLowerCase()];
  if (type === undefined) throw new FlowFilterError(`event_type: unknown type ${JSON.stringify(name)} (${Object.keys(types).join(', ')})`);
  if (sub === undefined) return { type };
  const subType = /^\d+$/.test(sub) ? Number(sub) : type === EVENT_TYPE.TRACE ? TRACE_POINTS.indexOf(sub) : -1;
  if (subType < 0) throw new FlowFilterError(`event_type: unknown sub-type ${JSON.stringify(sub)} of ${name}`);
  return { type, match_sub_type: true, sub_type: subType };
}
