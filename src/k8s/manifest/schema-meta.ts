/**
 * metadata, label maps and label selectors, shared by every kind.
 *
 * Selectors come in two flavours:
 * - Kubernetes (`podSelector`, `namespaceSelector`, Service `selector`): keys
 *   are qualified names `[prefix/]name`.
 * - Cilium (`endpointSelector`, `nodeSelector`, `fromEndpoints`, `toEndpoints`):
 *   a key may carry a label source before a colon, as Cilium labels do
 *   (`k8s:io.kubernetes.pod.namespace`, `any:app`, `reserved:host`, `cidr:10.0.0.0/8`).
 */
import * as z from 'zod';
import type { LabelSelector, ObjectMeta } from '../objects.ts';
import { parseCIDR } from './checks-cidr.ts';
import { dns1123LabelError, labelValueError, qualifiedNameError, quote } from './checks-names.ts';
import { checkedString, strictObject, withChecks } from './schema-kit.ts';

export type LabelKeyFlavour = 'k8s' | 'cilium';

const LABEL_SOURCE = /^[a-z][a-z0-9-]*$/;

/** A Cilium selector key: an optional `<source>:` then a label key. */
export function ciliumLabelKeyError(key: string): string | undefined {
  const colon = key.indexOf(':');
  if (colon < 0) return qualifiedNameError(key);
  const source = key.slice(0, colon);
  const rest = key.slice(colon + 1);
  if (!LABEL_SOURCE.test(source)) {
    return `label source ${quote(source)} is invalid: a Cilium label key is [source:]key with a lowercase source such as k8s, any, reserved or cidr`;
  }
  if (source === 'cidr') {
    // Cilium writes IPv6 CIDR labels with '-' for ':' (cidr:fd00--/64); accept both spellings.
    const parsed = parseCIDR(rest, true);
    const dashed = typeof parsed === 'string' ? parseCIDR(rest.replaceAll('-', ':'), true) : parsed;
    return typeof dashed === 'string' ? `cidr label: ${dashed}` : undefined;
  }
  if (rest.length === 0) return `label key ${quote(key)} has nothing after the source '${source}:'`;
  return qualifiedNameError(rest);
}

function labelKeyCheck(flavour: LabelKeyFlavour): (key: string) => string | undefined {
  return flavour === 'cilium' ? ciliumLabelKeyError : qualifiedNameError;
}

const labelValue = checkedString(labelValueError);

/** A label map: keys checked as label keys (reported on the key's own path), values as label values. */
export function labelMap(flavour: LabelKeyFlavour) {
  const keyError = labelKeyCheck(flavour);
  return withChecks(z.record(z.string(), labelValue), (map, report) => {
    for (const key of Object.keys(map)) {
      const error = keyError(key);
      if (error !== undefined) report([key], error);
    }
  });
}

// "The total size of all annotations (keys and values) must be 256 kB or less" (apimachinery ValidateAnnotations).
const ANNOTATIONS_MAX_BYTES = 256 * 1024;

const annotationMap = withChecks(z.record(z.string(), z.string()), (map, report) => {
  let size = 0;
  for (const [key, value] of Object.entries(map)) {
    const error = qualifiedNameError(key);
    if (error !== undefined) report([key], error.replace('label key', 'annotation key'));
    size += key.length + (typeof value === 'string' ? value.length : 0);
  }
  if (size > ANNOTATIONS_MAX_BYTES) report([], `annotations total ${size} bytes; the limit is ${ANNOTATIONS_MAX_BYTES}`);
});

/** ObjectMeta; `nameError` is the name syntax of the kind (a DNS-1123 subdomain for most). */
export function objectMeta(nameError: (s: string) => string | undefined): z.ZodType<ObjectMeta> {
  return strictObject(
    {
      name: checkedString(nameError),
      namespace: checkedString(dns1123LabelError).optional(),
      labels: labelMap('k8s').optional(),
      annotations: annotationMap.optional(),
      uid: z.string().optional(),
      resourceVersion: z.string().optional(),
      generation: z.number().int().min(0).optional(),
      creationTimestamp: z.string().optional(),
      deletionTimestamp: z.string().optional(),
      finalizers: z.array(z.string()).optional(),
      ownerReferences: z.array(z.unknown()).optional(),
      managedFields: z.array(z.unknown()).optional(),
      generateName: z.string().optional(),
    },
    { missing: 'required field is missing: every object needs metadata with a name' },
  );
}

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

/**
 * metav1.LabelSelector. Upstream (ValidateLabelSelectorRequirement): "In/NotIn:
 * values must be non-empty"; "Exists/DoesNotExist: values may not be specified".
 */
export function labelSelector(flavour: LabelKeyFlavour, missing?: string): z.ZodType<LabelSelector> {
  const requirement = withChecks(
    strictObject({
      key: checkedString(labelKeyCheck(flavour)),
      operator: z.enum(OPERATORS),
      values: z.array(labelValue).optional(),
    }),
    (r, report) => {
      const op = r.operator;
      if (op === 'In' || op === 'NotIn') {
        if (!Array.isArray(r.values) || r.values.length === 0) {
          report(['values'], `operator ${op} needs a non-empty values list`);
        }
      } else if (op === 'Exists' || op === 'DoesNotExist') {
        if (Array.isArray(r.values) && r.values.length > 0) {
          report(['values'], `operator ${op} takes no values: remove values, or use In/NotIn`);
        }
      }
    },
  );
  return strictObject(
    {
      matchLabels: labelMap(flavour).optional(),
      matchExpressions: z.array(requirement).optional(),
    },
    missing === undefined ? {} : { missing },
  );
}
