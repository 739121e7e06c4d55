/**
 * A node's flows: the ring plus the reads Hubble's observer serves from it
 * (pkg/hubble/observer: GetFlows with number/first/since/until/follow).
 *
 *   producers ─► add(envelope) ─► ring ─┬─► listeners (metrics, flow log), synchronously
 *                                       └─► query(): history, then follow
 *
 * add() is the hot path: one time parse (cached seconds prefix), one ring
 * push, the listeners, and a wake-up only when a follower is waiting. A
 * follower that falls a whole ring behind gets a LostEvent envelope saying how
 * many it missed, as Hubble's ring reader does, and the count goes under
 * HUBBLE_RING_BUFFER.
 */
import { compileFilters, FlowFilterError, type FlowFilter } from './filter.ts';
import {
  envelope,
  formatFlowTime,
  nowMs,
  parseFlowTime,
  type Flow,
  type FlowEnvelope,
  type GetFlowsResponse,
  type LostEventSource,
  type LostEventsEnvelope,
} from './flow.ts';
import { DEFAULT_RING_CAPACITY, FlowRing } from './ring-buffer.ts';

export interface FlowQuery {
  whitelist?: readonly FlowFilter[];
  blacklist?: readonly FlowFilter[];
  /** The last N matching flows (Hubble's `number`). */
  last?: number;
  /** The first N matching flows still in the ring (Hubble's `first`). */
  first?: number;
  /** RFC 3339. */
  since?: string;
  until?: string;
  /** After the history, stream new flows until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
}

/** Hubble's ServerStatusResponse fields, plus lost events by source. */
export interface FlowStoreStatus {
  node_name: string;
  num_flows: number;
  max_flows: number;
  seen_flows: number;
  uptime_ns: number;
  lost: Record<string, number>;
}

/** Called synchronously for every added flow. Must not throw and must not call add() (no re-entry). */
export type FlowListener = (e: FlowEnvelope) => void;

export interface FlowStoreOptions {
  nodeName?: string;
  /** Ring capacity; rounded up to a power of two. Default 8,192. */
  capacity?: number;
}

export class FlowStore {
  readonly nodeName: string;
  readonly #ring: FlowRing<FlowEnvelope>;
  readonly #startedMs = nowMs();
  #listeners: FlowListener[] = [];
  /** Followers waiting for the next add; swapped out (not cleared) on wake. */
  #waiters: (() => void)[] = [];

  constructor(opts: FlowStoreOptions = {}) {
    this.nodeName = opts.nodeName ?? '';
    this.#ring = new FlowRing<FlowEnvelope>(opts.capacity ?? DEFAULT_RING_CAPACITY);
  }

  add(e: FlowEnvelope): void {
    let t = parseFlowTime(e.time);
    if (t !== t) t = nowMs(); // NaN: a producer sent a bad time; keep the flow, order it by arrival
    this.#ring.push(e, t);
    const ls = this.#listeners;
    for (let i = 0; i < ls.length; i++) (ls[i] as FlowListener)(e);
    if (this.#waiters.length > 0) {
      const ws = this.#waiters;
      this.#waiters = [];
      for (const w of ws) w();
    }
  }

  /** Wraps a flow in this node's envelope and adds it. */
  addFlow(flow: Flow): FlowEnvelope {
    flow.node_name ??= this.nodeName;
    const e = envelope(flow, this.nodeName);
    this.add(e);
    return e;
  }

  /** Producers report events they dropped before the ring (full perf buffer, full queue). */
  recordLost(source: LostEventSource, n = 1): void {
    this.#ring.recordLost(source, n);
  }

  onFlow(listener: FlowListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => { this.#listeners = this.#listeners.filter((l) => l !== listener); };
  }

  status(): FlowStoreStatus {
    return {
      node_name: this.nodeName,
      num_flows: this.#ring.size,
      max_flows: this.#ring.capacity,
      seen_flows: this.#ring.written,
      uptime_ns: Math.round((nowMs() - this.#startedMs) * 1e6),
      lost: this.#ring.lost(),
    };
  }

  /**
   * Flows matching the query, oldest first. Filters are compiled here, so a
   * bad filter throws (FlowFilterError) before anything is streamed.
   */
  query(q: FlowQuery = {}): AsyncIterable<GetFlowsResponse> {
    const pred = compileFilters(q.whitelist, q.blacklist);
    const sinceMs = q.since !== undefined ? parseTimeOrThrow('since', q.since) : -Infinity;
    const untilMs = q.until !== undefined ? parseTimeOrThrow('until', q.until) : Infinity;
    return this.#read(q, (e) => pred(e.flow), sinceMs, untilMs);
  }

  async *#read(q: FlowQuery, matches: (e: FlowEnvelope) => boolean, sinceMs: number, untilMs: number): AsyncGenerator<GetFlowsResponse> {
    const ring = this.#ring;
    const signal = q.signal;
    const end = ring.written; // history is what was there when the query came
    const inRange = (s: number): boolean => { const t = ring.timeAt(s); return t >= sinceMs && t <= untilMs; };

    // 1. History. `last` walks backwards collecting matches (then replays them
    //    forwards); otherwise — all, `first`, or `since` — walk forwards. A
    //    follow without since/last/first starts at the tail, as Hubble does.
    if (q.last !== undefined && q.last > 0) {
      const seqs: number[] = [];
      for (let s = end - 1; s >= ring.oldest && seqs.length < q.last; s--) {
        const e = ring.at(s);
        if (e !== undefined && inRange(s) && matches(e)) seqs.push(s);
      }
      for (let i = seqs.length - 1; i >= 0; i--) {
        const e = ring.at(seqs[i] as number);
        if (e !== undefined) yield e; // overwritten while we were yielding: skipped (counted below when following)
        if (signal?.aborted) return;
      }
    } else if (!q.follow || q.since !== undefined || (q.first ?? 0) > 0) {
      let left = q.first !== undefined && q.first > 0 ? q.first : Infinity;
      for (let s = ring.firstSince(sinceMs); s < end && left > 0; s++) {
        if (s < ring.oldest) {
          yield this.#lost(ring.oldest - s);
          s = ring.oldest;
          if (s >= end) break;
        }
        const e = ring.at(s) as FlowEnvelope;
        if (inRange(s) && matches(e)) {
          left--;
          yield e;
          if (signal?.aborted) return;
        }
      }
    }
    if (!q.follow) return;

    // 2. Follow: everything pushed since `end`, then wait for the next push.
    let cursor = end;
    let wake: (() => void) | null = null;
    const onAbort = (): void => wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal?.aborted) {
        while (cursor < ring.written) {
          if (cursor < ring.oldest) {
            const n = ring.oldest - cursor;
            cursor = ring.oldest;
            yield this.#lost(n);
            continue;
          }
          const e = ring.at(cursor) as FlowEnvelope;
          const t = ring.timeAt(cursor);
          cursor++;
          if (t > untilMs) return;
          if (t >= sinceMs && matches(e)) {
            yield e;
            if (signal?.aborted) return;
          }
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.#waiters.push(resolve);
        });
        wake = null;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (wake !== null) {
        const w: () => void = wake;
        this.#waiters = this.#waiters.filter((x) => x !== w);
      }
    }
  }

  /** A reader fell n events behind the writer: count them and tell the reader. */
  #lost(n: number): LostEventsEnvelope {
    this.#ring.recordLost('HUBBLE_RING_BUFFER', n);
    const time = formatFlowTime(nowMs());
    return { lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: n }, node_name: this.nodeName, time };
  }
}

function parseTimeOrThrow(field: string, s: string): number {
  const t = parseFlowTime(s);
  if (Number.isNaN(t)) throw new FlowFilterError(`${field}: ${JSON.stringify(s)} is not an RFC 3339 time`);
  return t;
}
