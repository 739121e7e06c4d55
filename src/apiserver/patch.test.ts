import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.ts';

test('RFC 7386 merge patch (examples from appendix A)', () => {
  const rows: [target: unknown, patch: unknown, result: unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of rows) {
    const before = structuredClone(target);
    assert.deepEqual(mergePatch(target, patch), result, JSON.stringify(patch));
    assert.deepEqual(target, before, 'the target is not mutated');
  }
});

test('RFC 6902 JSON patch', () => {
  const doc = { metadata: { labels: { a: '1' } }, list: [1, 2, 3] };
  assert.deepEqual(jsonPatch(doc, [
    { op: 'add', path: '/metadata/labels/b', value: '2' },
    { op: 'remove', path: '/list/0' },
    { op: 'add', path: '/list/-', value: 4 },
    { op: 'replace', path: '/metadata/labels/a', value: 'x' },
    { op: 'copy', from: '/metadata/labels/a', path: '/metadata/labels/c' },
    { op: 'move', from: '/list/0', path: '/first' },
    { op: 'test', path: '/first', value: 2 },
    { op: 'add', path: '/metadata/labels/k8s.io~1name', value: 'slash' },
  ]), { metadata: { labels: { a: 'x', b: '2', c: 'x', 'k8s.io/name': 'slash' } }, list: [3, 4], first: 2 });
  assert.deepEqual(doc, { metadata: { labels: { a: '1' } }, list: [1, 2, 3] }, 'not mutated');
  assert.throws(() => jsonPatch(doc, [{ op: 'test', path: '/list/0', value: 9 }]), (e: { code?: number }) => e.code === 422);
  assert.throws(() => jsonPatch(doc, [{ op: 'replace', path: '/nope', value: 1 }]), (e: { code?: number }) => e.code === 400);
  assert.throws(() => jsonPatch(doc, { op: 'add' }), (e: { code?: number }) => e.code === 400);
});

test('strategic merge patch: keyed lists, directives, plain maps', () => {
  const podObj = {
    metadata: { labels: { a: '1', b: '2' }, finalizers: ['x', 'y'] },
    spec: {
      containers: [
        { name: 'app', image: 'app:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], ports: [{ containerPort: 80 }] },
        { name: 'side', image: 'side:1' },
      ],
      tolerations: [{ key: 'k' }],
    },
  };
  const rows: [string, unknown, unknown][] = [
    ['maps merge', { metadata: { labels: { c: '3', a: null } } },
      { ...podObj, metadata: { ...podObj.metadata, labels: { b: '2', c: '3' } } }],
    ['keyed list merges by name, nested env by name', { spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '20' }] }] } },
      { ...podObj, spec: { ...podObj.spec, containers: [
        { ...podObj.spec.containers[0], env: [{ name: 'A', value: '1' }, { name: 'B', value: '20' }] }, podObj.spec.containers[1]] } }],
    ['$patch: delete removes a keyed element', { spec: { containers: [{ name: 'side', $patch: 'delete' }] } },
      { ...podObj, spec: { ...podObj.spec, containers: [podObj.spec.containers[0]] } }],
    ['$setElementOrder orders the result', { spec: { $setElementOrder: undefined, '$setElementOrder/containers': [{ name: 'side' }, { name: 'app' }], containers: [{ name: 'app', image: 'app:2' }] } },
      { ...podObj, spec: { ...podObj.spec, containers: [podObj.spec.containers[1], { ...podObj.spec.containers[0], image: 'app:2' }] } }],
    ['lists without merge key are replaced', { spec: { tolerations: [{ key: 'other' }] } },
      { ...podObj, spec: { ...podObj.spec, tolerations: [{ key: 'other' }] } }],
    ['$deleteFromPrimitiveList', { metadata: { '$deleteFromPrimitiveList/finalizers': ['x'] } },
      { ...podObj, metadata: { ...podObj.metadata, finalizers: ['y'] } }],
    ['$patch: replace on a map', { metadata: { labels: { $patch: 'replace', only: 'this' } } },
      { ...podObj, metadata: { ...podObj.metadata, labels: { only: 'this' } } }],
  ];
  for (const [name, patch, want] of rows) {
    const cleaned = JSON.parse(JSON.stringify(patch)); // drops the undefined placeholder
    assert.deepEqual(strategicMergePatch(podObj, cleaned), want, name);
  }
  const svc = { spec: { ports: [{ port: 80, name: 'http' }, { port: 443, name: 'https' }] } };
  assert.deepEqual(strategicMergePatch(svc, { spec: { ports: [{ port: 443, targetPort: 8443 }] } }),
    { spec: { ports: [{ port: 80, name: 'http' }, { port: 443, name: 'https', targetPort: 8443 }] } }, 'service ports merge by port');
});
