import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { RESOURCES } from './resources.ts';

const podsResource = RESOURCES.find((r) => r.resource === 'pods')!;
const cnpResource = RESOURCES.find((r) => r.resource === 'ciliumnetworkpolicies')!;

const obj = (labels?: Record<string, string>, extra: Record<string, unknown> = {}) =>
  ({ metadata: { name: 'n', namespace: 'ns', ...(labels ? { labels } : {}) }, ...extra });

test('label selectors', () => {
  const labels = { app: 'web', tier: 'front', n: '5', empty: '' };
  const rows: [selector: string, matches: boolean][] = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app = web', true],
    ['app=db', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['app', true],
    ['missing', false],
    ['!missing', true],
    ['!app', false],
    ['app in (web,db)', true],
    ['app in (db)', false],
    ['app notin (db, cache)', true],
    ['missing notin (db)', true],
    ['missing in (db)', false],
    ['app=web,tier=front', true],
    ['app=web,tier=back', false],
    ['n>3', true],
    ['n<3', false],
    ['empty=', true],
    ['app in (web),!missing,tier', true],
  ];
  for (const [sel, want] of rows) assert.equal(parseLabelSelector(sel)(obj(labels)), want, sel);
  assert.equal(parseLabelSelector('!app')(obj()), true, 'objects without labels match !key');
  assert.equal(parseLabelSelector('app')(obj()), false);
});

test('malformed label selectors are 400', () => {
  for (const bad of ['app in (web', 'app in web', 'app=web,', '=web', 'app <> x', 'n>x']) {
    assert.throws(() => parseLabelSelector(bad), (e: { code?: number }) => e.code === 400, bad);
  }
});

test('field selectors', () => {
  const p = obj({}, { spec: { nodeName: 'n1' }, status: { phase: 'Running' } });
  const rows: [string, boolean][] = [
    ['metadata.name=n', true],
    ['metadata.name==n', true],
    ['metadata.name!=n', false],
    ['metadata.namespace=ns,spec.nodeName=n1', true],
    ['spec.nodeName=n2', false],
    ['spec.nodeName=', false],
    ['status.phase=Running', true],
  ];
  for (const [sel, want] of rows) assert.equal(parseFieldSelector(sel, podsResource)(p), want, sel);
  assert.equal(parseFieldSelector('spec.nodeName=', podsResource)(obj()), true, 'unscheduled pods have nodeName ""');
  assert.throws(() => parseFieldSelector('spec.nodeName=x', cnpResource), /field label not supported/);
  assert.throws(() => parseFieldSelector('nonsense', podsResource), /invalid selector/);
});
