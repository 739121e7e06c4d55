/**
 * An immutable view of the engine at one moment: readers (datapaths, proxies,
 * `policy trace`, the UI) hold one and never see half an update.
 *
 *   PeerRef ──► resolvePeer() ──► Peer (identity, ip, named ports)
 *   (src, dst) ──► egress of src ∧ ingress of dst ──► Verdict with reasons
 */
import type { PolicyObject, Service } from '../k8s/index.ts';
import { labelsMatch, serviceSelector } from '../k8s/index.ts';
import { IDENTITY_WORLD, RESERVED_LABELS, RESERVED_NAMES } from '../identity/index.ts';
import { normaliseName, type NameMatcher } from '../fqdn/index.ts';
import {
  type CompiledEntry,
  decide,
  DEFAULT_DENY,
  type DirectionPolicy,
  type EndpointPolicy,
  type FqdnLookup,
  isSentinel,
  matchingEntries,
  NO_FQDNS,
  NO_POLICY,
  type Peer,
} from './compiled.ts';
import type { EndpointInfo } from './endpoint.ts';
import type { Direction, Protocol, RuleOrigin } from './model.ts';
import type { NamedPorts } from './ports.ts';
import { httpRuleMatches } from './http-rules.ts';
import type { DirectionVerdict, PeerRef, PeerView, Verdict, VerdictQuery } from './verdict.ts';

export interface SnapshotParts {
  endpoints: ReadonlyMap<string, EndpointInfo>;
  compiled: ReadonlyMap<number, EndpointPolicy>;
  services: ReadonlyMap<string, Service>;
  policies: ReadonlyMap<string, PolicyObject>;
  cluster: string;
}

const RESERVED_BY_NAME = new Map([...RESERVED_NAMES].map(([id, name]) => [name, id]));

interface ResolvedPeer {
  peer: Peer;
  view: PeerView;
  endpoint?: EndpointInfo;
}

export class PolicySnapshot {
  readonly #p: SnapshotParts;
  readonly #byIp: ReadonlyMap<string, EndpointInfo>;

  constructor(parts: SnapshotParts) {
    this.#p = parts;
    const byIp = new Map<string, EndpointInfo>();
    for (const ep of parts.endpoints.values()) for (const ip of ep.ips) byIp.set(ip, ep);
    this.#byIp = byIp;
  }

  get cluster(): string {
    return this.#p.cluster;
  }

  endpoints(): IterableIterator<EndpointInfo> {
    return this.#p.endpoints.values();
  }

  endpoint(key: string): EndpointInfo | undefined {
    return this.#p.endpoints.get(key);
  }

  endpointByIp(ip: string): EndpointInfo | undefined {
    return this.#byIp.get(ip);
  }

  /** The compiled policy of an endpoint (shared by every endpoint of its identity). */
  policyOf(key: string): EndpointPolicy | undefined {
    const ep = this.#p.endpoints.get(key);
    return ep ? this.#p.compiled.get(ep.identity) : undefined;
  }

  policyOfIdentity(identity: number): EndpointPolicy | undefined {
    return this.#p.compiled.get(identity);
  }

  policies(): IterableIterator<PolicyObject> {
    return this.#p.policies.values();
  }

  services(): IterableIterator<Service> {
    return this.#p.services.values();
  }

  serviceByIp(ip: string): Service | undefined {
    for (const s of this.#p.services.values()) {
      if (s.spec.clusterIP === ip || s.spec.clusterIPs?.includes(ip)) return s;
    }
    return undefined;
  }

  /** Pods a Service selects (its backends), with the target port for a service port. */
  serviceBackends(svc: Service, port: number): { endpoint: EndpointInfo; targetPort: number }[] {
    const sel = serviceSelector(svc);
    if (!sel) return [];
    const sp = svc.spec.ports?.find((p) => p.port === port);
    const ns = svc.metadata.namespace ?? 'default';
    const out: { endpoint: EndpointInfo; targetPort: number }[] = [];
    for (const ep of this.#p.endpoints.values()) {
      if (ep.namespace !== ns || !labelsMatch(sel, ep.podLabels)) continue;
      let target = port;
      if (sp?.targetPort !== undefined) {
        if (typeof sp.targetPort === 'number') target = sp.targetPort;
        else {
          const named = ep.namedPorts.get(sp.targetPort)?.[0];
          if (!named) continue;
          target = named.port;
        }
      }
      out.push({ endpoint: ep, targetPort: target });
    }
    return out;
  }

  resolvePeer(ref: PeerRef): ResolvedPeer {
    if ('endpoint' in ref) {
      const ep = this.#p.endpoints.get(ref.endpoint);
      if (!ep) throw new Error(`no pod ${ref.endpoint}`);
      return this.#endpointPeer(ep);
    }
    if ('ip' in ref) {
      const ep = this.#byIp.get(ref.ip);
      if (ep) return this.#endpointPeer(ep);
      return {
        peer: { identity: IDENTITY_WORLD, ip: ref.ip },
        view: { name: ref.ip, kind: 'world', identity: IDENTITY_WORLD, ip: ref.ip, labels: ['reserved:world'] },
      };
    }
    const id = RESERVED_BY_NAME.get(ref.entity);
    if (id === undefined) throw new Error(`unknown entity ${ref.entity}`);
    return {
      peer: { identity: id },
      view: { name: ref.entity, kind: 'reserved', identity: id, labels: RESERVED_LABELS.get(id)?.toStrings() ?? [] },
    };
  }

  #endpointPeer(ep: EndpointInfo): ResolvedPeer {
    const ip = ep.ips[0];
    return {
      endpoint: ep,
      peer: { identity: ep.identity, ...(ip !== undefined ? { ip } : {}), namedPorts: ep.namedPorts },
      view: {
        name: ep.key,
        kind: 'endpoint',
        identity: ep.identity,
        ...(ip !== undefined ? { ip } : {}),
        labels: ep.labels.toStrings(),
      },
    };
  }

  /**
   * Would this connection be allowed, and why? Egress of the source and
   * ingress of the destination must both allow it (each only when that side
   * is a pod of this cluster).
   */
  verdict(q: VerdictQuery, fqdns: FqdnLookup = NO_FQDNS): Verdict {
    const src = this.resolvePeer(q.src);
    const dst = this.resolvePeer(q.dst);
    const egress = src.endpoint
      ? this.#direction('egress', src.endpoint, dst.peer, dst.endpoint?.namedPorts, q, fqdns)
      : null;
    const ingress = dst.endpoint
      ? this.#direction('ingress', dst.endpoint, src.peer, dst.endpoint.namedPorts, q, fqdns)
      : null;
    const sides = [egress, ingress].filter((d): d is DirectionVerdict => d !== null);
    const allowed = sides.every((d) => d.allowed);
    const l3Denied = sides.find((d) => d.reason === 'denied-by-rule' || d.reason === 'default-deny');
    const l7Denied = sides.find((d) => d.reason === 'l7-denied');
    return {
      allowed,
      src: src.view,
      dst: dst.view,
      protocol: q.protocol,
      port: q.port,
      egress,
      ingress,
      dropReason: l3Denied ? (l3Denied.reason === 'denied-by-rule' ? 'POLICY_DENY' : 'POLICY_DENIED') : null,
      l7Answer: l3Denied || !l7Denied ? null : l7Denied.l7?.protocol === 'dns' ? 'DNS REFUSED' : '403 Access denied',
    };
  }

  /**
   * The names a pod may look up at a DNS server: the union of `rules.dns` of
   * the egress entries that would steer this query to the DNS proxy; 'all'
   * when an L3/L4 rule allows it unfiltered or the pod has no egress policy;
   * [] when policy drops it. What the proxy asks for every query.
   */
  dnsRules(srcIp: string, server: { ip: string; port: number }, protocol: 'TCP' | 'UDP', fqdns: FqdnLookup = NO_FQDNS): readonly NameMatcher[] | 'all' {
    const src = this.#byIp.get(srcIp);
    const dir = src ? this.#p.compiled.get(src.identity)?.egress : undefined;
    if (!dir) return 'all';
    const dst = this.resolvePeer({ ip: server.ip });
    const d = decide(dir, dst.peer, protocol, server.port, dst.endpoint?.namedPorts, fqdns);
    if (isSentinel(d)) return d === DEFAULT_DENY ? [] : 'all';
    if (d.entry.deny) return [];
    if (d.entry.l7?.protocol !== 'dns') return d.entry.l7 === null ? 'all' : [];
    const out: NameMatcher[] = [];
    for (const c of matchingEntries(dir.allow, dst.peer, protocol, server.port, dst.endpoint?.namedPorts, fqdns)) {
      if (c.entry.l7?.protocol === 'dns') out.push(...c.entry.l7.dns);
    }
    return out;
  }

  #direction(
    direction: Direction,
    subject: EndpointInfo,
    peer: Peer,
    namedPorts: NamedPorts | undefined,
    q: VerdictQuery,
    fqdns: FqdnLookup,
  ): DirectionVerdict {
    const policy = this.#p.compiled.get(subject.identity);
    const dir: DirectionPolicy | undefined = policy?.[direction];
    const base = { direction, endpoint: subject.key, allowedBy: [], deniedBy: [], enforcedBy: dir?.enforcedBy ?? [] };
    if (!dir) return { ...base, allowed: true, match: 'all', reason: 'no-policy' };
    const d = decide(dir, peer, q.protocol, q.port, namedPorts, fqdns);
    if (isSentinel(d)) {
      if (d === NO_POLICY) return { ...base, allowed: true, match: 'all', reason: 'no-policy' };
      if (d === DEFAULT_DENY) return { ...base, allowed: false, match: 'none', reason: 'default-deny' };
      return { ...base, allowed: true, match: 'all', reason: 'not-enforced' };
    }
    const all = (list: readonly CompiledEntry[]): CompiledEntry[] =>
      matchingEntries(list, peer, q.protocol, q.port, namedPorts, fqdns);
    if (d.entry.deny) {
      return { ...base, allowed: false, match: d.match, reason: 'denied-by-rule', deniedBy: origins(all(dir.deny)) };
    }
    const allowing = all(dir.allow);
    if (d.entry.l7 === null) {
      return { ...base, allowed: true, match: d.match, reason: 'allowed', allowedBy: origins(allowing.filter((c) => c.entry.l7 === null)) };
    }
    return this.#l7(base, d.entry.l7.protocol, allowing, q);
  }

  #l7(
    base: Pick<DirectionVerdict, 'direction' | 'endpoint' | 'allowedBy' | 'deniedBy' | 'enforcedBy'>,
    protocol: 'http' | 'dns',
    entries: CompiledEntry[],
    q: VerdictQuery,
  ): DirectionVerdict {
    const match = protocol === 'http' ? 'l7/http' : 'l7/dns';
    const rules: string[] = [];
    const matched: string[] = [];
    const matchedBy: RuleOrigin[] = [];
    const name = q.dnsName !== undefined ? normaliseName(q.dnsName) : undefined;
    for (const c of entries) {
      const l7 = c.entry.l7;
      if (l7?.protocol === 'http') {
        for (const r of l7.http) {
          rules.push(r.text);
          if (q.http && httpRuleMatches(r, q.http)) {
            matched.push(r.text);
            matchedBy.push(c.entry.origin);
          }
        }
      } else if (l7?.protocol === 'dns') {
        for (const m of l7.dns) {
          rules.push(`${m.kind}: ${m.text}`);
          if (name !== undefined && m.matches(name)) {
            matched.push(`${m.kind}: ${m.text}`);
            matchedBy.push(c.entry.origin);
          }
        }
      }
    }
    const l7 = { protocol, rules, matched, from: origins(entries) };
    const asked = protocol === 'http' ? q.http !== undefined : name !== undefined;
    if (!asked) {
      return { ...base, allowed: true, match, reason: 'l7-redirect', allowedBy: origins(entries), l7 };
    }
    if (matched.length > 0) {
      return { ...base, allowed: true, match, reason: 'l7-allowed', allowedBy: dedupe(matchedBy), l7 };
    }
    return { ...base, allowed: false, match, reason: 'l7-denied', l7 };
  }
}

function origins(list: readonly CompiledEntry[]): RuleOrigin[] {
  return dedupe(list.map((c) => c.entry.origin));
}

function dedupe(list: readonly RuleOrigin[]): RuleOrigin[] {
  const seen = new Set<string>();
  return list.filter((o) => {
    const k = `${o.kind}/${o.namespace}/${o.name}/${o.path}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
