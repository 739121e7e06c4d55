/**
 * The resource table: every kind the lab API server serves, with the facts
 * discovery, routing and the store need about it. Adding a kind is one row.
 *
 * Shapes follow metav1.APIResource: `resource` is the lower-case plural used in
 * URLs, `kind` the CamelCase name written in objects.
 */

export interface ResourceInfo {
  /** "" for the core ("legacy") group served under /api. */
  group: string;
  version: string;
  /** Plural, as in the URL: "pods". */
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: readonly string[];
  /** Subresources served besides the main resource (only "status" here). */
  subresources: readonly 'status'[];
  /** "v1" or "cilium.io/v2": what objects carry in `apiVersion`. */
  apiVersion: string;
  /** Stable map key: "group/version/resource". */
  key: string;
  /** Kind of the list: "PodList". */
  listKind: string;
  categories: readonly string[];
}

/** The verbs every resource supports; kubectl and client-node read them from discovery. */
export const RESOURCE_VERBS = [
  'create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch',
] as const;
export const SUBRESOURCE_VERBS = ['get', 'patch', 'update'] as const;

function resourceRow(
  group: string, version: string, resource: string, singular: string, kind: string,
  namespaced: boolean, shortNames: string[], subresources: 'status'[], categories: string[] = [],
): ResourceInfo {
  return {
    group, version, resource, singular, kind, namespaced, shortNames, subresources, categories,
    apiVersion: group === '' ? version : `${group}/${version}`,
    key: `${group}/${version}/${resource}`,
    listKind: `${kind}List`,
  };
}

/**
 * Status subresources: the Kubernetes rule is that once a resource has a
 * status subresource, writes to the main resource keep the stored status and
 * writes to /status change nothing but status. Cilium's CNP/CCNP CRDs declare
 * `subresources: {status: {}}`, so they get one here too.
 */
export const RESOURCES: readonly ResourceInfo[] = [
  resourceRow('', 'v1', 'namespaces', 'namespace', 'Namespace', false, ['ns'], ['status']),
  resourceRow('', 'v1', 'pods', 'pod', 'Pod', true, ['po'], ['status'], ['all']),
  resourceRow('', 'v1', 'services', 'service', 'Service', true, ['svc'], ['status'], ['all']),
  resourceRow('', 'v1', 'nodes', 'node', 'Node', false, ['no'], ['status']),
  resourceRow('discovery.k8s.io', 'v1', 'endpointslices', 'endpointslice', 'EndpointSlice', true, [], []),
  resourceRow('networking.k8s.io', 'v1', 'networkpolicies', 'networkpolicy', 'NetworkPolicy', true, ['netpol'], []),
  resourceRow('cilium.io', 'v2', 'ciliumnetworkpolicies', 'ciliumnetworkpolicy', 'CiliumNetworkPolicy',
    true, ['cnp', 'ciliumnp'], ['status'], ['cilium', 'ciliumpolicy']),
  resourceRow('cilium.io', 'v2', 'ciliumclusterwidenetworkpolicies', 'ciliumclusterwidenetworkpolicy',
    'CiliumClusterwideNetworkPolicy', false, ['ccnp'], ['status'], ['cilium', 'ciliumpolicy']),
  resourceRow('lab.palisade.dev', 'v1', 'externalhosts', 'externalhost', 'ExternalHost', false, ['eh'], []),
];

/** Namespaces that exist from the first start, as in every real cluster. */
export const INITIAL_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'] as const;

export interface GroupVersion { group: string; version: string; resources: ResourceInfo[] }

/** Groups in the order /apis lists them (core first, then by table order). */
export function groupVersions(resources: readonly ResourceInfo[]): GroupVersion[] {
  const out: GroupVersion[] = [];
  for (const r of resources) {
    let gv = out.find((g) => g.group === r.group && g.version === r.version);
    if (!gv) out.push(gv = { group: r.group, version: r.version, resources: [] });
    gv.resources.push(r);
  }
  return out;
}

/** Lookup by URL coordinates; built once. */
export class ResourceTable {
  readonly all: readonly ResourceInfo[];
  readonly #byKey = new Map<string, ResourceInfo>();
  readonly namespaces: ResourceInfo;

  constructor(resources: readonly ResourceInfo[] = RESOURCES) {
    this.all = resources;
    for (const r of resources) this.#byKey.set(r.key, r);
    const ns = resources.find((r) => r.group === '' && r.resource === 'namespaces');
    if (!ns) throw new Error('resource table must contain core/v1 namespaces');
    this.namespaces = ns;
  }

  lookup(group: string, version: string, resource: string): ResourceInfo | undefined {
    return this.#byKey.get(`${group}/${version}/${resource}`);
  }

  hasGroupVersion(group: string, version: string): boolean {
    return this.all.some((r) => r.group === group && r.version === version);
  }
}
