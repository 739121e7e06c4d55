/** FlowStore reads: last/first/since/until, follow with AbortSignal, lost events for a lapped follower. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envelope, isFlowEnvelope, makeFlow, type GetFlowsResponse } from './flow.ts';
import { FlowStore, type FlowQuery } from './store.ts';
import { FlowFilterError } from './filter.ts';
import { at } from '../../test/kit/flows.ts';

function fill(store: FlowStore, n: number, from = 0): void {
  for (let i = from; i < from + n; i++) {
    store.add(envelope(makeFlow({ time: at(i * 1000), verdict: i % 2 === 0 ? 'FORWARDED' : 'DROPPED', node_name: 'n1', uuid: `f${i}` })));
  }
}

async function collect(it: AsyncIterable<GetFlowsResponse>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of it) out.push(isFlowEnvelope(e) ? (e.flow.uuid as string) : `lost:${e.lost_events.num_events_lost}`);
  return out;
}

test('history queries: all, last N matching, first N, since/until', async () => {
  const store = new FlowStore({ nodeName: 'n1', capacity: 8 });
  fill(store, 12); // f4..f11 remain
  const cases: [string, FlowQuery, string[]][] = [
    ['all', {}, ['f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'f10', 'f11']],
    ['last 3', { last: 3 }, ['f9', 'f10', 'f11']],
    ['last 2 drops', { last: 2, whitelist: [{ verdict: ['DROPPED'] }] }, ['f9', 'f11']],
    ['first 2', { first: 2 }, ['f4', 'f5']],
    ['since', { since: at(9000) }, ['f9', 'f10', 'f11']],
    ['until', { until: at(5500) }, ['f4', 'f5']],
    ['since+until', { since: at(6000), until: at(7000) }, ['f6', 'f7']],
    ['blacklist', { blacklist: [{ verdict: ['DROPPED'] }], last: 2 }, ['f8', 'f10']],
  ];
  for (const [name, q, want] of cases) assert.deepEqual(await collect(store.query(q)), want, name);
  assert.deepEqual(store.status().num_flows, 8);
  assert.deepEqual(store.status().seen_flows, 12);
  assert.deepEqual(store.status().max_flows, 8);
});

test('a bad filter throws when the query is made, before anything streams', () => {
  const store = new FlowStore();
  assert.throws(() => store.query({ whitelist: [{ source_ip: ['nope'] }] }), FlowFilterError);
  assert.throws(() => store.query({ since: 'yesterday' }), FlowFilterError);
});

test('follow streams new matching flows until the signal aborts', async () => {
  const store = new FlowStore({ nodeName: 'n1' });
  fill(store, 3);
  const stop = new AbortController();
  const got: string[] = [];
  const done = (async () => {
    for await (const e of store.query({ follow: true, last: 1, signal: stop.signal, whitelist: [{ verdict: ['DROPPED'] }] })) {
      if (isFlowEnvelope(e)) got.push(e.flow.uuid as string);
    }
  })();
  await new Promise((r) => setImmediate(r));
  fill(store, 4, 3); // f3 (drop), f4, f5 (drop), f6
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['f1', 'f3', 'f5']);
  stop.abort();
  await done; // ends while waiting for the next flow
  fill(store, 2, 7);
  assert.deepEqual(got, ['f1', 'f3', 'f5']);
});

test('a follower lapped by the writer gets a lost-events envelope and the count is kept', async () => {
  const store = new FlowStore({ nodeName: 'n1', capacity: 4 });
  const stop = new AbortController();
  const it = store.query({ follow: true, signal: stop.signal })[Symbol.asyncIterator]();
  const first = it.next(); // parks the follower at the tail
  fill(store, 1);
  assert.equal(((await first).value as { flow: { uuid: string } }).flow.uuid, 'f0');
  fill(store, 10, 1); // f1..f10; ring holds f7..f10
  const rest: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = (await it.next()).value as GetFlowsResponse;
    rest.push(isFlowEnvelope(r) ? (r.flow.uuid as string) : `lost:${r.lost_events.num_events_lost}`);
  }
  assert.deepEqual(rest, ['lost:6', 'f7', 'f8', 'f9', 'f10']);
  assert.deepEqual(store.status().lost, { HUBBLE_RING_BUFFER: 6 });
  stop.abort();
  assert.equal((await it.next()).done, true);
});

test('listeners see every flow synchronously; producers report their own losses', () => {
  const store = new FlowStore({ nodeName: 'n1' });
  const seen: string[] = [];
  const off = store.onFlow((e) => seen.push(e.flow.uuid as string));
  fill(store, 2);
  off();
  fill(store, 1, 2);
  assert.deepEqual(seen, ['f0', 'f1']);
  store.recordLost('PERF_EVENT_RING_BUFFER', 5);
  assert.deepEqual(store.status().lost, { PERF_EVENT_RING_BUFFER: 5 });
  const e = store.addFlow(makeFlow({ verdict: 'FORWARDED' }));
  assert.equal(e.node_name, 'n1');
  assert.equal(e.flow.node_name, 'n1');
});
