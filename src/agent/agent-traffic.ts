/**
 * Forwarded bytes per workload pair, from the datapath's per-address
 * counters (Datapath.readTraffic): what the heat maps and
 * palisade_traffic_*_total show. Flow records cannot say this: each is one
 * decision, not a byte count.
 *
 *   datapath.readTraffic() every 5 s (and on a scrape, at most once a second)
 *     ─► deltas per address pair ─► addresses named as flows name them (pods, world, host)
 *     ─► cumulative totals per workload pair ─► GET /v1/traffic, palisade_traffic_*_total
 *
 * The kernel's counters are cumulative per address pair but bounded (a pair
 * can be evicted and come back from zero), and pods come and go with their
 * addresses; the totals here only grow: each reading adds what grew since
 * the last one, and a pair missing from a reading starts again from its
 * next value.
 */
import type { Datapath, TrafficCounter } from '../datapath/index.ts';
import type { FlowMetrics, WorkloadPairTotals, WorkloadRef } from '../flows/index.ts';
import { endpointOf, type FlowContext } from './flow-events.ts';

const POLL_MS = 5000;
/** A scrape reads afresh only when the last reading is older than this. */
const FRESH_MS = 1000;
/** Workload pairs kept; the counters of pods long gone would otherwise pile up. */
const MAX_PAIRS = 65_536;

export class TrafficTracker {
  readonly #datapath: Datapath;
  readonly #ctx: FlowContext;
  readonly #metrics: FlowMetrics;
  /** The last reading per address pair (`source>destination`). */
  #last = new Map<string, TrafficCounter>();
  readonly #totals = new Map<string, WorkloadPairTotals>();
  #readAt = 0;
  #reading: Promise<void> | null = null;
  #timer: NodeJS.Timeout | undefined;
  /** Addresses are named from the policy snapshot: read nothing before the agent has one (start()). */
  #started = false;

  /** `metrics` names workloads (its labels' rule) and publishes the totals as palisade_traffic_*_total. */
  constructor(datapath: Datapath, ctx: FlowContext, metrics: FlowMetrics) {
    this.#datapath = datapath;
    this.#ctx = ctx;
    this.#metrics = metrics;
    metrics.trackTraffic(() => this.totals());
  }

  /** Polls every 5 s until stop(); failures are logged by `onError` and the next poll tries again. */
  start(onError: (err: unknown) => void): void {
    this.#started = true;
    // The timer only catches counts before the kernel lets pairs go: skipped when a reader (a scrape, the UI) read recently.
    this.#timer ??= setInterval(() => {
      if (performance.now() - this.#readAt >= POLL_MS - FRESH_MS) void this.poll().catch(onError);
    }, POLL_MS);
    this.#timer.unref();
  }

  stop(): void {
    this.#started = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Cumulative totals per workload pair, read at most a second ago. */
  async totals(): Promise<WorkloadPairTotals[]> {
    // A failed reading serves the last totals: a scrape must not fail whole for it (the 5 s poll logs the error).
    if (this.#started && performance.now() - this.#readAt >= FRESH_MS) await this.poll().catch(() => undefined);
    return [...this.#totals.values()];
  }

  /** One reading of the kernel's counters folded into the totals (concurrent callers share it). */
  poll(): Promise<void> {
    this.#reading ??= this.#read().finally(() => (this.#reading = null));
    return this.#reading;
  }

  async #read(): Promise<void> {
    const counters = await this.#datapath.readTraffic();
    this.#readAt = performance.now();
    const snap = this.#ctx.snapshot();
    const next = new Map<string, TrafficCounter>();
    for (const c of counters) {
      const key = `${c.source}>${c.destination}`;
      next.set(key, c);
      const prev = this.#last.get(key);
      // Smaller than before: evicted and counted again from zero in between.
      const grown = prev !== undefined && c.bytes >= prev.bytes && c.packets >= prev.packets;
      const packets = grown ? c.packets - prev.packets : c.packets;
      const bytes = grown ? c.bytes - prev.bytes : c.bytes;
      if (packets === 0 && bytes === 0) continue;
      const source = this.#metrics.workloadOf(endpointOf(this.#ctx, snap, c.source));
      const destination = this.#metrics.workloadOf(endpointOf(this.#ctx, snap, c.destination));
      this.#add(source, destination, packets, bytes);
    }
    this.#last = next;
  }

  #add(source: WorkloadRef, destination: WorkloadRef, packets: number, bytes: number): void {
    const key = `${source.namespace}\0${source.workload}\0${destination.namespace}\0${destination.workload}`;
    const t = this.#totals.get(key);
    if (t) {
      t.packets += packets;
      t.bytes += bytes;
      return;
    }
    if (this.#totals.size >= MAX_PAIRS) {
      // The oldest pair makes room (Map keeps insertion order); a reader sees its series end.
      const oldest = this.#totals.keys().next().value;
      if (oldest !== undefined) this.#totals.delete(oldest);
    }
    this.#totals.set(key, { source, destination, packets, bytes });
  }
}
