import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LabelSet, Selector } from './index.ts';

const pod = new LabelSet([
  { source: 'k8s', key: 'app', value: 'web' },
  { source: 'k8s', key: 'tier', value: 'fe' },
]);
const host = new LabelSet([{ source: 'reserved', key: 'host', value: '' }]);

const cases: [string, Parameters<typeof Selector.fromLabelSelector>[0], LabelSet, boolean][] = [
  ['empty selector matches everything', {}, pod, true],
  ['matchLabels', { matchLabels: { app: 'web' } }, pod, true],
  ['matchLabels mismatch', { matchLabels: { app: 'db' } }, pod, false],
  ['source prefix k8s matches k8s labels', { matchLabels: { 'k8s:app': 'web' } }, pod, true],
  ['source prefix any matches any source', { matchLabels: { 'any:app': 'web' } }, pod, true],
  ['source prefix reserved does not match k8s labels', { matchLabels: { 'reserved:app': 'web' } }, pod, false],
  ['reserved:host selects the host', { matchLabels: { 'reserved:host': '' } }, host, true],
  ['In', { matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] }, pod, true],
  ['In without the key', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, pod, false],
  ['NotIn', { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, pod, false],
  ['NotIn matches an absent key', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, pod, true],
  ['Exists', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, pod, true],
  ['DoesNotExist', { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, pod, false],
  ['labels and expressions AND', { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['be'] }] }, pod, false],
];

for (const [name, sel, labels, want] of cases) {
  test(`selector: ${name}`, () => {
    assert.equal(Selector.fromLabelSelector(sel).matches(labels), want);
  });
}

test('equal selectors share one canonical key whatever the spelling', () => {
  const a = Selector.fromLabelSelector({ matchLabels: { app: 'web', 'any:tier': 'fe' } });
  const b = Selector.fromLabelSelector({ matchExpressions: [{ key: 'any:tier', operator: 'In', values: ['fe'] }], matchLabels: { 'any:app': 'web' } });
  assert.equal(a.key, b.key);
});
