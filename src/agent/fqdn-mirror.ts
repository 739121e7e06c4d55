/**
 * The agent's copy of the node proxy's name cache: what the toFQDNs sets hold.
 *
 *   name cache file ─(before the first apply)─┐
 *   proxy link: names (every connect) ────────┼─► NameCache ─► fqdnIps(selectors) at each apply
 *               learned / forgotten ──────────┘        └─► "programmed" once the kernel has learned addresses
 *
 * The DNS proxy owns the cache; this mirror only follows it. A learned
 * address is confirmed only after the agent's first apply, so the proxy never
 * releases an answer before the kernel allows its addresses.
 */
import { fqdnSelectorKey, NameCache, type NameCacheEntry, type NameMatcher } from '../fqdn/index.ts';
import type { PolicySnapshot } from '../policy/index.ts';
import type { AgentConfig } from './config.ts';
import type { ProxyLinkHandlers } from './proxy-link.ts';

/** One learned address of a name, and the pods whose lookups returned it. */
export interface FqdnCacheRow {
  name: string;
  ip: string;
  /** Seconds; ≤ 0 while an expired address is kept for open connections. */
  ttlLeft: number;
  resolvedBy: { ip: string; namespace?: string; pod?: string }[];
}

export interface FqdnMirrorOptions {
  fqdn: AgentConfig['fqdn'];
  /** An apply that starts after the call: resolves once the kernel has the state. */
  apply(): Promise<unknown>;
  /** An apply soon (coalesced). */
  schedule(): void;
}

/** What the datapath asked for during one apply: toFQDNs selector → the addresses it was given. */
type Installed = Map<string, { selectors: readonly NameMatcher[]; ips: ReadonlySet<string> }>;

export class FqdnMirror {
  readonly #o: FqdnMirrorOptions;
  #names: NameCache;
  #linked = false;
  /** Resolves with the node proxy's first names message. */
  readonly #firstNames = Promise.withResolvers<void>();
  /** Resolves once the first apply is in the kernel: only then can learned addresses be confirmed. */
  readonly #firstApply = Promise.withResolvers<void>();
  /** As of the last apply that succeeded. */
  #installed: Installed = new Map();

  constructor(o: FqdnMirrorOptions) {
    this.#o = o;
    this.#names = this.#newCache();
  }

  /** The proxy's rules for expiry and eviction, so a mirrored record expires when the proxy's does. */
  #newCache(): NameCache {
    const f = this.#o.fqdn;
    return new NameCache({ ...(f?.minTtl !== undefined ? { minTtl: f.minTtl } : {}), ...(f?.maxIpsPerName !== undefined ? { maxIpsPerName: f.maxIpsPerName } : {}) });
  }

  /** Whether the node proxy is connected (it sent its names). */
  get linked(): boolean {
    return this.#linked;
  }

  /** The proxy's last saved names (before the first apply); returns how many entries. */
  load(file: string): Promise<number> {
    return this.#names.load(file);
  }

  /** Resolves with the proxy's first names message, or after `ms`. */
  async proxyNames(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#firstNames.promise, new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /** The first apply is in the kernel: learned addresses can be confirmed from now on. */
  firstApplied(): void {
    this.#firstApply.resolve();
  }

  namesForIp(ip: string): readonly string[] {
    return this.#names.namesForIp(ip);
  }

  /**
   * For one apply: `fqdnIps` answers the datapath from the mirror as it is
   * now; `installed()` records the answers once the apply succeeded.
   */
  forApply(): { fqdnIps(selectors: readonly NameMatcher[]): ReadonlySet<string>; installed(): void } {
    const names = this.#names;
    const asked: Installed = new Map();
    return {
      fqdnIps: (selectors) => {
        const ips = names.ipsMatching(selectors);
        asked.set(fqdnSelectorKey(selectors), { selectors, ips });
        return ips;
      },
      installed: () => void (this.#installed = asked),
    };
  }

  /**
   * The DNS proxy learned addresses for a name: when a toFQDNs selector in
   * force matches the name and lacks one of them, re-apply, and resolve once
   * the kernel allows them (the proxy holds the answer until then). Nothing
   * to wait for otherwise.
   */
  fqdnLearned(name: string, ips: readonly string[]): Promise<void> | undefined {
    for (const { selectors, ips: have } of this.#installed.values()) {
      if (!selectors.some((m) => m.matches(name))) continue;
      if (ips.some((ip) => !have.has(ip) && !ip.includes(':'))) return this.#o.apply().then(() => undefined);
    }
    return undefined;
  }

  /** What the proxy link delivers about names (proxy-link.ts). */
  linkHandlers(): Pick<ProxyLinkHandlers, 'names' | 'unlinked' | 'learned' | 'forgotten'> {
    return {
      names: (entries) => {
        // The proxy's cache is the truth: what it forgot while we were away goes too.
        const mirror = this.#newCache();
        mirror.restore(entries);
        this.#names = mirror;
        this.#linked = true;
        this.#firstNames.resolve();
        this.#o.schedule();
      },
      unlinked: () => void (this.#linked = false),
      learned: (pod, name, ips, ttl) => {
        this.#names.record(pod, name, ips, ttl);
        return this.#firstApply.promise.then(() => this.fqdnLearned(name, ips));
      },
      forgotten: (name, ips) => {
        this.#names.forget(name, ips);
        this.#o.schedule();
      },
    };
  }

  /**
   * The name cache with the pods behind each lookup named: `palisade fqdn cache`.
   * `fresh` is the proxy's own cache when it answers; else the mirror serves.
   */
  cacheEntries(snapshot: PolicySnapshot, fresh: NameCacheEntry[] | undefined): FqdnCacheRow[] {
    const names = fresh ? this.#newCache() : this.#names;
    if (fresh) names.restore(fresh);
    return names.cacheEntries().map((e) => ({
      ...e,
      resolvedBy: e.resolvedBy.map((ip) => {
        const ep = snapshot.endpointByIp(ip);
        return ep ? { ip, namespace: ep.namespace, pod: ep.name } : { ip };
      }),
    }));
  }
}
