// The FQDN mirror against a fake datapath boundary: `apply` stands in for the
// apply queue (it asks fqdnIps as datapath.apply would). No kernel, no proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { compileFqdnSelector } from '../fqdn/index.ts';
import { FqdnMirror } from './fqdn-mirror.ts';

function mirrorWithFakeDatapath() {
  const selectors = [compileFqdnSelector({ matchPattern: '*.example.com' })];
  let applies = 0;
  let scheduled = 0;
  const kernel: { ips: ReadonlySet<string> } = { ips: new Set() };
  const apply = async (): Promise<void> => {
    applies++;
    const a = mirror.forApply();
    kernel.ips = a.fqdnIps(selectors);
    a.installed();
  };
  const mirror: FqdnMirror = new FqdnMirror({ fqdn: undefined, apply, schedule: () => void scheduled++ });
  return { mirror, kernel, apply, applies: () => applies, scheduled: () => scheduled };
}

test('a learned address is confirmed only after the first apply, and re-applies when a selector lacks it', async () => {
  const w = mirrorWithFakeDatapath();
  const h = w.mirror.linkHandlers();
  let confirmed = false;
  const learned = h.learned('10.244.1.5', 'api.example.com.', ['192.0.2.7'], 60).then(() => void (confirmed = true));
  await sleep(10);
  assert.equal(confirmed, false, 'no confirmation before the first apply');
  // The agent's first apply takes in what was learned before it.
  await w.apply();
  assert.deepEqual([...w.kernel.ips], ['192.0.2.7']);
  w.mirror.firstApplied();
  await learned;
  assert.equal(confirmed, true);
  assert.equal(w.applies(), 1, 'the kernel had the address already: no second apply');
  // A new address for a matching name: one apply, after which the kernel has it.
  await h.learned('10.244.1.5', 'api.example.com.', ['192.0.2.8'], 60);
  assert.equal(w.applies(), 2);
  assert.ok(w.kernel.ips.has('192.0.2.8'));
  // An address the kernel already has, or a name no selector matches: no apply.
  assert.equal(w.mirror.fqdnLearned('api.example.com.', ['192.0.2.8']), undefined);
  assert.equal(w.mirror.fqdnLearned('other.org.', ['198.51.100.1']), undefined);
});

test('the proxy\'s names replace the mirror (what it forgot goes too); forgotten addresses schedule an apply', () => {
  const w = mirrorWithFakeDatapath();
  const h = w.mirror.linkHandlers();
  h.names([]);
  assert.equal(w.mirror.linked, true);
  void h.learned('10.244.1.5', 'a.example.com.', ['192.0.2.1'], 60);
  assert.deepEqual(w.mirror.namesForIp('192.0.2.1'), ['a.example.com.']);
  h.names([]);
  assert.deepEqual(w.mirror.namesForIp('192.0.2.1'), [], 'a names message is the whole cache');
  void h.learned('10.244.1.5', 'a.example.com.', ['192.0.2.1'], 60);
  h.forgotten('a.example.com.', ['192.0.2.1']);
  assert.deepEqual(w.mirror.namesForIp('192.0.2.1'), []);
  assert.equal(w.scheduled(), 3);
  h.unlinked();
  assert.equal(w.mirror.linked, false);
});
