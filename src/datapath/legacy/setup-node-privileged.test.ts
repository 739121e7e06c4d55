/**
 * Privileged: legacy node set-up run again, as a restarted agent runs it,
 * against the real kernel in a namespace of its own (`pl-sn<random>-a`,
 * deleted in `after`). Needs root and fails, never skips, without it.
 *
 * The policy-routing rule that delivers steered (marked) packets to the
 * proxies must never be missing, not even for the moment between a delete
 * and an add: every DNS query or HTTP request steered then would be routed
 * past the proxy and lost.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { PROXY_MARK } from '../constants.ts';

const execFileP = promisify(execFile);
const NS = `pl-sn${randomBytes(3).toString('hex')}-a`;
const MARK = `0x${PROXY_MARK.toString(16)}`;
const MODULE = new URL('./legacy-datapath.ts', import.meta.url).href;

/** LegacyDatapath.setupNode in a node process inside the namespace, as the agent calls it. */
async function setupNode(): Promise<void> {
  const script = `
    const { LegacyDatapath } = await import(${JSON.stringify(MODULE)});
    await new LegacyDatapath().setupNode(
      { name: 'node-1', underlayIp: '10.251.0.1', underlayIf: 'ul0', underlayCIDR: '10.251.0.0/24', podCIDR: '10.252.1.0/24', clusterPodCIDR: '10.252.0.0/16' },
      [{ name: 'node-2', ip: '10.251.0.2', podCIDR: '10.252.2.0/24' }],
    );`;
  await execFileP('ip', ['netns', 'exec', NS, process.execPath, '--input-type=module', '-e', script], { timeout: 30_000 });
}

async function proxyRules(): Promise<number[]> {
  const { stdout } = await execFileP('ip', ['-n', NS, '-j', 'rule', 'show']);
  return (JSON.parse(stdout) as { priority: number; fwmark?: string; table?: string }[])
    .filter((r) => r.fwmark === MARK && r.table === '100')
    .map((r) => r.priority);
}

before(async () => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (it creates a network namespace); run it as root');
  await execFileP('ip', ['netns', 'add', NS]);
  await execFileP('ip', ['-n', NS, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1']);
  await execFileP('ip', ['-n', NS, 'addr', 'add', '10.251.0.1/24', 'dev', 'ul0']);
  await execFileP('ip', ['-n', NS, 'link', 'set', 'ul0', 'up']);
});
after(async () => {
  await execFileP('ip', ['netns', 'del', NS]).catch(() => undefined);
});

test('set-up run again (an agent restart) never removes the proxies\' routing rule, not even for a moment', async () => {
  await setupNode();
  assert.deepEqual(await proxyRules(), [100]);
  const monitor = spawn('ip', ['-n', NS, 'monitor', 'rule']);
  let seen = '';
  monitor.stdout.on('data', (d: Buffer) => (seen += d.toString()));
  try {
    await new Promise((r) => setTimeout(r, 300)); // the monitor subscribed
    await setupNode();
    await new Promise((r) => setTimeout(r, 300)); // its events read
  } finally {
    monitor.kill();
  }
  assert.deepEqual(seen.split('\n').filter((l) => l.includes(MARK)), [], 'rule changes seen while set-up ran again');
  assert.deepEqual(await proxyRules(), [100]);
});

test('set-up replaces a stale rule at another priority, adding ours first', async () => {
  await execFileP('ip', ['-n', NS, 'rule', 'add', 'fwmark', `${MARK}/${MARK}`, 'lookup', '100', 'pref', '250']);
  assert.deepEqual((await proxyRules()).sort(), [100, 250]);
  await setupNode();
  assert.deepEqual(await proxyRules(), [100]);
});
