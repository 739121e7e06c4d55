/**
 * networking.k8s.io/v1 NetworkPolicy, with the semantic rules of upstream
 * ValidateNetworkPolicySpec (pkg/apis/networking/validation):
 * - a peer sets podSelector and/or namespaceSelector, or ipBlock alone:
 *   "may not specify both ipBlock and another peer";
 * - ipBlock.except: "must be a strict subset of `cidr`";
 * - endPort: "may not be specified when `port` is non-numeric",
 *   "must be greater than or equal to `port`";
 * - policyTypes: Ingress or Egress, at most once each.
 */
import * as z from 'zod';
import type { NetworkPolicy } from '../objects.ts';
import { cidrContains, parseCIDR } from './checks-cidr.ts';
import { intOrPortNameField } from './checks-ports.ts';
import { k8sProtocol } from './schema-core.ts';
import { labelSelector, objectMeta } from './schema-meta.ts';
import { dns1123SubdomainError } from './checks-names.ts';
import { apiVersionField, checkedString, isRecord, isSet, list, STATUS_REFUSED, strictObject, withChecks } from './schema-kit.ts';

const k8sSelector = labelSelector('k8s');

function cidrError(s: string): string | undefined {
  const parsed = parseCIDR(s, false);
  return typeof parsed === 'string' ? parsed : undefined;
}

const ipBlock = withChecks(
  strictObject({
    cidr: checkedString(cidrError),
    except: z.array(checkedString(cidrError)).optional(),
  }),
  (block, report) => {
    const outer = typeof block.cidr === 'string' ? parseCIDR(block.cidr, false) : undefined;
    if (outer === undefined || typeof outer === 'string') return;
    list(block.except).forEach((e, i) => {
      if (typeof e !== 'string') return;
      const inner = parseCIDR(e, false);
      if (typeof inner === 'string') return;
      if (!cidrContains(outer, inner, true)) {
        report(['except', i], `${JSON.stringify(e)} must be strictly inside cidr ${JSON.stringify(block.cidr)} (same family, longer prefix)`);
      }
    });
  },
);

const peer = withChecks(
  strictObject({
    podSelector: k8sSelector.optional(),
    namespaceSelector: k8sSelector.optional(),
    ipBlock: ipBlock.optional(),
  }),
  (p, report) => {
    const selectors = isSet(p.podSelector) || isSet(p.namespaceSelector);
    if (!selectors && !isSet(p.ipBlock)) {
      report([], 'a peer needs podSelector, namespaceSelector or ipBlock');
    } else if (selectors && isSet(p.ipBlock)) {
      report(['ipBlock'], 'ipBlock cannot be combined with podSelector or namespaceSelector in one peer: make it a separate peer');
    }
  },
);

const port = withChecks(
  strictObject({
    protocol: k8sProtocol.optional(),
    port: intOrPortNameField.optional(),
    endPort: z.number().int().min(1).max(65535).optional(),
  }),
  (p, report) => {
    if (p.endPort === undefined) return;
    if (p.port === undefined) report(['endPort'], 'endPort needs a port: the range is port..endPort');
    else if (typeof p.port === 'string') report(['endPort'], 'endPort needs a numeric port: a range cannot start at a named port');
    else if (typeof p.port === 'number' && typeof p.endPort === 'number' && p.endPort < p.port) {
      report(['endPort'], `endPort (${p.endPort}) must be greater than or equal to port (${p.port})`);
    }
  },
);

const ingressRule = strictObject({ from: z.array(peer).optional(), ports: z.array(port).optional() });
const egressRule = strictObject({ to: z.array(peer).optional(), ports: z.array(port).optional() });

/**
 * Upstream defaulting (SetDefaults_NetworkPolicy) gives an empty policyTypes
 * [Ingress], plus Egress when `len(egress) != 0`: `policyTypes: []` and
 * `egress: []` mean what leaving them out means. They are dropped here, so a
 * policy means the same wherever it is compiled (translate-k8s.ts reads a
 * present `egress` as "Egress", and a present `policyTypes` as given).
 */
function withoutEmptyDefaulted(value: unknown): unknown {
  if (!isRecord(value)) return value;
  const isEmpty = (key: string): boolean => (key === 'policyTypes' || key === 'egress') && Array.isArray(value[key]) && list(value[key]).length === 0;
  if (!Object.keys(value).some(isEmpty)) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => !isEmpty(key)));
}

const spec = z.preprocess(withoutEmptyDefaulted, withChecks(
  strictObject(
    {
      podSelector: labelSelector('k8s', 'required field is missing: podSelector selects the pods the policy applies to ({} selects all pods in the namespace)'),
      policyTypes: z.array(z.enum(['Ingress', 'Egress'])).max(2).optional(),
      ingress: z.array(ingressRule).optional(),
      egress: z.array(egressRule).optional(),
    },
    { missing: 'required field is missing: a NetworkPolicy needs spec with a podSelector' },
  ),
  (s, report) => {
    const seen = new Set<unknown>();
    list(s.policyTypes).forEach((t, i) => {
      if (seen.has(t)) report(['policyTypes', i], `duplicate policy type ${JSON.stringify(t)}`);
      seen.add(t);
    });
  },
));

export const networkPolicySchema: z.ZodType<NetworkPolicy> = strictObject(
  {
    apiVersion: apiVersionField('networking.k8s.io/v1', 'NetworkPolicy'),
    kind: z.literal('NetworkPolicy'),
    metadata: objectMeta(dns1123SubdomainError),
    spec,
  },
  { refused: { status: STATUS_REFUSED } },
);
