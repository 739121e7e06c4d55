/** The shapes a verdict is reported in: to a person by `policy trace`, to flows, to the proxies. */
import type { Direction, MatchKind, Protocol, RuleOrigin } from './model.ts';
import type { HttpRequest } from './http-rules.ts';
import type { Entity } from '../k8s/index.ts';

/** One side of a connection, as given by a caller. */
export type PeerRef =
  | { readonly endpoint: string }
  | { readonly ip: string }
  | { readonly entity: Exclude<Entity, 'all' | 'none' | 'cluster'> };

export interface VerdictQuery {
  readonly src: PeerRef;
  readonly dst: PeerRef;
  readonly protocol: Protocol;
  readonly port: number;
  readonly http?: HttpRequest;
  /** A DNS query name, checked against `rules.dns` of the egress port (usually 53). */
  readonly dnsName?: string;
}

export interface PeerView {
  /** `ns/pod` for endpoints, the address for world, the entity name for reserved identities. */
  readonly name: string;
  readonly kind: 'endpoint' | 'world' | 'reserved';
  readonly identity: number;
  readonly ip?: string;
  readonly labels: readonly string[];
}

export type DirectionReason =
  | 'no-policy'
  | 'not-enforced'
  | 'allowed'
  | 'denied-by-rule'
  | 'default-deny'
  | 'l7-redirect'
  | 'l7-allowed'
  | 'l7-denied';

export interface DirectionVerdict {
  readonly direction: Direction;
  /** The endpoint whose policy was consulted. */
  readonly endpoint: string;
  readonly allowed: boolean;
  readonly match: MatchKind;
  readonly reason: DirectionReason;
  /** The rules that allowed (union: all of them). */
  readonly allowedBy: readonly RuleOrigin[];
  /** The deny rules that matched. */
  readonly deniedBy: readonly RuleOrigin[];
  /** The rules that put the direction into default-deny. */
  readonly enforcedBy: readonly RuleOrigin[];
  /** For L7 decisions: the rules consulted and those that matched. */
  readonly l7?: {
    readonly protocol: 'http' | 'dns';
    readonly rules: readonly string[];
    readonly matched: readonly string[];
    /** The rules that hold the L7 rules of this port. */
    readonly from: readonly RuleOrigin[];
  };
}

export interface Verdict {
  readonly allowed: boolean;
  readonly src: PeerView;
  readonly dst: PeerView;
  readonly protocol: Protocol;
  readonly port: number;
  readonly egress: DirectionVerdict | null;
  readonly ingress: DirectionVerdict | null;
  /** Hubble's drop reason: POLICY_DENIED (default deny), POLICY_DENY (a deny rule); null when not dropped at L3/L4. */
  readonly dropReason: 'POLICY_DENIED' | 'POLICY_DENY' | null;
  /** What the proxy answers when L7 denies: 403 for HTTP, REFUSED for DNS. */
  readonly l7Answer: '403 Access denied' | 'DNS REFUSED' | null;
}
