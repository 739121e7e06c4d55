/**
 * The kinds the kubectl-like commands know, and the words a person may use for
 * them: plural, singular, Kind, short names, `plural.group` — as kubectl
 * resolves them (k8s.io/cli-runtime RESTMapper), without asking discovery, so
 * a typo gets an answer that lists what exists.
 *
 * `typeName` is what kubectl prints before a name: the singular resource,
 * qualified by its group outside the core group (`pod/frontend`,
 * `ciliumnetworkpolicy.cilium.io/allow-fe`).
 */

export interface KindInfo {
  kind: string;
  apiVersion: string;
  group: string;
  /** Plural resource, as in URLs. */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames: readonly string[];
}

function row(kind: string, apiVersion: string, resource: string, namespaced: boolean, shortNames: string[]): KindInfo {
  const slash = apiVersion.indexOf('/');
  return {
    kind, apiVersion, resource, namespaced, shortNames,
    group: slash < 0 ? '' : apiVersion.slice(0, slash),
    singular: kind.toLowerCase(),
  };
}

export const KUBE_KINDS: readonly KindInfo[] = [
  row('Namespace', 'v1', 'namespaces', false, ['ns']),
  row('Pod', 'v1', 'pods', true, ['po']),
  row('Service', 'v1', 'services', true, ['svc']),
  row('Node', 'v1', 'nodes', false, ['no']),
  row('EndpointSlice', 'discovery.k8s.io/v1', 'endpointslices', true, []),
  row('NetworkPolicy', 'networking.k8s.io/v1', 'networkpolicies', true, ['netpol', 'knp']),
  row('CiliumNetworkPolicy', 'cilium.io/v2', 'ciliumnetworkpolicies', true, ['cnp', 'ciliumnp']),
  row('CiliumClusterwideNetworkPolicy', 'cilium.io/v2', 'ciliumclusterwidenetworkpolicies', false, ['ccnp']),
  row('ExternalHost', 'lab.palisade.dev/v1', 'externalhosts', false, ['eh']),
];

/** The three policy kinds `get policies` shows in one table, in the order it lists them. */
export const POLICY_KINDS: readonly KindInfo[] = ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']
  .map((k) => KUBE_KINDS.find((i) => i.kind === k)!);

export const POLICIES_WORDS: readonly string[] = ['policies', 'policy', 'pol'];

export function typeName(k: KindInfo): string {
  return k.group === '' ? k.singular : `${k.singular}.${k.group}`;
}

/** `pod/frontend`, `ciliumnetworkpolicy.cilium.io/allow-fe`. */
export function objectRef(k: KindInfo, name: string): string {
  return `${typeName(k)}/${name}`;
}

export function kindByKind(kind: string, apiVersion?: string): KindInfo | undefined {
  return KUBE_KINDS.find((k) => k.kind === kind && (apiVersion === undefined || k.apiVersion === apiVersion));
}

/** A word a person typed → its kind; case-insensitive, as kubectl. */
export function resolveKind(word: string): KindInfo | undefined {
  const w = word.toLowerCase();
  return KUBE_KINDS.find((k) =>
    w === k.resource || w === k.singular || w === k.kind.toLowerCase() || k.shortNames.includes(w) ||
    (k.group !== '' && (w === `${k.resource}.${k.group}` || w === `${k.singular}.${k.group}`)));
}

/** For "unknown kind" messages: every word accepted, one per kind. */
export function knownKindWords(): string {
  return KUBE_KINDS.map((k) => (k.shortNames.length > 0 ? `${k.resource} (${k.shortNames.join(', ')})` : k.resource)).join(', ');
}

export const POD: KindInfo = kindByKind('Pod')!;
