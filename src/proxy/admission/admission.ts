/**
 * Which client connections a proxy takes on (the HTTP proxy, and the DNS
 * proxy's TCP side): at most `maxConnectionsPerSource` open at once from one
 * source address (one pod), and at most `maxConnections` in all.
 *
 *   accepted socket ──► admit(source ip) ──no──► reset at once (counted: per-source or total)
 *                              │ yes
 *                              ▼
 *                       the proxy's handler ── 'close' ──► release(source ip)
 *
 * Every phase of a connection has a deadline, but a deadline bounds how long,
 * not how many: a pod opening connections faster than they expire would
 * otherwise take every descriptor of the process the proxies run in — the
 * agent, whose other proxy and API need descriptors too. The total is
 * therefore set well below the process's descriptor limit (each connection
 * can hold two: client and upstream), and the per-source limit keeps one pod
 * from using up the total for the others.
 *
 * Example: new ConnectionAdmission({ maxConnectionsPerSource: 512, maxConnections: 4096 }).
 */
export interface AdmissionLimits {
  /** Connections open at once from one source address. */
  maxConnectionsPerSource: number;
  /** Connections open at once in all. */
  maxConnections: number;
}

/** The HTTP proxy's limits (the agent's httpProxy settings override them). */
export const DEFAULT_ADMISSION: Readonly<AdmissionLimits> = Object.freeze({
  maxConnectionsPerSource: 512,
  maxConnections: 4096,
});

export interface AdmissionStats extends AdmissionLimits {
  /** Connections open now. */
  open: number;
  /** Source addresses with a connection open now. */
  sources: number;
  /** Connections reset because their source had maxConnectionsPerSource open. */
  refusedPerSource: number;
  /** Connections reset because maxConnections were open. */
  refusedTotal: number;
}

export class ConnectionAdmission {
  readonly limits: Readonly<AdmissionLimits>;
  readonly #perSource = new Map<string, number>();
  #open = 0;
  #refusedPerSource = 0;
  #refusedTotal = 0;

  constructor(limits: Partial<AdmissionLimits> = {}) {
    const l = { ...DEFAULT_ADMISSION, ...limits };
    for (const [k, v] of Object.entries(l)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`connection admission: ${k} must be a whole number ≥ 1, not ${v}`);
    }
    this.limits = Object.freeze(l);
  }

  /** Takes a slot for a connection from `source`; false (and counted) when a limit is reached. */
  admit(source: string): boolean {
    if (this.#open >= this.limits.maxConnections) {
      this.#refusedTotal++;
      return false;
    }
    const n = this.#perSource.get(source) ?? 0;
    if (n >= this.limits.maxConnectionsPerSource) {
      this.#refusedPerSource++;
      return false;
    }
    this.#perSource.set(source, n + 1);
    this.#open++;
    return true;
  }

  /** Gives back the slot of an admitted connection from `source` (once, when it closed). */
  release(source: string): void {
    const n = this.#perSource.get(source);
    if (n === undefined) return;
    if (n <= 1) this.#perSource.delete(source);
    else this.#perSource.set(source, n - 1);
    this.#open--;
  }

  stats(): AdmissionStats {
    return {
      ...this.limits,
      open: this.#open,
      sources: this.#perSource.size,
      refusedPerSource: this.#refusedPerSource,
      refusedTotal: this.#refusedTotal,
    };
  }
}
