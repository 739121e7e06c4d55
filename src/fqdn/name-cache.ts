/**
 * The FQDN name cache: which IPs each DNS name resolved to, until when, and
 * for which pods. It is what toFQDNs selectors are made of.
 *
 *   DnsProxy (allowed answer) ─record(pod, name, ips, ttl)─► fqdnCache
 *     ├─ ipsMatching(matchers)  → the datapath's allow-set for a toFQDNs rule
 *     ├─ namesForIp(ip)         → FqdnLookup for PolicySnapshot.verdict()
 *     ├─ cacheEntries()         → `palisade fqdn cache`
 *     ├─ sweep() (every second; only what is due, in bounded chunks) → expired IPs out, unless hasLiveConnections(ip)
 *     │                           ─onForgotten(name, ips)─► datapath removes them
 *     └─ save() (debounced, atomic rename) ⇄ load() on agent start
 *
 * Rules, as DESIGN.md states Cilium's:
 * 1. An IP lives for the answer's TTL, raised to `minTtl` (Cilium's
 *    --tofqdns-min-ttl); a later answer extends it.
 * 2. An expired IP whose connections are still open stays until they end
 *    (Cilium keeps them as "zombies"); `hasLiveConnections` decides.
 * 3. At most `maxIpsPerName` IPs per name (Cilium's
 *    --tofqdns-endpoint-max-ip-per-hostname, 1000): the one refreshed longest
 *    ago goes first, live connections or not (the cap is a hard bound).
 * 4. An IP is *confirmed* once the datapath has it (the proxy's onLearned
 *    resolved with it): a later answer made only of confirmed IPs need not
 *    wait for anything. An IP that leaves and comes back starts unconfirmed;
 *    so does everything loaded from the file.
 *
 * Time is wall-clock milliseconds (`now()`), because expiries are persisted
 * and must mean the same after a restart.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { NameMatcher } from './matchpattern.ts';

export interface NameCacheOptions {
  /** Seconds; answers with a smaller TTL are kept this long. Default 60. */
  minTtl?: number;
  /** Default 1000. */
  maxIpsPerName?: number;
  /** Whether an IP still has open connections (kept past expiry while true). Default: never. */
  hasLiveConnections?(ip: string): boolean;
  /** IPs that left `name` (expired or evicted). Called synchronously; must not call back into the cache. */
  onForgotten?(name: string, ips: readonly string[]): void;
  /** JSON file the cache persists to; none = memory only. */
  file?: string;
  /** Coalesces saves: at most one write per this many ms. Default 1000. */
  saveDebounceMs?: number;
  /** Clock (ms since the epoch). Default Date.now. */
  now?(): number;
}

export interface CacheEntry {
  name: string;
  ip: string;
  /** Seconds until expiry; ≤ 0 for an expired IP kept for its live connections. */
  ttlLeft: number;
  /** IPs of the pods whose lookups returned it. */
  resolvedBy: string[];
}

interface IpRecord {
  expiresAt: number;
  resolvedBy: Set<string>;
  /** `generation` when the record was made; confirm() only reaches records made no later than it saw. */
  born: number;
  /** Rule 4. */
  confirmed: boolean;
}

/** One address of a name as it is saved and exchanged; `expiresAt` in ms since the epoch. */
export interface NameCacheEntry {
  name: string;
  ip: string;
  expiresAt: number;
  resolvedBy: string[];
}

interface PersistedFile {
  version: 1;
  savedAt: number;
  entries: NameCacheEntry[];
}

const DEFAULT_MIN_TTL = 60;
const DEFAULT_MAX_IPS = 1000;

export class NameCache {
  /** name → ip → record; each inner Map is in refresh order (oldest first), which rule 3 relies on. */
  readonly #byName = new Map<string, Map<string, IpRecord>>();
  /** ip → names holding it. */
  readonly #byIp = new Map<string, Set<string>>();
  readonly #minTtlMs: number;
  readonly #maxIps: number;
  readonly #live: (ip: string) => boolean;
  readonly #onForgotten: ((name: string, ips: readonly string[]) => void) | undefined;
  readonly #file: string | undefined;
  readonly #debounceMs: number;
  readonly #now: () => number;
  #saveTimer: NodeJS.Timeout | undefined;
  #saving: Promise<void> | undefined;
  #dirty = false;
  #closed = false;
  #evicted = 0;
  #expired = 0;
  #retainedLive = 0;
  #generation = 0;
  /**
   * Expiry index: second → names with an IP expiring then (entries may be
   * stale: a refreshed IP is indexed again under its new second). Lets a
   * sweep look at what is due instead of the whole cache.
   */
  readonly #due = new Map<number, Set<string>>();
  /** The keys of #due, ascending. */
  readonly #dueKeys: number[] = [];
  #cutShort = false;

  constructor(opts: NameCacheOptions = {}) {
    this.#minTtlMs = (opts.minTtl ?? DEFAULT_MIN_TTL) * 1000;
    this.#maxIps = opts.maxIpsPerName ?? DEFAULT_MAX_IPS;
    if (!(this.#maxIps >= 1)) throw new RangeError(`name cache: maxIpsPerName must be ≥ 1, got ${this.#maxIps}`);
    this.#live = opts.hasLiveConnections ?? (() => false);
    this.#onForgotten = opts.onForgotten;
    this.#file = opts.file;
    this.#debounceMs = opts.saveDebounceMs ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Records an allowed answer: `ips` of `name` (normalised), valid `ttl`
   * seconds (raised to minTtl), looked up by pod `podIp`. Returns true when
   * every IP was already held for `name` and confirmed (rule 4): nothing new
   * for the datapath.
   */
  record(podIp: string, name: string, ips: readonly string[], ttl: number): boolean {
    if (ips.length === 0 || this.#closed) return false;
    const expiresAt = this.#now() + Math.max(ttl * 1000, this.#minTtlMs);
    let byIp = this.#byName.get(name);
    if (!byIp) this.#byName.set(name, (byIp = new Map()));
    let known = true;
    for (const ip of ips) {
      const old = byIp.get(ip);
      if (old) {
        if (!old.confirmed) known = false;
        if (expiresAt > old.expiresAt) this.#index(name, expiresAt);
        old.expiresAt = Math.max(old.expiresAt, expiresAt);
        old.resolvedBy.add(podIp);
        // Move to the end: refresh order is eviction order (a name's only IP stays where it is).
        if (byIp.size > 1) {
          byIp.delete(ip);
          byIp.set(ip, old);
        }
        continue;
      }
      known = false;
      this.#add(name, byIp, ip, expiresAt, new Set([podIp]));
    }
    if (byIp.size > this.#maxIps) {
      const out: string[] = [];
      for (const ip of byIp.keys()) {
        if (byIp.size - out.length <= this.#maxIps) break;
        out.push(ip);
      }
      for (const ip of out) this.#drop(name, byIp, ip);
      this.#evicted += out.length;
      this.#forgotten(name, out);
    }
    this.#markDirty();
    return known;
  }

  /** Drops `ips` of `name` now, as another cache decided (no onForgotten: the caller knows). */
  forget(name: string, ips: readonly string[]): void {
    const byIp = this.#byName.get(name);
    if (!byIp) return;
    for (const ip of ips) if (byIp.has(ip)) this.#drop(name, byIp, ip);
    this.#markDirty();
  }

  /** Counts records made so far; read it after record() and hand it to confirm(). */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Rule 4: `ips` of `name` are in the datapath now. Only records made no
   * later than `generation` are confirmed: an IP dropped and recorded again
   * since then was not in the datapath this confirmation speaks for.
   */
  confirm(name: string, ips: readonly string[], generation: number): void {
    const byIp = this.#byName.get(name);
    if (!byIp) return;
    for (const ip of ips) {
      const r = byIp.get(ip);
      if (r && r.born <= generation) r.confirmed = true;
    }
  }

  /** Names whose live IPs include `ip` (the policy engine's FqdnLookup). */
  namesForIp(ip: string): readonly string[] {
    const names = this.#byIp.get(ip);
    return names ? [...names] : [];
  }

  /** Bound `namesForIp`, to hand to PolicySnapshot.verdict(). */
  readonly fqdnLookup = (ip: string): readonly string[] => this.namesForIp(ip);

  ipsFor(name: string): string[] {
    const m = this.#byName.get(name);
    return m ? [...m.keys()] : [];
  }

  /** Every IP of every name some matcher accepts: a toFQDNs rule's allow-set. */
  ipsMatching(matchers: readonly NameMatcher[]): Set<string> {
    const out = new Set<string>();
    for (const [name, ips] of this.#byName) {
      if (!matchers.some((m) => m.matches(name))) continue;
      for (const ip of ips.keys()) out.add(ip);
    }
    return out;
  }

  /** One row per (name, IP), names sorted, for `palisade fqdn cache`. */
  cacheEntries(): CacheEntry[] {
    const now = this.#now();
    const out: CacheEntry[] = [];
    for (const name of [...this.#byName.keys()].sort()) {
      for (const [ip, r] of this.#byName.get(name)!) {
        out.push({ name, ip, ttlLeft: Math.ceil((r.expiresAt - now) / 1000), resolvedBy: [...r.resolvedBy].sort() });
      }
    }
    return out;
  }

  stats(): { names: number; ips: number; evicted: number; expired: number; retainedForLiveConnections: number } {
    let ips = 0;
    for (const m of this.#byName.values()) ips += m.size;
    return { names: this.#byName.size, ips, evicted: this.#evicted, expired: this.#expired, retainedForLiveConnections: this.#retainedLive };
  }

  /**
   * Removes expired IPs without live connections (rule 2), looking only at
   * names due by now, and at most about `budget` IPs of them: the rest stay
   * due for the next call (see sweepPending), so a mass expiry never stalls
   * the proxy's event loop. Returns how many went.
   */
  sweep(budget = Infinity): number {
    const now = this.#now();
    const nowSec = Math.floor(now / 1000);
    let removed = 0;
    let looked = 0;
    let retained = 0;
    const inUse: string[] = [];
    while (this.#dueKeys.length > 0 && this.#dueKeys[0]! <= nowSec && looked < budget) {
      const sec = this.#dueKeys[0]!;
      const names = this.#due.get(sec)!;
      for (const name of names) {
        if (looked >= budget) break;
        names.delete(name);
        const byIp = this.#byName.get(name);
        if (!byIp) continue;
        let out: string[] | undefined;
        let keep = false;
        for (const [ip, r] of byIp) {
          looked++;
          if (r.expiresAt > now) continue;
          if (this.#live(ip)) {
            retained++;
            keep = true;
            continue;
          }
          (out ??= []).push(ip);
        }
        if (keep) inUse.push(name);
        if (!out) continue;
        for (const ip of out) this.#drop(name, byIp, ip);
        removed += out.length;
        this.#forgotten(name, out);
      }
      if (names.size === 0) {
        this.#due.delete(sec);
        this.#dueKeys.shift();
      }
    }
    this.#cutShort = looked >= budget && this.#dueKeys.length > 0 && this.#dueKeys[0]! <= nowSec;
    // Expired but in use: due again at once, so the next sweep looks at them again.
    for (const name of inUse) this.#indexAt(name, nowSec);
    this.#retainedLive = retained;
    this.#expired += removed;
    if (removed > 0) this.#markDirty();
    return removed;
  }

  /** Whether the last sweep ran out of budget with names still due (call it again soon). */
  sweepPending(): boolean {
    return this.#cutShort;
  }

  /** Puts `name` under the second its IP expires in (ceil: never checked before it is due). */
  #index(name: string, expiresAt: number): void {
    this.#indexAt(name, Math.ceil(expiresAt / 1000));
  }

  #indexAt(name: string, sec: number): void {
    let names = this.#due.get(sec);
    if (!names) {
      this.#due.set(sec, (names = new Set()));
      // Binary insertion keeps the keys ascending; new seconds usually go last.
      let lo = 0;
      let hi = this.#dueKeys.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.#dueKeys[mid]! < sec) lo = mid + 1;
        else hi = mid;
      }
      this.#dueKeys.splice(lo, 0, sec);
    }
    names.add(name);
  }

  /** A new IP of `name`: its record (unconfirmed, rule 4), its expiry indexed, the reverse entry. */
  #add(name: string, byIp: Map<string, IpRecord>, ip: string, expiresAt: number, resolvedBy: Set<string>): void {
    byIp.set(ip, { expiresAt, resolvedBy, born: ++this.#generation, confirmed: false });
    this.#index(name, expiresAt);
    let names = this.#byIp.get(ip);
    if (!names) this.#byIp.set(ip, (names = new Set()));
    names.add(name);
  }

  #drop(name: string, byIp: Map<string, IpRecord>, ip: string): void {
    byIp.delete(ip);
    if (byIp.size === 0) this.#byName.delete(name);
    const names = this.#byIp.get(ip);
    if (names) {
      names.delete(name);
      if (names.size === 0) this.#byIp.delete(ip);
    }
  }

  #forgotten(name: string, ips: readonly string[]): void {
    if (ips.length === 0 || !this.#onForgotten) return;
    try {
      this.#onForgotten(name, ips);
    } catch {
      // A consumer's failure must not corrupt the cache; the datapath resyncs from ipsMatching().
    }
  }

  // ---- persistence -------------------------------------------------------

  /**
   * Loads the file written by a previous run, or another process's file
   * (missing file: nothing loaded).
   * Expired entries are loaded too: the next sweep keeps those whose
   * connections survived the restart and drops the rest. Returns how many
   * entries were loaded.
   */
  async load(file = this.#file): Promise<number> {
    if (!file) return 0;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let data: PersistedFile;
    try {
      data = JSON.parse(text) as PersistedFile;
    } catch {
      return 0; // a torn file cannot happen with rename, but a hand-edited one can: start empty
    }
    if (data?.version !== 1 || !Array.isArray(data.entries)) return 0;
    return this.restore(data.entries);
  }

  /**
   * Adds exported entries (a file's, or another process's cache) to this
   * cache, keeping the later expiry where both hold an address; returns how
   * many were well-formed.
   */
  restore(entries: readonly NameCacheEntry[]): number {
    let n = 0;
    for (const e of entries) {
      if (typeof e?.name !== 'string' || typeof e.ip !== 'string' || typeof e.expiresAt !== 'number') continue;
      let byIp = this.#byName.get(e.name);
      if (!byIp) this.#byName.set(e.name, (byIp = new Map()));
      const old = byIp.get(e.ip);
      const resolvedBy = Array.isArray(e.resolvedBy) ? e.resolvedBy.filter((p) => typeof p === 'string') : [];
      if (old) {
        this.#index(e.name, e.expiresAt);
        old.expiresAt = Math.max(old.expiresAt, e.expiresAt);
        for (const p of resolvedBy) old.resolvedBy.add(p);
      } else {
        this.#add(e.name, byIp, e.ip, e.expiresAt, new Set(resolvedBy));
      }
      n++;
    }
    return n;
  }

  /** Every address of every name with its absolute expiry: what restore() takes. */
  exportEntries(): NameCacheEntry[] {
    const out: NameCacheEntry[] = [];
    for (const [name, byIp] of this.#byName) {
      for (const [ip, r] of byIp) out.push({ name, ip, expiresAt: r.expiresAt, resolvedBy: [...r.resolvedBy] });
    }
    return out;
  }

  /** Writes the whole cache now: to `<file>.tmp`, then rename over `<file>` (atomic on one filesystem). */
  async save(): Promise<void> {
    if (!this.#file) return;
    if (this.#saving) await this.#saving.catch(() => {});
    this.#dirty = false;
    const data: PersistedFile = { version: 1, savedAt: this.#now(), entries: this.exportEntries() };
    const file = this.#file;
    const tmp = `${file}.${process.pid}.tmp`;
    this.#saving = (async () => {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(tmp, JSON.stringify(data), { mode: 0o600 });
      await rename(tmp, file);
    })();
    try {
      await this.#saving;
    } finally {
      this.#saving = undefined;
    }
  }

  #markDirty(): void {
    if (!this.#file || this.#closed) return;
    this.#dirty = true;
    if (this.#saveTimer) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      if (this.#dirty) void this.save().catch(() => (this.#dirty = true));
    }, this.#debounceMs);
    this.#saveTimer.unref();
  }

  /** Stops the save timer and writes pending changes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#saveTimer) clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    if (this.#dirty) await this.save();
    else if (this.#saving) await this.#saving.catch(() => {});
  }
}
