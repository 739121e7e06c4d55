/**
 * Privileged: the transparent UDP listener's batches against the real
 * kernel, in a network namespace of its own (`pl-tu<random>`, deleted in
 * `after`; only its loopback is used). Needs root (IP_TRANSPARENT) and
 * fails, never skips, without it. TPROXY itself is covered by
 * src/proxy/dns/dns-proxy-privileged.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';

const execFileP = promisify(execFile);
const CHILD = fileURLToPath(new URL('../../../test/kit/transparent-udp-child.ts', import.meta.url));
const NS = `pl-tu${randomBytes(3).toString('hex')}`;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'privileged test: must run as root (it is not skipped)');
  await execFileP('ip', ['netns', 'add', NS]);
  await execFileP('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
});

after(async () => {
  await execFileP('ip', ['netns', 'delete', NS]).catch(() => {});
});

interface Burst {
  port: number;
  senderPorts: number[];
  received: Array<{ payload: string; src: { ip: string; port: number }; origDst: { ip: string; port: number } }>;
  turns: number;
  answers: Array<Array<{ payload: string; from: { ip: string; port: number } }>>;
  stats: { received: number; replies: number; noOrigDst: number; sendErrors: number; replySockets: number };
}

test('a burst from 3 senders: read in batches with each original destination, every reply from it, counted', async () => {
  const senders = 3;
  const per = 80;
  const { stdout } = await execFileP('ip', ['netns', 'exec', NS, process.execPath, CHILD, 'burst', String(senders), String(per)], { timeout: 20_000 });
  const r = JSON.parse(stdout) as Burst;
  assert.equal(r.received.length, senders * per);
  assert.equal(r.turns, 1, 'the whole burst (240 ≤ 8 × 32 per wakeup) in the turn that saw its first datagram');
  r.received.forEach((d, j) => {
    const k = j % senders;
    assert.equal(d.payload, `s${k}-${Math.floor(j / senders)}`, 'in the order sent');
    assert.deepEqual(d.src, { ip: '127.0.0.1', port: r.senderPorts[k] });
    assert.deepEqual(d.origDst, { ip: '127.0.0.1', port: r.port });
  });
  for (let k = 0; k < senders; k++) {
    assert.deepEqual(r.answers[k]!.map((a) => a.payload), Array.from({ length: per }, (_, i) => `re:s${k}-${i}`));
    for (const a of r.answers[k]!) assert.deepEqual(a.from, { ip: '127.0.0.1', port: r.port }, 'from the address and port the sender used');
  }
  assert.equal(r.stats.received, senders * per);
  assert.equal(r.stats.replies, senders * per);
  assert.equal(r.stats.noOrigDst, 0);
  assert.equal(r.stats.sendErrors, 0);
});
