/**
 * Ingest micro-benchmark (no test runner): how many FlowStore.add() per
 * second one core sustains, and CPU µs per 10,000 events, in three cases:
 *
 *   bare       add() of prebuilt envelopes (the store's own cost)
 *   +follower  the same with a filtered follower draining the ring
 *   +metrics   the same with FlowMetrics.observeFlow as a listener
 *
 * Also reports the longest event-loop stall while producing in batches of
 * 1,000 per macrotask (what a socket-fed producer would do).
 *
 *   node bench/flows/ingest.ts [events=1000000]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { envelope, formatFlowTime, type FlowEnvelope } from '../../src/flows/flow.ts';
import { FlowMetrics } from '../../src/flows/metrics.ts';
import { FlowStore } from '../../src/flows/store.ts';
import { allowFlow, dnsFlow, dropFlow, httpFlow, worldFlow } from '../../test/kit/flows.ts';

const N = Number(process.argv[2] ?? 1_000_000);

// Prebuilt records with advancing times (one per µs): producers build the
// record; the store's cost is what we measure.
function records(n: number): FlowEnvelope[] {
  const makers = [dropFlow, allowFlow, httpFlow, dnsFlow, worldFlow];
  const base = Date.parse('2024-11-26T06:41:00Z');
  const out: FlowEnvelope[] = [];
  for (let i = 0; i < n; i++) out.push(envelope((makers[i % makers.length] as (t: string) => ReturnType<typeof dropFlow>)(formatFlowTime(base + i / 1000))));
  return out;
}

async function run(name: string, setup: (store: FlowStore) => () => void): Promise<void> {
  const recs = records(Math.min(N, 200_000));
  const store = new FlowStore({ nodeName: 'bench' });
  const teardown = setup(store);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let done = 0; done < N; ) {
    const end = Math.min(N, done + 1000);
    for (let i = done; i < end; i++) store.add(recs[i % recs.length] as FlowEnvelope);
    done = end;
    await new Promise<void>((r) => setImmediate(r)); // let followers and timers run, as real sockets would
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  delay.disable();
  teardown();
  const cpuUs = cpu.user + cpu.system;
  console.log(
    `${name.padEnd(10)} ${Math.round(N / (wallMs / 1000)).toLocaleString('en-US').padStart(12)} events/s   ` +
      `${((cpuUs / N) * 10_000).toFixed(0).padStart(6)} µs CPU / 10k events   max loop stall ${(delay.max / 1e6).toFixed(1)} ms`,
  );
}

await run('bare', () => () => {});
await run('+follower', (store) => {
  const stop = new AbortController();
  let seen = 0;
  void (async () => {
    for await (const e of store.query({ follow: true, signal: stop.signal, whitelist: [{ verdict: ['DROPPED'] }] })) if (e) seen++;
  })();
  return () => { stop.abort(); console.log(`           follower saw ${seen.toLocaleString('en-US')} drops`); };
});
await run('+metrics', (store) => {
  const metrics = new FlowMetrics();
  return store.onFlow((e) => metrics.observeFlow(e));
});
