/**
 * The L3 peers and ICMP matches of a Cilium rule: endpoint selectors (with
 * Cilium label sources), CIDRs, CIDR sets, entities, ICMP fields.
 */
import * as z from 'zod';
import type { CIDRRule, Entity, ICMPField, ICMPRule, LabelSelector } from '../objects.ts';
import { cidrContains, parseCIDR } from './checks-cidr.ts';
import { icmpTypeError } from './checks-icmp.ts';
import { labelSelector } from './schema-meta.ts';
import { checkedString, list, notSupported, strictObject, withChecks } from './schema-kit.ts';

const MAX_ICMP_FIELDS = 40;

export const ciliumSelector: z.ZodType<LabelSelector> = labelSelector('cilium');

/** fromCIDR/toCIDR: a CIDR or a bare IP (api.CIDR.sanitize falls back to netip.ParseAddr). */
export const cidrOrIP = checkedString((s) => {
  const parsed = parseCIDR(s, true);
  return typeof parsed === 'string' ? parsed : undefined;
});

/** cidrSet cidr/except: "Only allow notation <IP address>/<prefix>" (api.CIDRRule.sanitize). */
const cidrOnly = checkedString((s) => {
  const parsed = parseCIDR(s, false);
  return typeof parsed === 'string' ? parsed : undefined;
});

export const cidrRule: z.ZodType<CIDRRule> = withChecks(
  strictObject(
    { cidr: cidrOnly, except: z.array(cidrOnly).optional() },
    {
      refused: {
        cidrGroupRef: notSupported('cidrGroupRef', 'CiliumCIDRGroup objects are not read; list the cidr here'),
        cidrGroupSelector: notSupported('cidrGroupSelector', 'CiliumCIDRGroup objects are not read; list the cidr here'),
      },
    },
  ),
  (rule, report) => {
    // "allow CIDR prefix %s does not contain exclude CIDR prefix %s"
    const outer = typeof rule.cidr === 'string' ? parseCIDR(rule.cidr, false) : undefined;
    if (outer === undefined || typeof outer === 'string') return;
    list(rule.except).forEach((e, i) => {
      if (typeof e !== 'string') return;
      const inner = parseCIDR(e, false);
      if (typeof inner !== 'string' && !cidrContains(outer, inner, false)) {
        report(['except', i], `${JSON.stringify(e)} is not inside cidr ${JSON.stringify(rule.cidr)}: each except must be a CIDR contained in cidr`);
      }
    });
  },
);

const ENTITIES = ['all', 'world', 'cluster', 'host', 'remote-node', 'kube-apiserver', 'ingress', 'init', 'health', 'unmanaged', 'none'] as const;
export const entity: z.ZodType<Entity> = z.enum(ENTITIES);

const icmpField: z.ZodType<ICMPField> = withChecks(
  strictObject({
    type: z.custom<number | string>(() => true),
    family: z.enum(['IPv4', 'IPv6']).optional(),
  }),
  (f, report) => {
    if (f.type === undefined) {
      report(['type'], 'required field is missing: an ICMP type number (0-255) or name such as EchoRequest');
      return;
    }
    const family = f.family === 'IPv6' ? 'IPv6' : 'IPv4';
    const error = icmpTypeError(f.type, family);
    if (error !== undefined) report(['type'], error);
  },
);

export const icmpRule: z.ZodType<ICMPRule> = strictObject({
  fields: z.array(icmpField).min(1).max(MAX_ICMP_FIELDS),
});
