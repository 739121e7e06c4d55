/**
 * cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy: the
 * policy shell (spec/specs), the rule (selectors, directions) and the
 * ingress/egress rule bodies.
 *
 * Upstream rules quoted from pkg/policy/api/rule_validation.go and the CNP parser:
 * - "rule must have one of EndpointSelector or NodeSelector",
 *   "rule cannot have both EndpointSelector and NodeSelector"; a namespaced
 *   CNP "cannot have NodeSelector".
 * - "host policies do not support L7 rules yet"
 * - ingress FromEndpoints/FromCIDR/FromCIDRSet/FromEntities and egress
 *   ToEndpoints/ToCIDR/ToCIDRSet/ToEntities/ToFQDNs: "Combining %s and %s is not
 *   supported yet" — one kind of L3 peer per rule. (Upstream checks allow rules
 *   only; so do we.)
 * - "The ICMPs block may only be present without ToPorts."
 * - "DNS rules are not allowed on ingress"
 * - an empty policy (neither spec nor specs) is refused.
 */
import * as z from 'zod';
import type { CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, CiliumRule, EgressDenyRule, EgressRule, IngressDenyRule, IngressRule } from '../objects.ts';
import { dns1123SubdomainError } from './checks-names.ts';
import { refuseNamespace } from './schema-core.ts';
import { fqdnSelector, portDenyRule, portRule } from './schema-cilium-l7.ts';
import { cidrOrIP, cidrRule, ciliumSelector, entity, icmpRule } from './schema-cilium-peers.ts';
import { objectMeta } from './schema-meta.ts';
import { apiVersionField, hasItems, isRecord, isSet, list, notSupported, STATUS_REFUSED, strictObject, withChecks, type Report } from './schema-kit.ts';

type CiliumPolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';

const INGRESS_PEERS = ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities'] as const;
const EGRESS_PEERS = ['toFQDNs', 'toEndpoints', 'toCIDR', 'toCIDRSet', 'toEntities'] as const;

const capitalise = (s: string): string => s[0]!.toUpperCase() + s.slice(1);

function reportCombinedPeers(rule: Record<string, unknown>, fields: readonly string[], direction: string, report: Report): void {
  const present = fields.filter((f) => hasItems(rule[f]));
  const anchor = present[0];
  for (const f of present.slice(1)) {
    report(
      [f],
      `${f} cannot be combined with ${anchor} in one ${direction} rule (Cilium: "Combining ${capitalise(anchor!)} and ${capitalise(f)} is not supported yet"): put them in separate rules`,
    );
  }
}

function reportICMPWithPorts(rule: Record<string, unknown>, report: Report): void {
  if (hasItems(rule.icmps) && hasItems(rule.toPorts)) {
    report(['icmps'], 'icmps and toPorts cannot be in the same rule: put the ICMP match in a separate rule');
  }
}

const INGRESS_REFUSED: Readonly<Record<string, string>> = {
  fromRequires: notSupported('fromRequires'),
  fromNodes: notSupported('fromNodes', 'select nodes with fromEntities (host, remote-node) instead'),
  fromGroups: notSupported('fromGroups', 'cloud provider groups are not read'),
  authentication: notSupported('authentication', 'use Palisade mTLS (namespace label io.cilium/mtls-enabled) instead'),
  auth: notSupported('auth'),
};

const EGRESS_REFUSED: Readonly<Record<string, string>> = {
  toRequires: notSupported('toRequires'),
  toServices: notSupported('toServices', 'select the backends with toEndpoints instead'),
  toNodes: notSupported('toNodes', 'select nodes with toEntities (host, remote-node) instead'),
  toGroups: notSupported('toGroups', 'cloud provider groups are not read'),
  authentication: notSupported('authentication', 'use Palisade mTLS (namespace label io.cilium/mtls-enabled) instead'),
  auth: notSupported('auth'),
};

const ingressPeers = {
  fromEndpoints: z.array(ciliumSelector).optional(),
  fromCIDR: z.array(cidrOrIP).optional(),
  fromCIDRSet: z.array(cidrRule).optional(),
  fromEntities: z.array(entity).optional(),
};

const egressPeers = {
  toEndpoints: z.array(ciliumSelector).optional(),
  toCIDR: z.array(cidrOrIP).optional(),
  toCIDRSet: z.array(cidrRule).optional(),
  toEntities: z.array(entity).optional(),
};

const ingressRule: z.ZodType<IngressRule> = withChecks(
  strictObject(
    { ...ingressPeers, toPorts: z.array(portRule).optional(), icmps: z.array(icmpRule).optional() },
    { refused: INGRESS_REFUSED },
  ),
  (rule, report) => {
    reportCombinedPeers(rule, INGRESS_PEERS, 'ingress', report);
    reportICMPWithPorts(rule, report);
    list(rule.toPorts).forEach((p, j) => {
      if (isRecord(p) && isRecord(p.rules) && isSet(p.rules.dns)) {
        report(['toPorts', j, 'rules', 'dns'], 'DNS rules are only allowed on egress: they filter the DNS queries a pod sends');
      }
    });
  },
);

const ingressDenyRule: z.ZodType<IngressDenyRule> = strictObject(
  { ...ingressPeers, toPorts: z.array(portDenyRule).optional(), icmps: z.array(icmpRule).optional() },
  { refused: INGRESS_REFUSED },
);

const egressRule: z.ZodType<EgressRule> = withChecks(
  strictObject(
    { ...egressPeers, toFQDNs: z.array(fqdnSelector).optional(), toPorts: z.array(portRule).optional(), icmps: z.array(icmpRule).optional() },
    { refused: EGRESS_REFUSED },
  ),
  (rule, report) => {
    reportCombinedPeers(rule, EGRESS_PEERS, 'egress', report);
    reportICMPWithPorts(rule, report);
  },
);

const egressDenyRule: z.ZodType<EgressDenyRule> = strictObject(
  { ...egressPeers, toPorts: z.array(portDenyRule).optional(), icmps: z.array(icmpRule).optional() },
  {
    refused: {
      ...EGRESS_REFUSED,
      toFQDNs: 'toFQDNs cannot be used in egressDeny (Cilium has no FQDN deny rules): allow the names you want in egress instead',
    },
  },
);

/** The L7 rules of a host policy's ingress/egress, which upstream refuses. */
function reportHostPolicyL7(rule: Record<string, unknown>, report: Report): void {
  for (const direction of ['ingress', 'egress'] as const) {
    list(rule[direction]).forEach((r, i) => {
      if (!isRecord(r)) return;
      list(r.toPorts).forEach((p, j) => {
        if (isRecord(p) && isRecord(p.rules) && (hasItems(p.rules.http) || hasItems(p.rules.dns))) {
          report([direction, i, 'toPorts', j, 'rules'], 'host policies (nodeSelector) do not support L7 rules');
        }
      });
    });
  }
}

function ciliumRule(kind: CiliumPolicyKind): z.ZodType<CiliumRule> {
  const clusterwide = kind === 'CiliumClusterwideNetworkPolicy';
  return withChecks(
    strictObject(
      {
        endpointSelector: ciliumSelector.optional(),
        nodeSelector: ciliumSelector.optional(),
        ingress: z.array(ingressRule).optional(),
        ingressDeny: z.array(ingressDenyRule).optional(),
        egress: z.array(egressRule).optional(),
        egressDeny: z.array(egressDenyRule).optional(),
        enableDefaultDeny: strictObject({ ingress: z.boolean().optional(), egress: z.boolean().optional() }).optional(),
        description: z.string().optional(),
      },
      {
        refused: {
          labels: notSupported('labels (rule labels)', 'name the rule with description instead'),
          log: notSupported('log', 'policy verdicts are in the flow records already'),
        },
      },
    ),
    (rule, report) => {
      const endpoint = isSet(rule.endpointSelector);
      const node = isSet(rule.nodeSelector);
      if (!endpoint && !node) {
        report(
          [],
          clusterwide
            ? 'a rule needs endpointSelector (the pods it applies to) or nodeSelector (the nodes, for a host policy)'
            : 'a rule needs endpointSelector (the pods it applies to; {} selects every pod in the namespace)',
        );
      } else if (node && !clusterwide) {
        report(['nodeSelector'], 'nodeSelector is only allowed in CiliumClusterwideNetworkPolicy (host policies are cluster-wide): use endpointSelector');
      } else if (endpoint && node) {
        report(['nodeSelector'], 'a rule has endpointSelector or nodeSelector, not both: split it into two rules');
      }
      if (node && clusterwide) reportHostPolicyL7(rule, report);
    },
  );
}

function ciliumPolicySchema<K extends CiliumPolicyKind>(kind: K) {
  const rule = ciliumRule(kind);
  return withChecks(
    strictObject(
      {
        apiVersion: apiVersionField('cilium.io/v2', kind),
        kind: z.literal(kind),
        metadata: objectMeta(dns1123SubdomainError),
        spec: rule.optional(),
        specs: z.array(rule).min(1, { error: 'specs must not be an empty list: give at least one rule, or use spec' }).optional(),
      },
      { refused: { status: STATUS_REFUSED } },
    ),
    (policy, report) => {
      if (policy.spec === undefined && policy.specs === undefined) {
        report([], 'a policy needs spec (one rule) or specs (a list of rules)');
      }
      if (kind === 'CiliumClusterwideNetworkPolicy') refuseNamespace(kind, policy, report);
    },
  );
}

export const ciliumNetworkPolicySchema: z.ZodType<CiliumNetworkPolicy> = ciliumPolicySchema('CiliumNetworkPolicy');
export const ciliumClusterwideNetworkPolicySchema: z.ZodType<CiliumClusterwideNetworkPolicy> = ciliumPolicySchema(
  'CiliumClusterwideNetworkPolicy',
);
