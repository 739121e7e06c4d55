/**
 * Flows of several nodes as one stream, as Hubble Relay serves them:
 *
 *   node A ─┐                      history (no follow): k-way merge by time,
 *   node B ─┼─► relayFlows() ──►   then the last N overall when `last` is set
 *   node C ─┘                      follow: interleaved as they arrive
 *
 * Each node's stream is already in time order (its ring is), so the merge only
 * compares the heads. A node that fails is reported through `onError` and
 * leaves the merge; the others carry on (Relay marks it NODE_UNAVAILABLE).
 */
import { parseFlowTime, type GetFlowsResponse } from './flow.ts';
import type { FlowStoreStatus } from './store.ts';

/** Where the relay (and `palisade observe`) gets one node's flows. */
export interface FlowSource {
  node: string;
  /** `query` is a /v1/flows query string (query-params.ts). */
  fetch(query: string, signal: AbortSignal): AsyncIterable<GetFlowsResponse>;
  status?(signal?: AbortSignal): Promise<FlowStoreStatus>;
}

export interface RelayOptions {
  follow?: boolean;
  /** Keep only the last N of the merged history (each node already sent at most N). */
  last?: number;
  signal: AbortSignal;
  /** A node failed; without this the error ends the whole stream. */
  onError?: (node: string, err: unknown) => void;
}

export function relayFlows(sources: readonly FlowSource[], query: string, opts: RelayOptions): AsyncIterable<GetFlowsResponse> {
  const streams = sources.map((s) => guard(s.node, () => s.fetch(query, opts.signal), opts.onError));
  return opts.follow ? interleave(streams, opts.signal) : mergeByTime(streams, opts.last);
}

// fetch is called inside, so a source that throws at once fails like one that fails later.
async function* guard(node: string, fetch: () => AsyncIterable<GetFlowsResponse>, onError?: (node: string, err: unknown) => void): AsyncGenerator<GetFlowsResponse> {
  try {
    yield* fetch();
  } catch (err) {
    if (onError === undefined) throw err;
    onError(node, err);
  }
}

interface Head {
  it: AsyncIterator<GetFlowsResponse>;
  value: GetFlowsResponse;
  t: number;
}

/** k-way merge of time-ordered streams (k is the node count: a linear scan of heads beats a heap). */
export async function* mergeByTime(streams: readonly AsyncIterable<GetFlowsResponse>[], last?: number): AsyncGenerator<GetFlowsResponse> {
  const heads: Head[] = [];
  const pull = async (it: AsyncIterator<GetFlowsResponse>): Promise<Head | null> => {
    const r = await it.next();
    return r.done === true ? null : { it, value: r.value, t: parseFlowTime(r.value.time) };
  };
  for (const h of await Promise.all(streams.map((s) => pull(s[Symbol.asyncIterator]())))) if (h !== null) heads.push(h);
  // With `last`, the tail of the merge is kept in a small ring and emitted at the end.
  const keep = last !== undefined && last > 0 ? last : 0;
  const tail: GetFlowsResponse[] = [];
  let tailStart = 0;
  while (heads.length > 0) {
    let min = 0;
    for (let i = 1; i < heads.length; i++) if ((heads[i] as Head).t < (heads[min] as Head).t) min = i;
    const h = heads[min] as Head;
    if (keep === 0) yield h.value;
    else if (tail.length < keep) tail.push(h.value);
    else {
      tail[tailStart] = h.value;
      tailStart = (tailStart + 1) % keep;
    }
    const next = await pull(h.it);
    if (next === null) heads.splice(min, 1);
    else heads[min] = next;
  }
  for (let i = 0; i < tail.length; i++) yield tail[(tailStart + i) % tail.length] as GetFlowsResponse;
}

/** Follow: whatever any node sends next. Each pump waits while the consumer is behind (bounded queue). */
export async function* interleave(streams: readonly AsyncIterable<GetFlowsResponse>[], signal: AbortSignal): AsyncGenerator<GetFlowsResponse> {
  const HIGH_WATER = 1024;
  const queue: GetFlowsResponse[] = [];
  let failure: { err: unknown } | null = null;
  let running = streams.length;
  let notifyConsumer: (() => void) | null = null;
  let notifyPumps: (() => void)[] = [];
  const wakeConsumer = (): void => { const n = notifyConsumer; notifyConsumer = null; n?.(); };
  const wakePumps = (): void => { const ps = notifyPumps; notifyPumps = []; for (const p of ps) p(); };
  signal.addEventListener('abort', () => { wakeConsumer(); wakePumps(); }, { once: true });

  const pump = async (s: AsyncIterable<GetFlowsResponse>): Promise<void> => {
    try {
      for await (const e of s) {
        queue.push(e);
        wakeConsumer();
        while (queue.length >= HIGH_WATER && !signal.aborted) await new Promise<void>((r) => notifyPumps.push(r));
        if (signal.aborted) return;
      }
    } catch (err) {
      failure ??= { err };
    } finally {
      running--;
      wakeConsumer();
    }
  };
  for (const s of streams) void pump(s);

  let head = 0;
  while (true) {
    if (failure !== null) throw (failure as { err: unknown }).err;
    if (head < queue.length) {
      const e = queue[head++] as GetFlowsResponse;
      if (head > 512) { queue.splice(0, head); head = 0; wakePumps(); } // compact now and then, not per item
      yield e;
      continue;
    }
    queue.length = 0;
    head = 0;
    wakePumps();
    if (running === 0 || signal.aborted) return;
    await new Promise<void>((r) => { notifyConsumer = r; });
  }
}
