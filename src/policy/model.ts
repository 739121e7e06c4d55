/**
 * The policy engine's normalised rule model. CiliumNetworkPolicy,
 * CiliumClusterwideNetworkPolicy and Kubernetes NetworkPolicy are all
 * translated into these shapes (translate-*.ts), so the rest of the engine
 * knows one set of semantics.
 *
 *   PolicyRule        one rule of one policy object: who it selects, and per
 *                     direction whether it enforces default-deny and its entries
 *   RuleEntry         one (peers × ports × L7) allow or deny statement
 */
import type { BlockList } from 'node:net';
import type { NameMatcher } from '../fqdn/index.ts';
import type { Selector } from '../labels/index.ts';
import type { HttpRegex, PolicyKind } from '../k8s/index.ts';

export type Direction = 'ingress' | 'egress';
export type Protocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6';

/** Where a rule came from: enough to name it in a flow record or a trace. */
export interface RuleOrigin {
  readonly kind: PolicyKind;
  readonly name: string;
  /** Absent for cluster-wide policies. */
  readonly namespace?: string;
  /** Field path of the rule inside the object, e.g. `spec.egress[1].toPorts[0]`. */
  readonly path: string;
  readonly description?: string;
}

/** A port, a port range or a named port; `port: 0` with no name means every port. */
export interface PortSpec {
  /** `ANY` covers TCP, UDP and SCTP (Cilium's ProtoAny); ICMP types are ports of ICMP/ICMPv6. */
  readonly protocol: Protocol | 'ANY';
  readonly port: number;
  readonly endPort: number;
  readonly name?: string;
}

/**
 * A CIDR peer: matches world addresses inside `include` and outside
 * `except`, and pod addresses too when `selectsPods` is set.
 */
export interface CidrPeer {
  readonly text: string;
  /** As written, for datapaths that program prefixes themselves. */
  readonly cidr: string;
  readonly exceptCidrs: readonly string[];
  readonly include: BlockList;
  readonly except: BlockList | null;
  /**
   * A Kubernetes NetworkPolicy ipBlock (with the agent's
   * networkPolicy.ipBlockSelectsPods on): pods whose address lies in the
   * block match too, as upstream Kubernetes intends. Cilium's own CIDR rules,
   * and ipBlocks with the setting off, select addresses outside the cluster only.
   */
  readonly selectsPods: boolean;
}

/** The L3 half of an entry. */
export interface PeerSpec {
  /** No L3 restriction at all (an L4-only rule, entity `all`, a Kubernetes rule with no `from`). */
  readonly any: boolean;
  readonly selectors: readonly Selector[];
  readonly cidrs: readonly CidrPeer[];
  readonly fqdns: readonly NameMatcher[];
}

export interface HttpHeaderRule {
  /** Lower-case header name. */
  readonly name: string;
  /** Exact value required; undefined means "present". */
  readonly value?: string;
}

/** One `rules.http` entry, its RE2 patterns compiled for full-value matching. Fields AND. */
export interface HttpRule {
  readonly text: string;
  readonly method?: HttpRegex;
  readonly path?: HttpRegex;
  readonly host?: HttpRegex;
  readonly headers: readonly HttpHeaderRule[];
}

export type L7Rules =
  | { readonly protocol: 'http'; readonly http: readonly HttpRule[] }
  | { readonly protocol: 'dns'; readonly dns: readonly NameMatcher[] };

export interface RuleEntry {
  readonly origin: RuleOrigin;
  readonly deny: boolean;
  readonly peers: PeerSpec;
  /** null: every protocol and port (an L3-only rule). */
  readonly ports: readonly PortSpec[] | null;
  readonly l7: L7Rules | null;
  /** Stable text of what the entry says: equal text, equal meaning (change detection). */
  readonly fingerprint: string;
}

export interface DirectionRules {
  /** Whether this rule puts the direction into default-deny for what it selects. */
  readonly defaultDeny: boolean;
  readonly entries: readonly RuleEntry[];
}

export interface PolicyRule {
  readonly origin: RuleOrigin;
  /** Selects the endpoints the rule applies to. */
  readonly subject: Selector;
  /** Absent when the rule says nothing about the direction. */
  readonly ingress?: DirectionRules;
  readonly egress?: DirectionRules;
}

export type MatchKind = 'none' | 'all' | 'l3-only' | 'l3-l4' | 'l4-only' | 'l7/http' | 'l7/dns';
