/**
 * Supervisor with a stand-in agent (this test fakes one boundary: the
 * agent is `sleep` or `false`, real processes that are killed or exit).
 */
import { test } from 'node:test';
import { within } from '../../test/kit/wait.ts';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Supervisor, restartDelayMs, type Restarts } from './supervisor.ts';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};


test('restart delays: none after a healthy run, then 250 ms doubling to 10 s for runs that end quickly', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 10].map(restartDelayMs), [0, 250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
});

test('an agent killed with SIGKILL is started again at once, and the restart is recorded with its signal', async () => {
  const pids: number[] = [];
  const records: Restarts[] = [];
  const sup = new Supervisor({
    spawnChild: () => spawn('sleep', ['30'], { stdio: 'ignore' }),
    onStart: (pid) => pids.push(pid),
    onRecord: (r) => records.push(structuredClone(r)),
    healthyRunMs: 0, // every run counts as healthy: no backoff
  });
  sup.start();
  try {
    await within(5000, 'first agent', () => pids.length > 0);
    const first = pids[0]!;
    process.kill(first, 'SIGKILL');
    await within(5000, 'second agent', () => pids.length > 1);
    const second = pids[1]!;
    assert.notEqual(second, first);
    assert.ok(alive(second));
    assert.equal(records.length, 1);
    assert.equal(records[0]!.restarts, 1);
    assert.equal(records[0]!.lastExit?.signal, 'SIGKILL');
    assert.equal(records[0]!.backoffUntil, undefined, 'a healthy agent is restarted without waiting');
    assert.equal(sup.pid, second);
  } finally {
    await sup.stop();
  }
  assert.equal(sup.pid, undefined);
  for (const pid of pids) assert.equal(alive(pid), false, `agent ${pid} is gone after stop()`);
});

test('an agent that keeps exiting at once is restarted with growing backoff, not in a tight loop', async () => {
  const starts: number[] = [];
  const records: Restarts[] = [];
  const sup = new Supervisor({
    spawnChild: () => spawn('false', [], { stdio: 'ignore' }),
    onStart: () => starts.push(performance.now()),
    onRecord: (r) => records.push(structuredClone(r)),
  });
  sup.start();
  try {
    await within(5000, 'four starts', () => starts.length >= 4);
  } finally {
    await sup.stop();
  }
  const gaps = starts.slice(1, 4).map((t, i) => t - starts[i]!);
  // Waits of 250, 500 and 1000 ms (plus the run itself) between starts.
  for (const [i, min] of [250, 500, 1000].entries()) assert.ok(gaps[i]! >= min, `gap ${i + 1} is ${gaps[i]!.toFixed(0)} ms, at least ${min}`);
  assert.equal(records[0]!.lastExit?.code, 1);
  assert.ok(records.every((r) => r.backoffUntil !== undefined), 'every quick exit waits out a backoff');
  const n = starts.length;
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(starts.length, n, 'nothing starts after stop()');
});
