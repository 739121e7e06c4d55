/**
 * kubectl-style tables: a header row in capitals, columns left-aligned and
 * separated by three spaces (kubectl's tabwriter padding), `<none>` for an
 * empty cell. One column set per kind; `-o wide` adds columns at the end.
 *
 * Rows are built from the JSON the server sent, read defensively: a field a
 * server left out is shown as `<none>`, never as a crash.
 */
import type { ApiObject } from './kube-client.ts';

export const NONE = '<none>';

export interface Table {
  headers: string[];
  rows: string[][];
}

export function formatTable(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(t.headers), ...t.rows.map(line)].map((l) => `${l}\n`).join('');
}

import { humanDuration, EXTERNAL_HOST_DEFAULT_PORTS } from '../k8s/index.ts';

export { humanDuration };

export function age(obj: ApiObject, now: number): string {
  const created = Date.parse(obj.metadata?.creationTimestamp ?? '');
  return Number.isNaN(created) ? NONE : humanDuration(now - created);
}

// ------------------------------------------------------------------ reading JSON

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
const orNone = (s: string): string => (s === '' ? NONE : s);

/** "app=fe,tier=web", sorted by key; `<none>` when empty. */
export function formatLabels(labels: unknown): string {
  const entries = Object.entries(obj(labels)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return orNone(entries.map(([k, v]) => `${k}=${str(v)}`).join(','));
}

/** metav1.LabelSelector in kubectl's short form: "app=fe,tier in (a,b),!debug"; an empty selector selects all. */
export function formatSelector(selector: unknown): string {
  const s = obj(selector);
  const parts = Object.entries(obj(s.matchLabels)).map(([k, v]) => `${k}=${str(v)}`);
  for (const e of arr(s.matchExpressions).map(obj)) {
    const key = str(e.key);
    const values = arr(e.values).map(str).join(',');
    switch (e.operator) {
      case 'In': parts.push(`${key} in (${values})`); break;
      case 'NotIn': parts.push(`${key} notin (${values})`); break;
      case 'Exists': parts.push(key); break;
      case 'DoesNotExist': parts.push(`!${key}`); break;
      default: parts.push(`${key} ${str(e.operator)} (${values})`);
    }
  }
  return parts.length === 0 ? '(all)' : parts.join(',');
}

// ------------------------------------------------------------------ rows per kind

export interface RowContext {
  now: number;
  wide: boolean;
}

export interface KindColumns {
  headers: string[];
  wideHeaders: string[];
  row(o: ApiObject, ctx: RowContext): string[];
  wideRow(o: ApiObject, ctx: RowContext): string[];
}

const labelsColumn = { wideHeaders: ['LABELS'], wideRow: (o: ApiObject): string[] => [formatLabels(o.metadata?.labels)] };

/** READY as kubectl shows it: ready containers / containers. Without containerStatuses, a Running pod with an IP counts as ready. */
function podReady(o: ApiObject): string {
  const containers = arr(obj(o.spec).containers).length;
  const statuses = arr(obj(o.status).containerStatuses).map(obj);
  const status = obj(o.status);
  const ready = statuses.length > 0
    ? statuses.filter((s) => s.ready === true).length
    : status.phase === 'Running' && str(status.podIP) !== '' ? containers : 0;
  return `${ready}/${containers}`;
}

const pods: KindColumns = {
  headers: ['NAME', 'READY', 'STATUS', 'IP', 'NODE', 'AGE'],
  row: (o, ctx) => {
    const status = obj(o.status);
    return [str(o.metadata?.name), podReady(o), orNone(str(status.phase)), orNone(str(status.podIP)), orNone(str(obj(o.spec).nodeName)), age(o, ctx.now)];
  },
  ...labelsColumn,
};

/** "80/TCP,53/UDP"; with a different target: "80→8080/TCP" so the lab's port mapping is visible. */
function servicePorts(o: ApiObject): string {
  const ports = arr(obj(o.spec).ports).map(obj).map((p) => {
    const target = str(p.targetPort);
    const port = str(p.port);
    const shown = target !== '' && target !== port ? `${port}→${target}` : port;
    return `${shown}/${str(p.protocol) || 'TCP'}`;
  });
  return orNone(ports.join(','));
}

const services: KindColumns = {
  headers: ['NAME', 'CLUSTER-IP', 'PORTS', 'SELECTOR', 'AGE'],
  row: (o, ctx) => {
    const spec = obj(o.spec);
    const selector = Object.keys(obj(spec.selector)).length === 0 ? NONE : formatLabels(spec.selector);
    return [str(o.metadata?.name), orNone(str(spec.clusterIP)), servicePorts(o), selector, age(o, ctx.now)];
  },
  ...labelsColumn,
};

const nodes: KindColumns = {
  headers: ['NAME', 'INTERNAL-IP', 'POD-CIDR', 'AGE'],
  row: (o, ctx) => {
    const internal = arr(obj(o.status).addresses).map(obj).find((a) => a.type === 'InternalIP');
    return [str(o.metadata?.name), orNone(str(internal?.address)), orNone(str(obj(o.spec).podCIDR)), age(o, ctx.now)];
  },
  ...labelsColumn,
};

const namespaces: KindColumns = {
  headers: ['NAME', 'STATUS', 'AGE'],
  row: (o, ctx) => [str(o.metadata?.name), orNone(str(obj(o.status).phase)), age(o, ctx.now)],
  ...labelsColumn,
};

/**
 * ExternalHost (lab.palisade.dev/v1) is the lab's own kind: a host of the outside
 * world. Its fields are read loosely (names|name, ports as numbers or
 * {port, protocol}, ip|ips in spec or status) so the table keeps working
 * while the kind's shape settles.
 */
function externalHostCells(o: ApiObject): [string, string, string] {
  const spec = obj(o.spec);
  const status = obj(o.status);
  const names = arr(spec.names).map(str);
  if (names.length === 0 && str(spec.name) !== '') names.push(str(spec.name));
  // Left out, the ports are the kind's default: shown, as the host serves them.
  const ports = (spec.ports === undefined || spec.ports === null ? EXTERNAL_HOST_DEFAULT_PORTS : arr(spec.ports)).map((p) => {
    if (typeof p === 'number' || typeof p === 'string') return String(p);
    const po = obj(p);
    return po.protocol !== undefined ? `${str(po.port)}/${str(po.protocol)}` : str(po.port);
  });
  const ips = [spec.ip, status.ip].map(str).filter((s) => s !== '');
  for (const list of [spec.ips, status.ips, spec.addresses]) ips.push(...arr(list).map(str));
  return [orNone(names.join(',')), orNone(ports.join(',')), orNone([...new Set(ips)].join(','))];
}

const externalHosts: KindColumns = {
  headers: ['NAME', 'NAMES', 'PORTS', 'IP', 'AGE'],
  row: (o, ctx) => [str(o.metadata?.name), ...externalHostCells(o), age(o, ctx.now)],
  ...labelsColumn,
};

/** ENDPOINTS as kubectl: the first three addresses, then "+ N more...". */
const endpointSlices: KindColumns = {
  headers: ['NAME', 'ADDRESSTYPE', 'PORTS', 'ENDPOINTS', 'AGE'],
  row: (o, ctx) => {
    const ports = arr(o.ports).map(obj).map((p) => str(p.port)).filter((p) => p !== '');
    const addresses = arr(o.endpoints).map(obj).flatMap((e) => arr(e.addresses).map(str));
    const shown = addresses.length > 3 ? `${addresses.slice(0, 3).join(',')} + ${addresses.length - 3} more...` : addresses.join(',');
    return [str(o.metadata?.name), orNone(str(o.addressType)), orNone(ports.join(',')), orNone(shown), age(o, ctx.now)];
  },
  ...labelsColumn,
};

// ------------------------------------------------------------------ policies

/** The short name shown in the KIND column of `get policies` (the names DESIGN.md uses). */
export const POLICY_KIND_SHORT: Readonly<Record<string, string>> = {
  CiliumNetworkPolicy: 'CNP',
  CiliumClusterwideNetworkPolicy: 'CCNP',
  NetworkPolicy: 'KNP',
};

/**
 * One line per policy: rule counts per direction, then what it uses beyond L3/L4.
 * "ingress 2, egress 1, L7"; "egress 1, FQDN, L7"; "ingress-deny 1"; "ingress deny-all".
 * For a KNP, a direction in policyTypes with no rules is "deny-all" (the
 * NetworkPolicy rule: "If this field is empty then this NetworkPolicy … does not allow any traffic").
 */
export function policySummary(o: ApiObject): string {
  const parts: string[] = [];
  if (o.kind === 'NetworkPolicy') {
    const spec = obj(o.spec);
    const types = arr(spec.policyTypes).map(str);
    const ingress = arr(spec.ingress).length;
    const egress = arr(spec.egress).length;
    // policyTypes defaults to Ingress, plus Egress when there are egress rules.
    const hasIngress = types.length === 0 ? true : types.includes('Ingress');
    const hasEgress = types.length === 0 ? egress > 0 : types.includes('Egress');
    if (hasIngress) parts.push(ingress === 0 ? 'ingress deny-all' : `ingress ${ingress}`);
    if (hasEgress) parts.push(egress === 0 ? 'egress deny-all' : `egress ${egress}`);
    const cidr = [...arr(spec.ingress).flatMap((r) => arr(obj(r).from)), ...arr(spec.egress).flatMap((r) => arr(obj(r).to))]
      .some((p) => obj(p).ipBlock !== undefined);
    if (cidr) parts.push('CIDR');
    return parts.join(', ') || NONE;
  }
  const rules = [obj(o.spec), ...arr(o.specs).map(obj)].filter((r) => Object.keys(r).length > 0);
  const count = (field: string): number => rules.reduce((n, r) => n + arr(r[field]).length, 0);
  for (const [field, label] of [['ingress', 'ingress'], ['ingressDeny', 'ingress-deny'], ['egress', 'egress'], ['egressDeny', 'egress-deny']] as const) {
    const n = count(field);
    if (n > 0) parts.push(`${label} ${n}`);
  }
  const allRules = rules.flatMap((r) => [...arr(r.ingress), ...arr(r.ingressDeny), ...arr(r.egress), ...arr(r.egressDeny)].map(obj));
  const portRules = allRules.flatMap((r) => arr(r.toPorts).map(obj));
  if (allRules.some((r) => arr(r.toFQDNs).length > 0)) parts.push('FQDN');
  if (portRules.some((p) => arr(obj(p.rules).dns).length > 0)) parts.push('DNS');
  if (portRules.some((p) => arr(obj(p.rules).http).length > 0)) parts.push('L7');
  if (rules.some((r) => r.nodeSelector !== undefined)) parts.push('host');
  return parts.join(', ') || 'no rules';
}

function policySelector(o: ApiObject): string {
  if (o.kind === 'NetworkPolicy') return formatSelector(obj(o.spec).podSelector);
  const rules = [obj(o.spec), ...arr(o.specs).map(obj)].filter((r) => Object.keys(r).length > 0);
  const selectors = rules.map((r) => (r.nodeSelector !== undefined ? `node: ${formatSelector(r.nodeSelector)}` : formatSelector(r.endpointSelector)));
  return orNone([...new Set(selectors)].join('; '));
}

const policies: KindColumns = {
  headers: ['KIND', 'NAME', 'SUMMARY', 'AGE'],
  row: (o, ctx) => [POLICY_KIND_SHORT[o.kind ?? ''] ?? str(o.kind), str(o.metadata?.name), policySummary(o), age(o, ctx.now)],
  wideHeaders: ['SELECTOR', 'LABELS'],
  wideRow: (o) => [policySelector(o), formatLabels(o.metadata?.labels)],
};

/** Column sets by kind; `policies` stands for the three policy kinds together. */
export const COLUMNS: Readonly<Record<string, KindColumns>> = {
  Pod: pods,
  Service: services,
  Node: nodes,
  Namespace: namespaces,
  ExternalHost: externalHosts,
  EndpointSlice: endpointSlices,
  policies,
};

/** A table of `objects`, with NAMESPACE first when listing across namespaces. */
export function buildTable(columns: KindColumns, objects: ApiObject[], opts: RowContext & { withNamespace: boolean }): Table {
  const headers = [...(opts.withNamespace ? ['NAMESPACE'] : []), ...columns.headers, ...(opts.wide ? columns.wideHeaders : [])];
  const rows = objects.map((o) => [
    ...(opts.withNamespace ? [o.metadata?.namespace ?? '(cluster)'] : []),
    ...columns.row(o, opts),
    ...(opts.wide ? columns.wideRow(o, opts) : []),
  ]);
  return { headers, rows };
}
