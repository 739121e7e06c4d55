import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApiServer } from './index.ts';
import { loadState, logPath } from './persistence.ts';
import { request, WatchReader, pod } from '../../test/kit/apiserver-fixtures.ts';

test('state and the resourceVersion counter survive a restart; old RVs are expired', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'palisade-apiserver-'));
  try {
    const dataFile = join(dir, 'state.json');
    const first = await startApiServer({ port: 0, dataFile });
    const created = await request(first.url, 'POST', '/api/v1/namespaces/default/pods', pod('keep', { a: 'b' }));
    const cnp = await request(first.url, 'POST', '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies',
      { metadata: { name: 'p' }, spec: { endpointSelector: {} } });
    const eh = await request(first.url, 'POST', '/apis/lab.palisade.dev/v1/externalhosts', { metadata: { name: 'x.example' } });
    await request(first.url, 'POST', '/api/v1/namespaces/default/pods', pod('gone'));
    await request(first.url, 'DELETE', '/api/v1/namespaces/default/pods/gone');
    const lastRV = Number((await request(first.url, 'GET', '/api/v1/pods')).body.metadata.resourceVersion);
    // Durable on answer: what is on disk (snapshot + log) already holds the last change before close().
    const onDisk = await loadState(dataFile);
    assert.equal(onDisk?.resourceVersion, lastRV);
    assert.deepEqual(onDisk?.objects['/v1/pods']?.map((p) => p.metadata.name), ['keep']);
    await first.close();

    const second = await startApiServer({ port: 0, dataFile });
    try {
      assert.deepEqual((await request(second.url, 'GET', '/api/v1/namespaces/default/pods/keep')).body, created.body);
      assert.deepEqual((await request(second.url, 'GET', '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/p')).body, cnp.body);
      assert.deepEqual((await request(second.url, 'GET', '/apis/lab.palisade.dev/v1/externalhosts/x.example')).body, eh.body);
      assert.equal((await request(second.url, 'GET', '/api/v1/namespaces/default/pods/gone')).status, 404);
      const list = await request(second.url, 'GET', '/api/v1/pods');
      assert.equal(Number(list.body.metadata.resourceVersion), lastRV, 'counter restored');

      const next = await request(second.url, 'POST', '/api/v1/namespaces/default/pods', pod('new'));
      assert.equal(Number(next.body.metadata.resourceVersion), lastRV + 1, 'RVs keep increasing');

      // Watch history starts empty: an RV from before the restart is expired…
      const old = await WatchReader.open(`${second.url}/api/v1/pods?watch=1&resourceVersion=${created.body.metadata.resourceVersion}`);
      const ev = await old.next();
      assert.equal(ev!.type, 'ERROR');
      assert.equal(ev!.object.code, 410);
      // …while the restored counter itself is a valid starting point.
      const fresh = await WatchReader.open(`${second.url}/api/v1/pods?watch=1&resourceVersion=${lastRV}`);
      try {
        assert.equal((await fresh.next())!.object.metadata.name, 'new');
      } finally { fresh.close(); }
    } finally { await second.close(); }
  } finally { await rm(dir, { recursive: true, force: true }); }
});

test('writes append to the log, not the snapshot; a restart replays it, skipping stale lines and a torn last line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'palisade-apiserver-'));
  try {
    const dataFile = join(dir, 'state.json');
    const first = await startApiServer({ port: 0, dataFile });
    const snapshotBefore = await readFile(dataFile, 'utf8');
    await request(first.url, 'POST', '/api/v1/namespaces/default/pods', pod('a'));
    await request(first.url, 'POST', '/api/v1/namespaces/default/pods', pod('b'));
    await request(first.url, 'DELETE', '/api/v1/namespaces/default/pods/a');
    assert.equal(await readFile(dataFile, 'utf8'), snapshotBefore, 'the snapshot is not rewritten per write');
    const log = await readFile(logPath(dataFile), 'utf8');
    assert.deepEqual(log.trimEnd().split('\n').map((l) => JSON.parse(l).type), ['ADDED', 'ADDED', 'DELETED']);
    // As a crash would leave them: a line the snapshot already covers, and a last write cut short.
    const { appendFile, writeFile } = await import('node:fs/promises');
    await writeFile(logPath(dataFile), `${JSON.stringify({ rv: 1, resource: '/v1/pods', type: 'ADDED', object: { metadata: { name: 'stale', namespace: 'default' } } })}\n${log}{"rv":9`);
    await appendFile(logPath(dataFile), '99,"resource":');
    const restored = await loadState(dataFile);
    assert.deepEqual(restored?.objects['/v1/pods']?.map((p) => p.metadata.name), ['b']);
    // A damaged line before the end is corruption, not a torn write.
    await writeFile(logPath(dataFile), `{"rv":\n${log}`);
    await assert.rejects(loadState(dataFile), /line 1 is not JSON/);
    await first.close();
  } finally { await rm(dir, { recursive: true, force: true }); }
});

test('a log larger than the snapshot is compacted into it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'palisade-apiserver-'));
  try {
    const dataFile = join(dir, 'state.json');
    const server = await startApiServer({ port: 0, dataFile });
    try {
      // 100 pods of ~20 KB, one by one: 2 MB of log, past the 1 MiB compaction threshold half-way.
      const note = 'x'.repeat(20_000);
      for (let i = 0; i < 100; i++) await request(server.url, 'POST', '/api/v1/namespaces/default/pods', pod(`p${i}`, {}, { metadata: { name: `p${i}`, annotations: { note } } }));
      const logSize = (await readFile(logPath(dataFile))).length;
      assert.ok(logSize < 1_500_000, `the log was compacted (${logSize} bytes)`);
      const snapshot = JSON.parse(await readFile(dataFile, 'utf8')) as { objects: Record<string, unknown[]> };
      assert.ok(snapshot.objects['/v1/pods']!.length >= 50, 'the snapshot took what the log held');
      assert.equal((await loadState(dataFile))?.objects['/v1/pods']?.length, 100);
    } finally { await server.close(); }
    // close() leaves one file: everything in the snapshot, the log empty.
    assert.equal((await readFile(logPath(dataFile), 'utf8')), '');
    assert.equal(JSON.parse(await readFile(dataFile, 'utf8')).objects['/v1/pods'].length, 100);
  } finally { await rm(dir, { recursive: true, force: true }); }
});

test('a corrupt data file is an error, not an empty cluster', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'palisade-apiserver-'));
  try {
    const dataFile = join(dir, 'state.json');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(dataFile, '{"format":"something-else"}');
    await assert.rejects(startApiServer({ port: 0, dataFile }), /not a palisade-apiserver/);
  } finally { await rm(dir, { recursive: true, force: true }); }
});

test('main.ts prints its URL as one JSON line and stops on SIGTERM', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'palisade-apiserver-'));
  try {
    const main = fileURLToPath(new URL('./main.ts', import.meta.url));
    const child = spawn(process.execPath, [main, '--port', '0', '--data', join(dir, 'state.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = await once(createInterface(child.stdout), 'line') as [string];
      const { url } = JSON.parse(line) as { url: string };
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await request(url, 'POST', '/api/v1/namespaces', { metadata: { name: 'from-main' } })).status, 201);
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
      const saved = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'));
      assert.ok(saved.objects['/v1/namespaces'].some((n: { metadata: { name: string } }) => n.metadata.name === 'from-main'));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  } finally { await rm(dir, { recursive: true, force: true }); }
});
