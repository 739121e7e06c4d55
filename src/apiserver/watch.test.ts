import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, WatchReader, pod } from '../../test/kit/apiserver-fixtures.ts';

const merge = { 'content-type': 'application/merge-patch+json' };

test('watch from a resourceVersion sees ADDED, MODIFIED, DELETED in order', async () => {
  const t = await startTestServer();
  try {
    const list = await t.call('GET', '/api/v1/namespaces/default/pods');
    const rv = list.body.metadata.resourceVersion;
    // Changes made before the watch connects must be replayed from history.
    await t.call('POST', '/api/v1/namespaces/default/pods', pod('w1'));
    const w = await WatchReader.open(`${t.server.url}/api/v1/namespaces/default/pods?watch=1&resourceVersion=${rv}`);
    try {
      assert.equal(w.status, 200);
      await t.call('PATCH', '/api/v1/namespaces/default/pods/w1', { metadata: { labels: { a: 'b' } } }, merge);
      await t.call('DELETE', '/api/v1/namespaces/default/pods/w1');
      // Other namespaces' changes are not this watch's business.
      await t.call('POST', '/api/v1/namespaces/kube-system/pods', pod('elsewhere'));
      await t.call('POST', '/api/v1/namespaces/default/pods', pod('w2'));
      const seen = [];
      for (let i = 0; i < 4; i++) {
        const ev = await w.nextChange();
        seen.push(`${ev!.type} ${ev!.object.metadata.name}`);
        assert.equal(ev!.object.kind, 'Pod');
      }
      assert.deepEqual(seen, ['ADDED w1', 'MODIFIED w1', 'DELETED w1', 'ADDED w2']);
    } finally { w.close(); }
  } finally { await t.close(); }
});

test('resourceVersions in watch events increase and resume without gaps', async () => {
  const t = await startTestServer();
  try {
    const w = await WatchReader.open(`${t.server.url}/apis/cilium.io/v2/ciliumnetworkpolicies?watch=true&resourceVersion=1`);
    for (let i = 0; i < 5; i++) {
      await t.call('POST', '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies', { metadata: { name: `p${i}` }, spec: {} });
    }
    const rvs: number[] = [];
    for (let i = 0; i < 3; i++) rvs.push(Number((await w.nextChange())!.object.metadata.resourceVersion));
    w.close();
    // Resume from the last rv seen: exactly the two remaining events.
    const resumed = await WatchReader.open(`${t.server.url}/apis/cilium.io/v2/ciliumnetworkpolicies?watch=true&resourceVersion=${rvs[2]}`);
    try {
      const rest = [(await resumed.nextChange())!, (await resumed.nextChange())!];
      assert.deepEqual(rest.map((e) => e.object.metadata.name), ['p3', 'p4']);
      const all = [...rvs, ...rest.map((e) => Number(e.object.metadata.resourceVersion))];
      assert.deepEqual(all, [...all].sort((a, b) => a - b));
    } finally { resumed.close(); }
  } finally { await t.close(); }
});

test('watch without resourceVersion starts with the current state as ADDED', async () => {
  const t = await startTestServer();
  try {
    const w = await WatchReader.open(`${t.server.url}/api/v1/namespaces?watch=1`);
    try {
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) names.add((await w.nextChange())!.object.metadata.name);
      assert.deepEqual([...names].sort(), ['default', 'kube-node-lease', 'kube-public', 'kube-system']);
    } finally { w.close(); }
  } finally { await t.close(); }
});

test('selectors on a watch turn moves into and out of the selection into ADDED / DELETED', async () => {
  const t = await startTestServer();
  try {
    await t.call('POST', '/api/v1/namespaces/default/pods', pod('s', { app: 'x' }));
    const rv = (await t.call('GET', '/api/v1/pods')).body.metadata.resourceVersion;
    const w = await WatchReader.open(`${t.server.url}/api/v1/pods?watch=1&resourceVersion=${rv}&labelSelector=app%3Dweb`);
    try {
      await t.call('PATCH', '/api/v1/namespaces/default/pods/s', { metadata: { labels: { app: 'web' } } }, merge);
      await t.call('PATCH', '/api/v1/namespaces/default/pods/s', { metadata: { annotations: { n: '1' } } }, merge);
      await t.call('PATCH', '/api/v1/namespaces/default/pods/s', { metadata: { labels: { app: 'db' } } }, merge);
      await t.call('PATCH', '/api/v1/namespaces/default/pods/s', { metadata: { annotations: { n: '2' } } }, merge);
      const types = [];
      for (let i = 0; i < 3; i++) types.push((await w.nextChange())!.type);
      assert.deepEqual(types, ['ADDED', 'MODIFIED', 'DELETED']);
      await assert.rejects(w.nextChange(300), /timed out/, 'changes outside the selection are not sent');
    } finally { w.close(); }
  } finally { await t.close(); }
});

test('allowWatchBookmarks sends BOOKMARKs with the current resourceVersion', async () => {
  const t = await startTestServer({ bookmarkIntervalMs: 50 });
  try {
    const created = await t.call('POST', '/api/v1/namespaces/default/pods', pod('b'));
    const rv = created.body.metadata.resourceVersion;
    const w = await WatchReader.open(`${t.server.url}/api/v1/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`);
    try {
      const ev = await w.next(2000);
      assert.equal(ev!.type, 'BOOKMARK');
      assert.equal(ev!.object.kind, 'Pod');
      assert.equal(ev!.object.metadata.resourceVersion, rv);
      // After another change (in another resource) the bookmark follows the global counter.
      const ns = await t.call('POST', '/api/v1/namespaces', { metadata: { name: 'later' } });
      for (;;) {
        const b = await w.next(2000);
        if (b!.object.metadata.resourceVersion === ns.body.metadata.resourceVersion) break;
      }
    } finally { w.close(); }
    // Without the parameter: no bookmarks.
    const quiet = await WatchReader.open(`${t.server.url}/api/v1/pods?watch=1&resourceVersion=${rv}`);
    try {
      await assert.rejects(quiet.next(300), /timed out/);
    } finally { quiet.close(); }
  } finally { await t.close(); }
});

test('an expired resourceVersion gets an ERROR event with a 410 Expired Status, and the stream ends', async () => {
  const t = await startTestServer({ watchHistory: 3 });
  try {
    const rv = (await t.call('GET', '/api/v1/pods')).body.metadata.resourceVersion;
    for (let i = 0; i < 5; i++) await t.call('POST', '/api/v1/namespaces/default/pods', pod(`e${i}`));
    const w = await WatchReader.open(`${t.server.url}/api/v1/pods?watch=1&resourceVersion=${rv}`);
    const ev = await w.next();
    assert.equal(ev!.type, 'ERROR');
    assert.equal(ev!.object.kind, 'Status');
    assert.equal(ev!.object.code, 410);
    assert.equal(ev!.object.reason, 'Expired');
    assert.equal(await w.next(), undefined, 'the server closes the stream after the ERROR');

    const list = await t.call('GET', `/api/v1/pods?resourceVersion=${rv}&resourceVersionMatch=Exact`);
    assert.equal(list.status, 410);

    // The newest retained events still resume fine.
    const current = (await t.call('GET', '/api/v1/pods')).body.metadata.resourceVersion;
    const ok = await WatchReader.open(`${t.server.url}/api/v1/pods?watch=1&resourceVersion=${Number(current) - 2}`);
    try {
      assert.equal((await ok.next())!.object.metadata.name, 'e3');
    } finally { ok.close(); }
  } finally { await t.close(); }
});

test('timeoutSeconds ends the watch', async () => {
  const t = await startTestServer();
  try {
    const started = Date.now();
    const w = await WatchReader.open(`${t.server.url}/api/v1/pods?watch=1&resourceVersion=1&timeoutSeconds=1`);
    assert.equal(await w.nextChange(5000), undefined);
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 3000, `ended after ${took} ms`);
  } finally { await t.close(); }
});

test('list-then-watch under concurrent writes misses nothing', async () => {
  const t = await startTestServer();
  try {
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) writes.push(t.call('POST', '/api/v1/namespaces/default/pods', pod(`c${i}`)));
    // List in the middle of the burst, then watch from the list's rv.
    await writes[10];
    const list = await t.call('GET', '/api/v1/namespaces/default/pods');
    const seen = new Set<string>(list.body.items.map((i: { metadata: { name: string } }) => i.metadata.name));
    const w = await WatchReader.open(`${t.server.url}/api/v1/namespaces/default/pods?watch=1&resourceVersion=${list.body.metadata.resourceVersion}`);
    try {
      await Promise.all(writes);
      while (seen.size < 30) {
        const ev = await w.nextChange();
        assert.equal(ev!.type, 'ADDED');
        assert.ok(!seen.has(ev!.object.metadata.name), `duplicate ${ev!.object.metadata.name}`);
        seen.add(ev!.object.metadata.name);
      }
      assert.equal(seen.size, 30);
    } finally { w.close(); }
  } finally { await t.close(); }
});
