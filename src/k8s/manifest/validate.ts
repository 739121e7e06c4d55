/**
 * One parsed object → its typed KubeObject, or field faults. Dispatches on
 * `kind`, then runs that kind's schema (structure and semantic checks in one
 * pass). Used for every document and List item, and by API servers on request bodies.
 */
import type * as z from 'zod';
import type { KubeObject } from '../objects.ts';
import { closest, pathSegmentNameError } from './checks-names.ts';
import { issuesToFaults, manifestErrorMap, type FieldFault } from './fault.ts';
import { ciliumClusterwideNetworkPolicySchema, ciliumNetworkPolicySchema } from './schema-cilium.ts';
import { namespaceSchema, podSchema, serviceSchema } from './schema-core.ts';
import { networkPolicySchema } from './schema-k8s-networkpolicy.ts';
import { externalHostSchema } from './schema-lab.ts';
import { isRecord, isSet } from './schema-kit.ts';

interface KindSpec {
  apiVersion: string;
  schema: z.ZodType<KubeObject>;
}

/** Every kind Palisade reads, with the apiVersion that serves it. */
export const KINDS: Readonly<Record<string, KindSpec>> = {
  Namespace: { apiVersion: 'v1', schema: namespaceSchema },
  Pod: { apiVersion: 'v1', schema: podSchema },
  Service: { apiVersion: 'v1', schema: serviceSchema },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', schema: networkPolicySchema },
  CiliumNetworkPolicy: { apiVersion: 'cilium.io/v2', schema: ciliumNetworkPolicySchema },
  CiliumClusterwideNetworkPolicy: { apiVersion: 'cilium.io/v2', schema: ciliumClusterwideNetworkPolicySchema },
  ExternalHost: { apiVersion: 'lab.palisade.dev/v1', schema: externalHostSchema },
};

export function supportedKinds(): string {
  const kinds = Object.entries(KINDS).map(([kind, spec]) => `${spec.apiVersion} ${kind}`);
  return `${kinds.join(', ')}, and v1 List or <Kind>List of these`;
}

/** The element kind of a List kind: '' for `List`, 'NetworkPolicy' for `NetworkPolicyList`, undefined otherwise. */
export function listElementKind(kind: string): string | undefined {
  if (kind === 'List') return '';
  if (kind.endsWith('List') && Object.hasOwn(KINDS, kind.slice(0, -4))) return kind.slice(0, -4);
  return undefined;
}

function unknownKindFault(kind: string, apiVersion: unknown): FieldFault {
  const known = [...Object.keys(KINDS), 'List', ...Object.keys(KINDS).map((k) => `${k}List`)];
  const hint = closest(kind, known);
  const version = typeof apiVersion === 'string' ? ` (apiVersion ${apiVersion})` : '';
  return {
    path: 'kind',
    message: `unknown kind ${JSON.stringify(kind)}${version}${hint !== undefined ? `; did you mean ${hint}?` : ''}; Palisade reads ${supportedKinds()}`,
  };
}

export function validateObject(raw: unknown): { object?: KubeObject; faults: FieldFault[] } {
  if (!isRecord(raw)) {
    const got = raw === null ? 'null' : Array.isArray(raw) ? 'a list' : typeof raw;
    return { faults: [{ path: '', message: `an object must be a mapping with apiVersion, kind and metadata (got ${got})` }] };
  }
  const kind = raw.kind;
  if (typeof kind !== 'string') {
    // null is the field left out, as everywhere in a manifest (schema-kit.ts).
    const faults: FieldFault[] = [
      { path: 'kind', message: isSet(kind) ? 'kind must be a string' : `required field is missing: every object needs a kind; Palisade reads ${supportedKinds()}` },
    ];
    if (!isSet(raw.apiVersion)) faults.unshift({ path: 'apiVersion', message: 'required field is missing: every object needs an apiVersion' });
    return { faults };
  }
  const spec = KINDS[kind];
  if (spec === undefined) {
    if (listElementKind(kind) !== undefined) {
      return { faults: [{ path: 'kind', message: `a ${kind} is a whole manifest document, not an object inside one` }] };
    }
    return { faults: [unknownKindFault(kind, raw.apiVersion)] };
  }
  const result = spec.schema.safeParse(raw, { error: manifestErrorMap });
  if (result.success) return { object: result.data, faults: [] };
  return { faults: issuesToFaults(result.error.issues) };
}

/** Which object a manifest names: all `delete -f` needs of it. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

function nonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v !== '';
}

/**
 * One parsed object → which object it names, checking apiVersion, kind,
 * metadata.name and metadata.namespace only (as kubectl delete -f does): the
 * rest of a manifest being deleted is not read. Whether the kind is served is
 * the caller's question.
 */
export function identifyObject(raw: unknown): { ref?: ObjectRef; faults: FieldFault[] } {
  if (!isRecord(raw)) return { faults: validateObject(raw).faults };
  const faults: FieldFault[] = [];
  const { apiVersion, kind } = raw;
  if (!nonEmptyString(apiVersion)) faults.push({ path: 'apiVersion', message: isSet(apiVersion) ? 'apiVersion must be a string such as v1 or cilium.io/v2' : 'required field is missing: every object needs an apiVersion' });
  if (!nonEmptyString(kind)) faults.push({ path: 'kind', message: isSet(kind) ? 'kind must be a string' : 'required field is missing: every object needs a kind' });
  const metadata = isRecord(raw.metadata) ? raw.metadata : undefined;
  const name = metadata?.name;
  const namespace = metadata?.namespace;
  if (metadata === undefined) {
    faults.push({ path: 'metadata', message: 'required field is missing: every object needs metadata with a name' });
  } else if (!nonEmptyString(name)) {
    faults.push({ path: 'metadata.name', message: isSet(name) && typeof name !== 'string' ? 'name must be a string' : 'resource name may not be empty' });
  } else {
    const error = pathSegmentNameError(name);
    if (error !== undefined) faults.push({ path: 'metadata.name', message: error });
  }
  if (isSet(namespace) && typeof namespace !== 'string') faults.push({ path: 'metadata.namespace', message: 'namespace must be a string' });
  if (faults.length > 0 || !nonEmptyString(apiVersion) || !nonEmptyString(kind) || !nonEmptyString(name)) return { faults };
  return { ref: { apiVersion, kind, name, ...(nonEmptyString(namespace) ? { namespace } : {}) }, faults };
}
