/**
 * Server-side printing: `kubectl get` asks for
 *   Accept: application/json;as=Table;v=v1;g=meta.k8s.io, …
 * and prints the meta.k8s.io/v1 Table it gets back, e.g.
 *
 *   {"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"7"},
 *    "columnDefinitions":[{"name":"Name","type":"string","format":"name",...}],
 *    "rows":[{"cells":["web",...],"object":{"kind":"PartialObjectMetadata",...}}]}
 *
 * kubectl adds the NAMESPACE column itself for -A from each row's object, so
 * rows always carry at least the object's metadata (includeObject defaults to
 * PartialObjectMetadata, as in kube-apiserver). Columns follow kubectl's
 * printers where they exist; pods show IP and NODE by default here (kube
 * hides them behind -o wide) because that is what a lab user looks for.
 */

import type { KubeObject } from './store.ts';
import type { ResourceInfo } from './resources.ts';
import { humanDuration } from '../k8s/index.ts';

interface Column { name: string; type: string; format?: string; description: string; priority: number }
type Cell = string | number;
interface TableDef { columns: Column[]; cells: (obj: KubeObject, now: number) => Cell[] }

export type IncludeObject = 'None' | 'Object' | 'PartialObjectMetadata';

const nameColumn: Column = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 };
const ageColumn: Column = { name: 'Age', type: 'string', description: 'Time since creation.', priority: 0 };

function col(name: string, description: string, priority = 0, type = 'string'): Column {
  return { name, type, description, priority };
}

/** Printers read arbitrary, unvalidated fields; `any` keeps that reading terse. */
type Loose = Record<string, any>;


function age(obj: KubeObject, now: number): string {
  const t = Date.parse(obj.metadata.creationTimestamp);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

const none = (v: unknown): string => (v === undefined || v === null || v === '' ? '<none>' : String(v));

const podTable: TableDef = {
  columns: [nameColumn, col('Ready', 'The number of ready containers.'), col('Status', 'The phase of the pod, or Terminating.'),
    col('Restarts', 'Container restarts.', 0, 'integer'), ageColumn, col('IP', 'The pod IP.'), col('Node', 'The node the pod runs on.')],
  cells: (o, now) => {
    const x = o as Loose;
    const statuses: Loose[] = Array.isArray(x.status?.containerStatuses) ? x.status.containerStatuses : [];
    const total = Array.isArray(x.spec?.containers) ? x.spec.containers.length : statuses.length;
    const ready = statuses.filter((c) => c.ready === true).length;
    const restarts = statuses.reduce((n, c) => n + (typeof c.restartCount === 'number' ? c.restartCount : 0), 0);
    const status = x.metadata.deletionTimestamp ? 'Terminating' : (x.status?.reason ?? x.status?.phase ?? 'Unknown');
    return [o.metadata.name, `${ready}/${total}`, String(status), restarts, age(o, now), none(x.status?.podIP), none(x.spec?.nodeName)];
  },
};

const namespaceTable: TableDef = {
  columns: [nameColumn, col('Status', 'The phase of the namespace.'), ageColumn],
  cells: (o, now) => [o.metadata.name, String((o as Loose).status?.phase ?? 'Active'), age(o, now)],
};

const nodeTable: TableDef = {
  columns: [nameColumn, col('Status', 'The Ready condition of the node.'), ageColumn, col('Internal-IP', 'The node\'s internal address.')],
  cells: (o, now) => {
    const x = o as Loose;
    const conds: Loose[] = Array.isArray(x.status?.conditions) ? x.status.conditions : [];
    const readyCond = conds.find((c) => c.type === 'Ready');
    const status = readyCond === undefined ? 'Unknown' : readyCond.status === 'True' ? 'Ready' : 'NotReady';
    const addrs: Loose[] = Array.isArray(x.status?.addresses) ? x.status.addresses : [];
    return [o.metadata.name, status, age(o, now), none(addrs.find((a) => a.type === 'InternalIP')?.address)];
  },
};

const serviceTable: TableDef = {
  columns: [nameColumn, col('Type', 'The service type.'), col('Cluster-IP', 'The cluster IP.'), col('Port(s)', 'The service ports.'), ageColumn],
  cells: (o, now) => {
    const x = o as Loose;
    const ports: Loose[] = Array.isArray(x.spec?.ports) ? x.spec.ports : [];
    const p = ports.map((q) => `${q.port}${q.nodePort ? ':' + q.nodePort : ''}/${q.protocol ?? 'TCP'}`).join(',');
    return [o.metadata.name, String(x.spec?.type ?? 'ClusterIP'), none(x.spec?.clusterIP), none(p), age(o, now)];
  },
};

const endpointSliceTable: TableDef = {
  columns: [nameColumn, col('AddressType', 'The address family.'), col('Ports', 'The ports.'), col('Endpoints', 'The addresses.'), ageColumn],
  cells: (o, now) => {
    const x = o as Loose;
    const ports: Loose[] = Array.isArray(x.ports) ? x.ports : [];
    const eps: Loose[] = Array.isArray(x.endpoints) ? x.endpoints : [];
    const addrs = eps.flatMap((e) => (Array.isArray(e.addresses) ? e.addresses : []));
    const shown = addrs.slice(0, 3).join(',') + (addrs.length > 3 ? ` + ${addrs.length - 3} more...` : '');
    return [o.metadata.name, String(x.addressType ?? ''), none(ports.map((q) => q.port).join(',')), none(shown), age(o, now)];
  },
};

const networkPolicyTable: TableDef = {
  columns: [nameColumn, col('Pod-Selector', 'The pods the policy selects.'), ageColumn],
  cells: (o, now) => {
    const ml = (o as Loose).spec?.podSelector?.matchLabels as Record<string, string> | undefined;
    const sel = ml ? Object.entries(ml).map(([k, v]) => `${k}=${v}`).join(',') : '';
    return [o.metadata.name, none(sel), age(o, now)];
  },
};

const genericTable: TableDef = {
  columns: [nameColumn, ageColumn],
  cells: (o, now) => [o.metadata.name, age(o, now)],
};

const TABLES: Record<string, TableDef> = {
  '/v1/pods': podTable,
  '/v1/namespaces': namespaceTable,
  '/v1/nodes': nodeTable,
  '/v1/services': serviceTable,
  'discovery.k8s.io/v1/endpointslices': endpointSliceTable,
  'networking.k8s.io/v1/networkpolicies': networkPolicyTable,
};

function rowObject(obj: KubeObject, include: IncludeObject): unknown {
  if (include === 'Object') return obj;
  if (include === 'None') return undefined;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toTable(r: ResourceInfo, items: readonly KubeObject[], resourceVersion: string | undefined,
  include: IncludeObject, withColumns = true): Record<string, unknown> {
  const def = TABLES[r.key] ?? genericTable;
  const now = Date.now();
  const table: Record<string, unknown> = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: resourceVersion !== undefined ? { resourceVersion } : {},
    columnDefinitions: withColumns ? def.columns : [],
    rows: items.map((o) => {
      const row: Record<string, unknown> = { cells: def.cells(o, now) };
      const ro = rowObject(o, include);
      if (ro !== undefined) row.object = ro;
      return row;
    }),
  };
  return table;
}
