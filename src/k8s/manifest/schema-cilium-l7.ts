/**
 * Cilium `toPorts` entries and their L7 rules (cilium.io/v2 PortRule), plus the
 * FQDN selectors shared by `toFQDNs` and `rules.dns`.
 *
 * Upstream rules quoted from pkg/policy/api/rule_validation.go (PortRule.sanitize,
 * L7Rules.sanitize):
 * - "DNS L7 rules can be TCP, UDP or ANY, all others are TCP only."
 *   (Palisade also lets HTTP ride on ANY, which it treats as TCP for L7.)
 * - "L7 rules can not be used when a port is 0"
 * - "Port 53 must be specified for DNS rules" — we only require some port.
 * - "DNS rules do not support port ranges"
 * - "multiple L7 protocol rule types specified in single rule"
 * - "too many ports, the max is 40"
 * Deny rules take ports only (api.PortDenyRule has no `rules`).
 */
import * as z from 'zod';
import { httpRegexError } from '../http-regex.ts';
import type { CiliumPortProtocol, FQDNSelector, HeaderMatch, L7Rules, PortRule, PortRuleHTTP } from '../objects.ts';
import { matchNameError, matchPatternError } from './checks-dns.ts';
import { httpHeaderNameError } from './checks-names.ts';
import { ciliumPortField, ciliumPortNumber } from './checks-ports.ts';
import { checkedString, hasItems, isRecord, isSet, list, notSupported, strictObject, withChecks, type Report } from './schema-kit.ts';

const MAX_PORTS = 40;

export const ciliumProtocol = z.enum(['TCP', 'UDP', 'SCTP', 'ANY'], {
  error: (iss) =>
    typeof iss.input === 'string' && /^icmp/i.test(iss.input)
      ? `${iss.input} is not a toPorts protocol in Palisade: allow ICMP with icmps[].fields instead`
      : undefined,
});

const portProtocol: z.ZodType<CiliumPortProtocol> = withChecks(
  strictObject({
    port: ciliumPortField,
    endPort: z.number().int().min(1).max(65535).optional(),
    protocol: ciliumProtocol.optional(),
  }),
  (p, report) => {
    if (p.endPort === undefined || typeof p.endPort !== 'number') return;
    const start = ciliumPortNumber(p.port);
    if (start === undefined) {
      if (typeof p.port === 'string') report(['endPort'], 'endPort needs a numeric port: a range cannot start at a named port');
    } else if (p.endPort < start) {
      report(['endPort'], `endPort (${p.endPort}) must be greater than or equal to port (${start})`);
    }
  },
);

// ---------------------------------------------------------------- FQDN selectors

/** "only one of MatchName or MatchPattern is allowed in an FQDNSelector" — and one is needed. */
export const fqdnSelector: z.ZodType<FQDNSelector> = withChecks(
  strictObject({
    matchName: checkedString(matchNameError).optional(),
    matchPattern: checkedString(matchPatternError).optional(),
  }),
  (s, report) => {
    if (s.matchName !== undefined && s.matchPattern !== undefined) {
      report([], 'set exactly one of matchName or matchPattern, not both');
    } else if (s.matchName === undefined && s.matchPattern === undefined) {
      report([], 'set exactly one of matchName (an exact name) or matchPattern (a name with * wildcards)');
    }
  },
);

// ---------------------------------------------------------------- HTTP

/**
 * A `headers` entry is "Name" (the header must be present) or "Name: value"
 * (exact value). Cilium splits the entry at its first space and trims a ':'
 * from the name, so "Name:value" without a space would name a header "Name:value".
 */
function headerEntryError(s: string): string | undefined {
  const space = s.indexOf(' ');
  const name = space < 0 ? s : s.slice(0, space).replace(/:$/, '');
  if (space < 0 && s.includes(':')) {
    return `${JSON.stringify(s)}: write "Name: value" with a space after the colon, or just "Name" to require the header`;
  }
  const error = httpHeaderNameError(name);
  return error === undefined ? undefined : `headers entries are "Name" or "Name: value"; ${error}`;
}

const headerMatch: z.ZodType<HeaderMatch> = strictObject(
  {
    name: checkedString(httpHeaderNameError),
    value: z.string().optional(),
    mismatch: z.enum(['LOG', 'ADD', 'DELETE', 'REPLACE']).optional(),
  },
  { refused: { secret: notSupported('secret', 'header values from Kubernetes Secrets are not read; give value') } },
);

const httpRule: z.ZodType<PortRuleHTTP> = strictObject({
  method: checkedString(httpRegexError).optional(),
  path: checkedString(httpRegexError).optional(),
  host: checkedString(httpRegexError).optional(),
  headers: z.array(checkedString(headerEntryError)).optional(),
  headerMatches: z.array(headerMatch).optional(),
});

// ---------------------------------------------------------------- L7 rules

const l7Rules: z.ZodType<L7Rules> = withChecks(
  strictObject(
    {
      http: z.array(httpRule).optional(),
      dns: z.array(fqdnSelector).optional(),
    },
    {
      refused: {
        kafka: notSupported('kafka', 'Palisade enforces HTTP and DNS rules only'),
        l7proto: notSupported('l7proto', 'Palisade enforces HTTP and DNS rules only'),
        l7: notSupported('l7', 'Palisade enforces HTTP and DNS rules only'),
      },
    },
  ),
  (rules, report) => {
    if (isSet(rules.http) && isSet(rules.dns)) {
      report([], 'one toPorts entry takes one kind of L7 rules: http or dns, not both (split it into two toPorts entries)');
    }
  },
);

const PORT_RULE_REFUSED: Readonly<Record<string, string>> = {
  serverNames: notSupported('serverNames', 'TLS SNI matching is not implemented'),
  listener: notSupported('listener', 'custom Envoy listeners do not exist in Palisade'),
  originatingTLS: notSupported('originatingTLS', 'TLS interception is not implemented'),
  terminatingTLS: notSupported('terminatingTLS', 'TLS interception is not implemented'),
};

/** The L7 checks of one toPorts entry, whose rules need fitting ports. */
function checkPortsForL7(rule: Record<string, unknown>, report: Report): void {
  const rules = isRecord(rule.rules) ? rule.rules : undefined;
  const hasHTTP = hasItems(rules?.http);
  const hasDNS = hasItems(rules?.dns);
  if (!hasHTTP && !hasDNS) return;
  const ports = list(rule.ports);
  if (hasDNS && ports.length === 0) {
    report(['ports'], 'DNS rules need the DNS port listed in ports (usually 53, protocol ANY)');
  }
  ports.forEach((p, j) => {
    if (!isRecord(p)) return;
    const number = ciliumPortNumber(p.port);
    if (number === 0) {
      report(['ports', j, 'port'], 'L7 rules cannot be used with port 0 (all ports): list the ports the L7 traffic uses');
    }
    if (hasHTTP && (p.protocol === 'UDP' || p.protocol === 'SCTP')) {
      report(['ports', j, 'protocol'], `HTTP rules need TCP (or ANY), not ${p.protocol}`);
    }
    if (hasDNS && p.protocol === 'SCTP') {
      report(['ports', j, 'protocol'], 'DNS rules need UDP, TCP or ANY, not SCTP');
    }
    if (hasDNS && typeof p.endPort === 'number' && number !== undefined && p.endPort > number) {
      report(['ports', j, 'endPort'], 'DNS rules do not support port ranges: list the DNS port alone');
    }
  });
}

export const portRule: z.ZodType<PortRule> = withChecks(
  strictObject(
    {
      ports: z.array(portProtocol).max(MAX_PORTS).optional(),
      rules: l7Rules.optional(),
    },
    { refused: PORT_RULE_REFUSED },
  ),
  checkPortsForL7,
);

/** toPorts of ingressDeny/egressDeny: L4 only. */
export const portDenyRule: z.ZodType<PortRule> = strictObject(
  { ports: z.array(portProtocol).max(MAX_PORTS).optional() },
  {
    refused: {
      ...PORT_RULE_REFUSED,
      rules: 'L7 rules cannot be used in a deny rule: deny rules match at L3/L4 only; put the L7 rules in an allow rule (ingress/egress)',
    },
  },
);
