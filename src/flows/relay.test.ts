/** relayFlows: k-way time merge for history (with last N overall), interleaving for follow, failing nodes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envelope, isFlowEnvelope, makeFlow, type GetFlowsResponse } from './flow.ts';
import { relayFlows, type FlowSource } from './relay.ts';
import { at } from '../../test/kit/flows.ts';

function staticSource(node: string, times: number[]): FlowSource {
  return {
    node,
    async *fetch() {
      for (const t of times) {
        await new Promise((r) => setImmediate(r));
        yield envelope(makeFlow({ time: at(t), verdict: 'FORWARDED', uuid: `${node}@${t}` }), node);
      }
    },
  };
}

const ids = async (it: AsyncIterable<GetFlowsResponse>): Promise<string[]> => {
  const out: string[] = [];
  for await (const e of it) out.push(isFlowEnvelope(e) ? (e.flow.uuid as string) : 'lost');
  return out;
};

test('history from several nodes comes out in time order', async () => {
  const sources = [staticSource('a', [1, 4, 7]), staticSource('b', [2, 3, 9]), staticSource('c', []), staticSource('d', [5])];
  const signal = new AbortController().signal;
  assert.deepEqual(await ids(relayFlows(sources, '', { signal })), ['a@1', 'b@2', 'b@3', 'a@4', 'd@5', 'a@7', 'b@9']);
  assert.deepEqual(await ids(relayFlows(sources, '', { signal, last: 3 })), ['d@5', 'a@7', 'b@9']);
});

test('a failing node is reported and the others carry on', async () => {
  const broken: FlowSource = { node: 'x', fetch: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('connect ENOENT')) }) }) };
  const errors: string[] = [];
  const got = await ids(relayFlows([staticSource('a', [1, 2]), broken], '', { signal: new AbortController().signal, onError: (n, e) => errors.push(`${n}: ${(e as Error).message}`) }));
  assert.deepEqual(got, ['a@1', 'a@2']);
  assert.deepEqual(errors, ['x: connect ENOENT']);
  await assert.rejects(ids(relayFlows([broken], '', { signal: new AbortController().signal })), /ENOENT/);
});

test('follow interleaves flows as they arrive and ends on abort', async () => {
  const stop = new AbortController();
  const live = (node: string, delays: number[]): FlowSource => ({
    node,
    async *fetch(_q, signal) {
      for (const [i, d] of delays.entries()) {
        await new Promise((r) => setTimeout(r, d));
        if (signal.aborted) return;
        yield envelope(makeFlow({ time: at(i), verdict: 'FORWARDED', uuid: `${node}${i}` }), node);
      }
      await new Promise((r) => signal.addEventListener('abort', r)); // a follower never ends by itself
    },
  });
  const got: string[] = [];
  for await (const e of relayFlows([live('a', [5, 40]), live('b', [20, 40])], '', { follow: true, signal: stop.signal })) {
    if (isFlowEnvelope(e)) got.push(e.flow.uuid as string);
    if (got.length === 4) stop.abort();
  }
  // Arrival order: a0 (5 ms), b0 (20 ms), a1 (45 ms), b1 (60 ms).
  assert.deepEqual(got, ['a0', 'b0', 'a1', 'b1']);
});
