import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, pod, type TestServer } from '../../test/kit/apiserver-fixtures.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer({
    // The hook stands in for Palisade's manifest validator.
    validate: (obj) => {
      const labels = (obj.metadata as { labels?: Record<string, string> }).labels ?? {};
      return labels.invalid === 'yes' ? [{ path: 'metadata.labels.invalid', message: 'must not be "yes"' }] : [];
    },
  });
  await t.call('POST', '/api/v1/namespaces', { metadata: { name: 'shop' } });
});
after(() => t.close());

test('create, get, list, update and delete a namespaced object', async () => {
  const created = await t.call('POST', '/api/v1/namespaces/shop/pods', pod('web', { app: 'web' }));
  assert.equal(created.status, 201);
  const meta = created.body.metadata;
  assert.equal(created.body.kind, 'Pod');
  assert.equal(created.body.apiVersion, 'v1');
  assert.equal(meta.namespace, 'shop');
  assert.match(meta.uid, /^[0-9a-f-]{36}$/);
  assert.match(meta.resourceVersion, /^\d+$/);
  assert.equal(meta.generation, 1);
  assert.ok(!Number.isNaN(Date.parse(meta.creationTimestamp)));
  assert.deepEqual(created.body.status, { phase: 'Pending' }, 'pods created without status are Pending');

  const got = await t.call('GET', '/api/v1/namespaces/shop/pods/web');
  assert.deepEqual(got.body, created.body);

  const list = await t.call('GET', '/api/v1/namespaces/shop/pods');
  assert.equal(list.body.kind, 'PodList');
  assert.equal(list.body.items.length, 1);
  assert.equal(list.body.items[0].kind, 'Pod', 'list items carry kind');
  assert.ok(Number(list.body.metadata.resourceVersion) >= Number(meta.resourceVersion));

  const updated = await t.call('PUT', '/api/v1/namespaces/shop/pods/web', {
    ...created.body, spec: { containers: [{ name: 'c', image: 'busybox:2' }] },
  });
  assert.equal(updated.status, 200);
  assert.ok(Number(updated.body.metadata.resourceVersion) > Number(meta.resourceVersion));
  assert.equal(updated.body.metadata.generation, 2, 'spec change bumps generation');
  assert.equal(updated.body.metadata.uid, meta.uid);

  const relabeled = await t.call('PUT', '/api/v1/namespaces/shop/pods/web', {
    ...updated.body, metadata: { ...updated.body.metadata, labels: { app: 'web', v: '2' } },
  });
  assert.equal(relabeled.body.metadata.generation, 2, 'metadata change keeps generation');

  const noop = await t.call('PUT', '/api/v1/namespaces/shop/pods/web', relabeled.body);
  assert.equal(noop.body.metadata.resourceVersion, relabeled.body.metadata.resourceVersion, 'no-op update keeps rv');

  const del = await t.call('DELETE', '/api/v1/namespaces/shop/pods/web');
  assert.equal(del.status, 200);
  assert.equal(del.body.metadata.name, 'web');
  const gone = await t.call('GET', '/api/v1/namespaces/shop/pods/web');
  assert.equal(gone.status, 404);
  assert.equal(gone.body.kind, 'Status');
  assert.equal(gone.body.reason, 'NotFound');
  assert.equal(gone.body.code, 404);
});

test('cluster-scoped kinds: nodes, externalhosts, ccnp', async () => {
  for (const [path, body] of [
    ['/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' } }],
    ['/apis/lab.palisade.dev/v1/externalhosts', { apiVersion: 'lab.palisade.dev/v1', kind: 'ExternalHost', metadata: { name: 'api.example.com' }, spec: { ips: ['192.0.2.10'] } }],
    ['/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies', { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'deny-all' }, spec: { endpointSelector: {} } }],
  ] as const) {
    const created = await t.call('POST', path, body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.metadata.namespace, undefined, `${path} objects have no namespace`);
    const got = await t.call('GET', `${path}/${body.metadata.name}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.kind, body.kind);
    const del = await t.call('DELETE', `${path}/${body.metadata.name}`);
    assert.equal(del.status, 200);
    assert.equal((await t.call('GET', `${path}/${body.metadata.name}`)).status, 404);
  }
  // A namespaced URL for a cluster-scoped resource does not exist.
  assert.equal((await t.call('GET', '/api/v1/namespaces/shop/nodes')).status, 404);
});

test('create rules: generateName, default namespace, mismatches, duplicates', async () => {
  const gen = await t.call('POST', '/api/v1/namespaces/shop/pods', { metadata: { generateName: 'job-' }, spec: {} });
  assert.equal(gen.status, 201);
  assert.match(gen.body.metadata.name, /^job-[a-z0-9]{5}$/);

  const dflt = await t.call('POST', '/api/v1/pods', { metadata: { name: 'in-default' } });
  assert.equal(dflt.status, 201);
  assert.equal(dflt.body.metadata.namespace, 'default');

  const mismatch = await t.call('POST', '/api/v1/namespaces/shop/pods', { metadata: { name: 'x', namespace: 'other' } });
  assert.equal(mismatch.status, 400);
  assert.equal(mismatch.body.reason, 'BadRequest');

  const noNs = await t.call('POST', '/api/v1/namespaces/nope/pods', { metadata: { name: 'x' } });
  assert.equal(noNs.status, 404);

  const dup = await t.call('POST', '/api/v1/namespaces/shop/pods', { metadata: { name: gen.body.metadata.name } });
  assert.equal(dup.status, 409);
  assert.equal(dup.body.reason, 'AlreadyExists');

  const noName = await t.call('POST', '/api/v1/namespaces/shop/pods', { metadata: {} });
  assert.equal(noName.status, 422);

  const badName = await t.call('POST', '/api/v1/namespaces/shop/pods', { metadata: { name: 'Bad_Name' } });
  assert.equal(badName.status, 422);
  assert.equal(badName.body.details.causes[0].field, 'metadata.name');

  const wrongKind = await t.call('POST', '/api/v1/namespaces/shop/pods', { kind: 'Service', metadata: { name: 'x' } });
  assert.equal(wrongKind.status, 400);

  const badJson = await t.call('POST', '/api/v1/namespaces/shop/pods', '{not json');
  assert.equal(badJson.status, 400);
});

test('optimistic concurrency: a stale resourceVersion is a 409 Conflict', async () => {
  const created = await t.call('POST', '/api/v1/namespaces/shop/services', { metadata: { name: 'svc' }, spec: { ports: [{ port: 80 }] } });
  const first = await t.call('PUT', '/api/v1/namespaces/shop/services/svc', { ...created.body, spec: { ports: [{ port: 81 }] } });
  assert.equal(first.status, 200);
  const stale = await t.call('PUT', '/api/v1/namespaces/shop/services/svc', { ...created.body, spec: { ports: [{ port: 82 }] } });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.reason, 'Conflict');
  assert.match(stale.body.message, /the object has been modified/);

  const stalePatch = await t.call('PATCH', '/api/v1/namespaces/shop/services/svc',
    { metadata: { resourceVersion: created.body.metadata.resourceVersion }, spec: { type: 'NodePort' } },
    { 'content-type': 'application/merge-patch+json' });
  assert.equal(stalePatch.status, 409, 'a resourceVersion in a patch is a precondition');

  const staleDelete = await t.call('DELETE', '/api/v1/namespaces/shop/services/svc',
    { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: created.body.metadata.resourceVersion } });
  assert.equal(staleDelete.status, 409);

  const missing = await t.call('PUT', '/api/v1/namespaces/shop/services/none', { metadata: { name: 'none' } });
  assert.equal(missing.status, 404);
});

test('patch: merge, strategic (maps and keyed lists) and JSON patch', async () => {
  await t.call('POST', '/api/v1/namespaces/shop/pods', pod('p', { app: 'p', drop: 'me' }, {
    spec: { containers: [{ name: 'a', image: 'a:1', ports: [{ containerPort: 80 }] }, { name: 'b', image: 'b:1' }] },
  }));
  const merged = await t.call('PATCH', '/api/v1/namespaces/shop/pods/p',
    { metadata: { labels: { tier: 'front', drop: null } } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(merged.status, 200);
  assert.deepEqual(merged.body.metadata.labels, { app: 'p', tier: 'front' });

  const strategic = await t.call('PATCH', '/api/v1/namespaces/shop/pods/p',
    { spec: { containers: [{ name: 'b', image: 'b:2' }] }, metadata: { annotations: { x: 'y' } } },
    { 'content-type': 'application/strategic-merge-patch+json' });
  assert.equal(strategic.status, 200);
  assert.deepEqual(strategic.body.spec.containers, [
    { name: 'a', image: 'a:1', ports: [{ containerPort: 80 }] }, { name: 'b', image: 'b:2' },
  ], 'containers merge by name');
  assert.deepEqual(strategic.body.metadata.annotations, { x: 'y' });

  const json = await t.call('PATCH', '/api/v1/namespaces/shop/pods/p', [
    { op: 'add', path: '/metadata/labels/j', value: 'k' },
    { op: 'remove', path: '/metadata/labels/tier' },
    { op: 'replace', path: '/spec/containers/0/image', value: 'a:3' },
  ], { 'content-type': 'application/json-patch+json' });
  assert.equal(json.status, 200);
  assert.deepEqual(json.body.metadata.labels, { app: 'p', j: 'k' });
  assert.equal(json.body.spec.containers[0].image, 'a:3');

  const unsupported = await t.call('PATCH', '/api/v1/namespaces/shop/pods/p', {}, { 'content-type': 'application/apply-patch+yaml' });
  assert.equal(unsupported.status, 415);

  const missing = await t.call('PATCH', '/api/v1/namespaces/shop/pods/none', {}, { 'content-type': 'application/merge-patch+json' });
  assert.equal(missing.status, 404);
});

test('status subresource: main writes keep status, /status writes change only status', async () => {
  const created = await t.call('POST', '/api/v1/namespaces/shop/pods', pod('st'));
  const viaMain = await t.call('PATCH', '/api/v1/namespaces/shop/pods/st',
    { status: { phase: 'Running' }, metadata: { labels: { a: 'b' } } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(viaMain.body.status.phase, 'Pending');
  assert.deepEqual(viaMain.body.metadata.labels, { a: 'b' });

  const viaStatus = await t.call('PATCH', '/api/v1/namespaces/shop/pods/st/status',
    { status: { phase: 'Running', podIP: '10.0.1.5' }, metadata: { labels: { c: 'd' } } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(viaStatus.status, 200);
  assert.equal(viaStatus.body.status.phase, 'Running');
  assert.equal(viaStatus.body.status.podIP, '10.0.1.5');
  assert.deepEqual(viaStatus.body.metadata.labels, { a: 'b' }, 'labels are not changed through /status');
  assert.equal(viaStatus.body.metadata.generation, created.body.metadata.generation);

  const put = await t.call('PUT', '/api/v1/namespaces/shop/pods/st/status', { ...viaStatus.body, status: { phase: 'Succeeded' } });
  assert.equal(put.body.status.phase, 'Succeeded');
  const get = await t.call('GET', '/api/v1/namespaces/shop/pods/st/status');
  assert.equal(get.body.status.phase, 'Succeeded');

  const node = await t.call('POST', '/api/v1/nodes', { metadata: { name: 'n-status' } });
  assert.equal(node.status, 201);
  const nodeStatus = await t.call('PATCH', '/api/v1/nodes/n-status/status',
    { status: { addresses: [{ type: 'InternalIP', address: '10.1.0.1' }] } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(nodeStatus.body.status.addresses[0].address, '10.1.0.1');
  // /api/v1/namespaces/{name}/status is the namespace's status, not a resource named "status".
  const nsStatus = await t.call('GET', '/api/v1/namespaces/shop/status');
  assert.equal(nsStatus.body.kind, 'Namespace');
});

test('label selectors (equality and set-based) and field selectors', async () => {
  await t.call('POST', '/api/v1/namespaces', { metadata: { name: 'sel' } });
  await t.call('POST', '/api/v1/namespaces/sel/pods', pod('a', { app: 'web', tier: 'front' }, { spec: { nodeName: 'n1', containers: [] } }));
  await t.call('POST', '/api/v1/namespaces/sel/pods', pod('b', { app: 'db' }, { spec: { nodeName: 'n2', containers: [] } }));
  await t.call('POST', '/api/v1/namespaces/sel/pods', pod('c', { app: 'cache', tier: 'back' }, { spec: { nodeName: 'n1', containers: [] } }));
  const names = async (query: string, ns = '/namespaces/sel') => {
    const r = await t.call('GET', `/api/v1${ns}/pods?${query}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (r.body.items as { metadata: { name: string } }[]).map((i) => i.metadata.name);
  };
  const cases: [string, string[]][] = [
    ['labelSelector=app%3Dweb', ['a']],
    ['labelSelector=app%3D%3Dweb', ['a']],
    ['labelSelector=app!%3Dweb', ['b', 'c']],
    ['labelSelector=' + encodeURIComponent('app in (web, db)'), ['a', 'b']],
    ['labelSelector=' + encodeURIComponent('app notin (web)'), ['b', 'c']],
    ['labelSelector=tier', ['a', 'c']],
    ['labelSelector=' + encodeURIComponent('!tier'), ['b']],
    ['labelSelector=' + encodeURIComponent('tier,app in (cache,db)'), ['c']],
    ['fieldSelector=metadata.name%3Db', ['b']],
    ['fieldSelector=spec.nodeName%3Dn1', ['a', 'c']],
    ['fieldSelector=spec.nodeName!%3Dn1', ['b']],
    ['fieldSelector=metadata.namespace%3Dsel,spec.nodeName%3Dn2&labelSelector=app', ['b']],
  ];
  for (const [query, expected] of cases) assert.deepEqual(await names(query), expected, query);
  assert.deepEqual(await names('fieldSelector=metadata.namespace%3Dsel', ''), ['a', 'b', 'c']);

  const badField = await t.call('GET', '/api/v1/pods?fieldSelector=spec.bogus%3Dx');
  assert.equal(badField.status, 400);
  const badLabel = await t.call('GET', '/api/v1/pods?labelSelector=' + encodeURIComponent('app in (web'));
  assert.equal(badLabel.status, 400);
});

test('deleting a namespace deletes what it holds', async () => {
  await t.call('POST', '/api/v1/namespaces', { metadata: { name: 'doomed' } });
  await t.call('POST', '/api/v1/namespaces/doomed/pods', pod('p1'));
  await t.call('POST', '/apis/cilium.io/v2/namespaces/doomed/ciliumnetworkpolicies', { metadata: { name: 'cnp' }, spec: {} });
  await t.call('POST', '/apis/networking.k8s.io/v1/namespaces/doomed/networkpolicies', { metadata: { name: 'np' }, spec: {} });
  await t.call('POST', '/apis/discovery.k8s.io/v1/namespaces/doomed/endpointslices', { metadata: { name: 'es' }, addressType: 'IPv4', endpoints: [] });
  const del = await t.call('DELETE', '/api/v1/namespaces/doomed');
  assert.equal(del.status, 200);
  for (const path of ['/api/v1/namespaces/doomed/pods', '/apis/cilium.io/v2/namespaces/doomed/ciliumnetworkpolicies',
    '/apis/networking.k8s.io/v1/namespaces/doomed/networkpolicies', '/apis/discovery.k8s.io/v1/namespaces/doomed/endpointslices']) {
    assert.equal((await t.call('GET', path)).body.items.length, 0, path);
  }
  assert.equal((await t.call('GET', '/api/v1/namespaces/doomed')).status, 404);
  // As while a real namespace terminates, deleting its former content still answers 200 (kubectl delete -f).
  assert.equal((await t.call('DELETE', '/api/v1/namespaces/doomed/pods/p1')).status, 200);
  assert.equal((await t.call('DELETE', '/api/v1/namespaces/default')).status, 403);
});

test('validation hook faults are 422 Invalid with causes', async () => {
  const bad = await t.call('POST', '/api/v1/namespaces/shop/pods', pod('v', { invalid: 'yes' }));
  assert.equal(bad.status, 422);
  assert.equal(bad.body.kind, 'Status');
  assert.equal(bad.body.reason, 'Invalid');
  assert.deepEqual(bad.body.details.causes, [{ reason: 'FieldValueInvalid', message: 'must not be "yes"', field: 'metadata.labels.invalid' }]);
  await t.call('POST', '/api/v1/namespaces/shop/pods', pod('v'));
  const badPatch = await t.call('PATCH', '/api/v1/namespaces/shop/pods/v', { metadata: { labels: { invalid: 'yes' } } },
    { 'content-type': 'application/merge-patch+json' });
  assert.equal(badPatch.status, 422, 'updates are validated too');
});

test('dry run does not store', async () => {
  const dry = await t.call('POST', '/api/v1/namespaces/shop/pods?dryRun=All', pod('dry'));
  assert.equal(dry.status, 201);
  assert.equal((await t.call('GET', '/api/v1/namespaces/shop/pods/dry')).status, 404);
});

test('errors: unknown paths 404, wrong methods 405', async () => {
  const unknown = await t.call('GET', '/apis/nope.io/v1/things');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.kind, 'Status');
  const post = await t.call('POST', '/api/v1/namespaces/shop/pods/x', pod('x'));
  assert.equal(post.status, 405);
  assert.equal(post.body.reason, 'MethodNotAllowed');
});

test('discovery: legacy and aggregated', async () => {
  const version = await t.call('GET', '/version');
  assert.equal(version.body.major, '1');
  const api = await t.call('GET', '/api');
  assert.deepEqual(api.body.versions, ['v1']);
  const apis = await t.call('GET', '/apis');
  assert.deepEqual(apis.body.groups.map((g: { name: string }) => g.name),
    ['discovery.k8s.io', 'networking.k8s.io', 'cilium.io', 'lab.palisade.dev']);
  const core = await t.call('GET', '/api/v1');
  const names = core.body.resources.map((r: { name: string }) => r.name);
  assert.ok(names.includes('pods') && names.includes('pods/status') && names.includes('namespaces'));
  const cilium = await t.call('GET', '/apis/cilium.io/v2');
  const cnp = cilium.body.resources.find((r: { name: string }) => r.name === 'ciliumnetworkpolicies');
  assert.deepEqual(cnp.shortNames, ['cnp', 'ciliumnp']);
  const ccnp = cilium.body.resources.find((r: { name: string }) => r.name === 'ciliumclusterwidenetworkpolicies');
  assert.equal(ccnp.namespaced, false);
  const eh = (await t.call('GET', '/apis/lab.palisade.dev/v1')).body.resources[0];
  assert.deepEqual([eh.kind, eh.namespaced, eh.shortNames], ['ExternalHost', false, ['eh']]);

  const agg = await t.call('GET', '/apis', undefined, {
    accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json',
  });
  assert.match(agg.headers.get('content-type') ?? '', /as=APIGroupDiscoveryList/);
  assert.equal(agg.body.kind, 'APIGroupDiscoveryList');
  assert.equal(agg.body.items.length, 4);
});

test('Table output for kubectl get', async () => {
  await t.call('POST', '/api/v1/namespaces/shop/pods', pod('tbl', {}, { spec: { nodeName: 'n9', containers: [{ name: 'c' }] } }));
  await t.call('PATCH', '/api/v1/namespaces/shop/pods/tbl/status', { status: { phase: 'Running', podIP: '10.0.0.9' } },
    { 'content-type': 'application/merge-patch+json' });
  const table = await t.call('GET', '/api/v1/namespaces/shop/pods?fieldSelector=metadata.name%3Dtbl', undefined, {
    accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
  });
  assert.equal(table.body.kind, 'Table');
  const cols = table.body.columnDefinitions.map((c: { name: string }) => c.name);
  assert.deepEqual(cols, ['Name', 'Ready', 'Status', 'Restarts', 'Age', 'IP', 'Node']);
  const cells = table.body.rows[0].cells;
  assert.deepEqual([cells[0], cells[2], cells[5], cells[6]], ['tbl', 'Running', '10.0.0.9', 'n9']);
  assert.equal(table.body.rows[0].object.kind, 'PartialObjectMetadata');
  assert.equal(table.body.rows[0].object.metadata.namespace, 'shop');
});
