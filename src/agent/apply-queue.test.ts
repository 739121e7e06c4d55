// The apply queue against a fake datapath boundary: `run` stands in for
// datapath.apply, and each call waits until the test finishes it. No kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplyQueue } from './apply-queue.ts';

/** A fake datapath: records each apply with the state it saw, finishes it when told. */
function fakeDatapath() {
  let state = 0;
  let running = 0;
  let maxRunning = 0;
  const applies: { saw: number; done: PromiseWithResolvers<void> }[] = [];
  return {
    applies,
    get maxRunning() {
      return maxRunning;
    },
    change: () => void state++,
    run: async (): Promise<number> => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const a = { saw: state, done: Promise.withResolvers<void>() };
      applies.push(a);
      try {
        await a.done.promise;
      } finally {
        running--;
      }
      return a.saw;
    },
  };
}

const settle = () => sleep(1);

test('applies run one at a time, in order', async () => {
  const dp = fakeDatapath();
  const q = new ApplyQueue({ run: dp.run, onError: assert.fail });
  const first = q.apply();
  await settle();
  dp.change();
  const second = q.apply();
  await settle();
  assert.equal(dp.applies.length, 1, 'the second apply waits for the first');
  dp.applies[0]!.done.resolve();
  assert.equal(await first, 0);
  await settle();
  assert.equal(dp.applies.length, 2);
  dp.applies[1]!.done.resolve();
  assert.equal(await second, 1, 'the second apply saw the change made before it was asked for');
  assert.equal(dp.maxRunning, 1);
  assert.equal(q.applied, 2);
});

test('callers waiting at once share the next apply, which starts after every one of their calls', async () => {
  const dp = fakeDatapath();
  const q = new ApplyQueue({ run: dp.run, onError: assert.fail });
  const running = q.apply();
  await settle();
  // Three callers change state while an apply runs: that apply predates their changes.
  const waiting: Promise<number>[] = [];
  for (let i = 0; i < 3; i++) {
    dp.change();
    waiting.push(q.apply());
  }
  assert.equal(waiting[0], waiting[2], 'one promise for all three');
  dp.applies[0]!.done.resolve();
  assert.equal(await running, 0);
  await settle();
  assert.equal(dp.applies.length, 2, 'one more apply, not three');
  dp.applies[1]!.done.resolve();
  assert.deepEqual(await Promise.all(waiting), [3, 3, 3], 'each caller\'s change is in the apply it waited for');
});

test('a burst of scheduled applies is coalesced into one, and nothing is scheduled before startScheduling', async () => {
  const dp = fakeDatapath();
  const q = new ApplyQueue({ run: dp.run, onError: assert.fail, coalesceMs: 20 });
  q.schedule();
  await sleep(40);
  assert.equal(dp.applies.length, 0, 'scheduling has not started');
  q.startScheduling();
  for (let i = 0; i < 10; i++) {
    dp.change();
    q.schedule();
  }
  await sleep(60);
  assert.equal(dp.applies.length, 1);
  assert.equal(dp.applies[0]!.saw, 10);
  dp.applies[0]!.done.resolve();
});

test('a failed apply rejects its callers; the next apply runs; a scheduled failure is reported', async () => {
  let fail = true;
  const errors: unknown[] = [];
  const q = new ApplyQueue({
    run: async () => {
      if (fail) throw new Error('nft: transaction failed');
      return 'ok';
    },
    onError: (err) => errors.push(err),
    coalesceMs: 1,
  });
  await assert.rejects(q.apply(), /transaction failed/);
  q.startScheduling();
  q.schedule();
  await sleep(20);
  assert.equal(errors.length, 1);
  fail = false;
  assert.equal(await q.apply(), 'ok');
  assert.equal(q.applied, 1);
});
