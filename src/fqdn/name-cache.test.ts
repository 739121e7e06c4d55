import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileMatchPattern } from './matchpattern.ts';
import { NameCache } from './name-cache.ts';

function clock(start = 1_000_000): { now: () => number; advance(s: number): void } {
  let t = start;
  return { now: () => t, advance: (s) => void (t += s * 1000) };
}

test('TTL below minTtl is raised; expiry removes the IP and reports it', () => {
  const c = clock();
  const forgotten: Array<[string, readonly string[]]> = [];
  const cache = new NameCache({ minTtl: 10, now: c.now, onForgotten: (n, ips) => forgotten.push([n, ips]) });
  cache.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 2);
  cache.record('10.0.0.5', 'b.test.', ['2.2.2.2'], 30);
  c.advance(9);
  assert.equal(cache.sweep(), 0);
  c.advance(2);
  assert.equal(cache.sweep(), 1);
  assert.deepEqual(forgotten, [['a.test.', ['1.1.1.1']]]);
  assert.deepEqual(cache.namesForIp('1.1.1.1'), []);
  assert.deepEqual(cache.namesForIp('2.2.2.2'), ['b.test.']);
});

test('a later answer extends the expiry and adds who resolved it', () => {
  const c = clock();
  const cache = new NameCache({ minTtl: 0, now: c.now });
  cache.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 5);
  c.advance(4);
  cache.record('10.0.0.6', 'a.test.', ['1.1.1.1'], 5);
  c.advance(4);
  cache.sweep();
  assert.deepEqual(cache.cacheEntries(), [{ name: 'a.test.', ip: '1.1.1.1', ttlLeft: 1, resolvedBy: ['10.0.0.5', '10.0.0.6'] }]);
});

test('expired IPs with live connections stay until the connections end', () => {
  const c = clock();
  const live = new Set(['1.1.1.1']);
  const cache = new NameCache({ minTtl: 0, now: c.now, hasLiveConnections: (ip) => live.has(ip) });
  cache.record('p', 'a.test.', ['1.1.1.1', '1.1.1.2'], 1);
  c.advance(2);
  cache.sweep();
  assert.deepEqual(cache.ipsFor('a.test.'), ['1.1.1.1']);
  assert.equal(cache.stats().retainedForLiveConnections, 1);
  live.clear();
  cache.sweep();
  assert.deepEqual(cache.ipsFor('a.test.'), []);
});

test('per-name cap: the IP refreshed longest ago goes first', () => {
  const c = clock();
  const forgotten: string[] = [];
  const cache = new NameCache({ maxIpsPerName: 3, now: c.now, onForgotten: (_n, ips) => forgotten.push(...ips) });
  cache.record('p', 'a.test.', ['1.0.0.1', '1.0.0.2', '1.0.0.3'], 60);
  cache.record('p', 'a.test.', ['1.0.0.1'], 60); // refreshed: now the newest
  cache.record('p', 'a.test.', ['1.0.0.4', '1.0.0.5'], 60);
  assert.deepEqual(cache.ipsFor('a.test.'), ['1.0.0.1', '1.0.0.4', '1.0.0.5']);
  assert.deepEqual(forgotten, ['1.0.0.2', '1.0.0.3']);
  assert.equal(cache.stats().evicted, 2);
  assert.deepEqual(cache.namesForIp('1.0.0.2'), []);
});

test('ipsMatching and namesForIp', () => {
  const cache = new NameCache();
  cache.record('p', 'api.github.com.', ['1.1.1.1'], 60);
  cache.record('p', 'github.com.', ['1.1.1.2'], 60);
  cache.record('p', 'cdn.example.com.', ['1.1.1.1'], 60);
  assert.deepEqual([...cache.ipsMatching([compileMatchPattern('*.github.com')])], ['1.1.1.1']);
  assert.deepEqual([...cache.ipsMatching([compileMatchPattern('**.com')])].sort(), ['1.1.1.1', '1.1.1.2']);
  assert.deepEqual([...cache.namesForIp('1.1.1.1')].sort(), ['api.github.com.', 'cdn.example.com.']);
});

test('persistence: atomic write, reload after a restart, expired entries kept for the sweep to judge', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-fqdn-cache-'));
  try {
    const file = join(dir, 'sub', 'fqdn-cache.json');
    const c = clock(Date.now());
    const a = new NameCache({ file, now: c.now, minTtl: 0, saveDebounceMs: 10 });
    a.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 100);
    a.record('10.0.0.5', 'b.test.', ['2.2.2.2'], 1);
    await new Promise((r) => setTimeout(r, 50)); // debounced save
    assert.equal(JSON.parse(await readFile(file, 'utf8')).entries.length, 2);
    assert.deepEqual(await readdir(join(dir, 'sub')), ['fqdn-cache.json'], 'no temporary file left');
    await a.close();

    c.advance(5);
    const live = new Set<string>();
    const b = new NameCache({ file, now: c.now, hasLiveConnections: (ip) => live.has(ip) });
    assert.equal(await b.load(), 2);
    b.sweep();
    assert.deepEqual(b.cacheEntries().map((e) => [e.name, e.ip, e.resolvedBy]), [['a.test.', '1.1.1.1', ['10.0.0.5']]]);
    assert.equal(b.cacheEntries()[0]!.ttlLeft, 95);
    await b.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a missing or garbled file loads as empty', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-fqdn-cache-'));
  try {
    assert.equal(await new NameCache({ file: join(dir, 'none.json') }).load(), 0);
    const f = join(dir, 'bad.json');
    await import('node:fs/promises').then((fs) => fs.writeFile(f, '{"version":1,"entries":[{'));
    assert.equal(await new NameCache({ file: f }).load(), 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('rule 4: an answer is "known" only when every IP was confirmed; a dropped IP comes back unconfirmed', () => {
  const c = clock();
  const cache = new NameCache({ minTtl: 10, now: c.now });
  assert.equal(cache.record('10.0.0.5', 'a.test.', ['1.1.1.1', '1.1.1.2'], 30), false, 'new');
  const g = cache.generation;
  assert.equal(cache.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 30), false, 'held, not confirmed yet');
  cache.confirm('a.test.', ['1.1.1.1', '1.1.1.2'], g);
  assert.equal(cache.record('10.0.0.6', 'a.test.', ['1.1.1.2', '1.1.1.1'], 30), true, 'all confirmed');
  assert.equal(cache.record('10.0.0.6', 'a.test.', ['1.1.1.1', '1.1.1.3'], 30), false, 'one new IP');
  assert.equal(cache.record('10.0.0.6', 'b.test.', ['1.1.1.1'], 30), false, 'confirmed per name');
  assert.equal(cache.record('10.0.0.6', 'a.test.', [], 30), false, 'no IPs: nothing known');

  // 1.1.1.1 expires and is dropped; recorded again, a confirmation from before the drop does not reach it.
  c.advance(31);
  cache.sweep();
  const before = g;
  cache.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 30);
  cache.confirm('a.test.', ['1.1.1.1'], before);
  assert.equal(cache.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 30), false, 'stale confirmation ignored');
  cache.confirm('a.test.', ['1.1.1.1'], cache.generation);
  assert.equal(cache.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 30), true);
});

test('rule 4: entries loaded from the file start unconfirmed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-namecache-'));
  try {
    const file = join(dir, 'cache.json');
    const a = new NameCache({ file, minTtl: 60 });
    a.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 60);
    a.confirm('a.test.', ['1.1.1.1'], a.generation);
    assert.equal(a.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 60), true);
    await a.close();
    const b = new NameCache({ file, minTtl: 60 });
    assert.equal(await b.load(), 1);
    assert.equal(b.record('10.0.0.5', 'a.test.', ['1.1.1.1'], 60), false, 'the datapath of this run has not confirmed it');
    await b.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a budgeted sweep removes what is due in chunks, and only looks at what is due', () => {
  const c = clock();
  const forgotten: string[] = [];
  const cache = new NameCache({ minTtl: 0, now: c.now, onForgotten: (n) => forgotten.push(n) });
  for (let i = 0; i < 5000; i++) cache.record('p', `n${i}.test.`, [`10.0.${i >> 8}.${i & 255}`], 5);
  cache.record('p', 'later.test.', ['10.1.0.1'], 60);
  c.advance(1);
  assert.equal(cache.sweep(1000), 0, 'nothing due yet');
  assert.equal(cache.sweepPending(), false);
  c.advance(5);
  assert.equal(cache.sweep(1000), 1000);
  assert.equal(cache.sweepPending(), true, 'more is due');
  let total = 1000;
  while (cache.sweepPending()) total += cache.sweep(1000);
  assert.equal(total, 5000);
  assert.deepEqual(cache.ipsFor('later.test.'), ['10.1.0.1'], 'not due, not touched');
  assert.equal(forgotten.length, 5000);
});

test('a refreshed IP is not swept at its old expiry', () => {
  const c = clock();
  const cache = new NameCache({ minTtl: 0, now: c.now });
  cache.record('p', 'a.test.', ['1.1.1.1'], 2);
  c.advance(1);
  cache.record('p', 'a.test.', ['1.1.1.1'], 10);
  c.advance(3);
  assert.equal(cache.sweep(), 0);
  assert.deepEqual(cache.ipsFor('a.test.'), ['1.1.1.1']);
  c.advance(10);
  assert.equal(cache.sweep(), 1);
});
