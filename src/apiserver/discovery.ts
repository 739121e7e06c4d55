/**
 * Discovery documents, all derived from the resource table and built once.
 *
 *   GET /version                    version.Info
 *   GET /api                        APIVersions              (legacy)
 *   GET /apis                       APIGroupList             (legacy)
 *   GET /api, /apis with Accept ...;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList
 *                                   APIGroupDiscoveryList    (aggregated, one request for
 *                                                             everything: what kubectl ≥1.30 asks first)
 *   GET /api/v1, /apis/<g>/<v>      APIResourceList          (client-node's KubernetesObjectApi uses these)
 *   GET /apis/<g>                   APIGroup
 *
 * The aggregated form is only recognised by its response Content-Type; a
 * client that receives plain application/json falls back to the legacy
 * per-group requests, so both forms must agree.
 */

import {
  RESOURCE_VERBS, SUBRESOURCE_VERBS, groupVersions, type GroupVersion, type ResourceInfo,
} from './resources.ts';

export const AGGREGATED_DISCOVERY_V2 = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
export const AGGREGATED_DISCOVERY_V2BETA1 = 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';

/** The Kubernetes version the server claims; kubectl 1.32 warns beyond ±1 minor. */
export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-palisade',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.23',
  compiler: 'gc',
  platform: 'linux/amd64',
};

export interface DiscoveryDocuments {
  apiVersions: string;
  apiGroupList: string;
  /** Aggregated, by apiVersion of the document ("v2" / "v2beta1") then "/api" | "/apis". */
  aggregated: Map<string, string>;
  /** APIResourceList by "group/version" ("" group: "/v1"). */
  resourceLists: Map<string, string>;
  /** APIGroup by group name. */
  groups: Map<string, string>;
}

function apiResource(r: ResourceInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: r.resource,
    singularName: r.singular,
    namespaced: r.namespaced,
    kind: r.kind,
    verbs: RESOURCE_VERBS,
  };
  if (r.group !== '') { out.group = r.group; out.version = r.version; }
  if (r.shortNames.length > 0) out.shortNames = r.shortNames;
  if (r.categories.length > 0) out.categories = r.categories;
  return out;
}

function resourceList(gv: GroupVersion): Record<string, unknown> {
  const resources: Record<string, unknown>[] = [];
  for (const r of gv.resources) {
    resources.push(apiResource(r));
    for (const sub of r.subresources) {
      resources.push({ name: `${r.resource}/${sub}`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: SUBRESOURCE_VERBS });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: gv.group === '' ? gv.version : `${gv.group}/${gv.version}`,
    resources,
  };
}

function apiGroup(group: string, versions: string[]): Record<string, unknown> {
  const vs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0] };
}

function aggregatedGroup(group: string, gvs: GroupVersion[]): Record<string, unknown> {
  return {
    metadata: { name: group, creationTimestamp: null },
    versions: gvs.map((gv) => ({
      version: gv.version,
      freshness: 'Current',
      resources: gv.resources.map((r) => {
        const responseKind = { group: r.group, version: r.version, kind: r.kind };
        const out: Record<string, unknown> = {
          resource: r.resource,
          responseKind,
          scope: r.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: r.singular,
          verbs: RESOURCE_VERBS,
        };
        if (r.shortNames.length > 0) out.shortNames = r.shortNames;
        if (r.categories.length > 0) out.categories = r.categories;
        if (r.subresources.length > 0) {
          out.subresources = r.subresources.map((s) => ({ subresource: s, responseKind, verbs: SUBRESOURCE_VERBS }));
        }
        return out;
      }),
    })),
  };
}

export function buildDiscovery(resources: readonly ResourceInfo[], serverAddress: string): DiscoveryDocuments {
  const gvs = groupVersions(resources);
  const byGroup = new Map<string, GroupVersion[]>();
  for (const gv of gvs) {
    const list = byGroup.get(gv.group) ?? [];
    list.push(gv);
    byGroup.set(gv.group, list);
  }
  const named = [...byGroup.entries()].filter(([g]) => g !== '');

  const docs: DiscoveryDocuments = {
    apiVersions: JSON.stringify({
      kind: 'APIVersions',
      versions: (byGroup.get('') ?? []).map((gv) => gv.version),
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
    }),
    apiGroupList: JSON.stringify({
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: named.map(([g, list]) => apiGroup(g, list.map((gv) => gv.version))),
    }),
    aggregated: new Map(),
    resourceLists: new Map(),
    groups: new Map(),
  };
  for (const docVersion of ['v2', 'v2beta1']) {
    const list = (items: Record<string, unknown>[]) => JSON.stringify({
      kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${docVersion}`, metadata: {}, items,
    });
    docs.aggregated.set(`${docVersion}/api`, list([aggregatedGroup('', byGroup.get('') ?? [])]));
    docs.aggregated.set(`${docVersion}/apis`, list(named.map(([g, l]) => aggregatedGroup(g, l))));
  }
  for (const gv of gvs) docs.resourceLists.set(`${gv.group}/${gv.version}`, JSON.stringify(resourceList(gv)));
  for (const [g, list] of named) {
    docs.groups.set(g, JSON.stringify({ kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(g, list.map((gv) => gv.version)) }));
  }
  return docs;
}
