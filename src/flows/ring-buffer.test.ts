/** The ring: power-of-two capacity, wrap-around, last N, time ranges, lost counts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowRing } from './ring-buffer.ts';

test('capacity rounds up to a power of two; the default is 8,192', () => {
  const cases: [number | undefined, number][] = [[undefined, 8192], [1, 1], [3, 4], [8, 8], [1000, 1024]];
  for (const [asked, want] of cases) assert.equal(new FlowRing(asked).capacity, want, String(asked));
  assert.throws(() => new FlowRing(0));
});

test('wrap-around keeps the newest `capacity` items, in order', () => {
  const ring = new FlowRing<number>(4);
  for (let i = 0; i < 10; i++) ring.push(i, 1000 + i);
  assert.equal(ring.written, 10);
  assert.equal(ring.size, 4);
  assert.equal(ring.oldest, 6);
  assert.deepEqual([...ring.last(100)], [6, 7, 8, 9]);
  assert.deepEqual([...ring.last(2)], [8, 9]);
  assert.equal(ring.at(5), undefined, 'overwritten');
  assert.equal(ring.at(10), undefined, 'not yet written');
  assert.equal(ring.at(7), 7);
  assert.deepEqual([...ring.range(1007, 1008)], [7, 8]);
  assert.deepEqual([...ring.range()], [6, 7, 8, 9]);
  assert.equal(ring.firstSince(1008), 8);
  assert.equal(ring.firstSince(5000), 10);
});

test('lost events are counted per source', () => {
  const ring = new FlowRing<number>(2);
  ring.recordLost('PERF_EVENT_RING_BUFFER', 3);
  ring.recordLost('PERF_EVENT_RING_BUFFER');
  ring.recordLost('HUBBLE_RING_BUFFER', 7);
  assert.deepEqual(ring.lost(), { PERF_EVENT_RING_BUFFER: 4, HUBBLE_RING_BUFFER: 7 });
});
