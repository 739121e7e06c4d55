/** The flows table's filter words (`q`), each kind on flows it must and must not match, with observe's real flag parser. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowFilterError } from '../flows/index.ts';
import { allowFlow, dnsFlow, dropFlow, worldFlow } from '../../test/kit/flows.ts';
import { filtersFromFlags } from '../cli/observe-filters.ts';
import { textFilter } from './text-filter.ts';

const drop = dropFlow(); // default/frontend 10.244.1.7 → default/backend 10.244.2.9:80, identity 1234 → 5678, node1
const dns = dnsFlow(); // frontend → kube-system/coredns 10.96.0.10:53 UDP
const world = worldFlow(); // frontend → world 140.82.121.6:443, api.github.com, node2

const matches = (q: string): string[] =>
  Object.entries({ drop, allow: allowFlow(), dns, world })
    .filter(([, f]) => textFilter(q, filtersFromFlags)?.(f) ?? true)
    .map(([k]) => k);

test('kinds, sides and negation', () => {
  assert.deepEqual(matches(''), ['drop', 'allow', 'dns', 'world']);
  assert.deepEqual(matches('verdict=dropped'), ['drop']);
  assert.deepEqual(matches('!verdict=dropped'), ['allow', 'dns', 'world']);
  assert.deepEqual(matches('to:pod=backend'), ['drop', 'allow']);
  assert.deepEqual(matches('from:pod=backend'), []);
  assert.deepEqual(matches('pod=kube-system/coredns'), ['dns']);
  assert.deepEqual(matches('to:label=k8s:app=backend'), ['drop', 'allow']);
  assert.deepEqual(matches('ip=10.96.0.0/12'), ['dns']);
  assert.deepEqual(matches('to:ip=140.82.121.6'), ['world']);
  assert.deepEqual(matches('dns=*.github.com'), ['world']);
  assert.deepEqual(matches('to:identity=5678'), ['drop', 'allow']);
  assert.deepEqual(matches('namespace=kube-system'), ['dns']);
  assert.deepEqual(matches('to:workload=kube-system/coredns'), ['dns']);
  assert.deepEqual(matches('workload=backend'), ['drop', 'allow']);
  assert.deepEqual(matches('port=53 protocol=udp'), ['dns']);
  assert.deepEqual(matches('node=node2'), ['world']);
  assert.deepEqual(matches('to:pod=backend verdict=forwarded'), ['allow'], 'words AND');
  assert.deepEqual(matches('verdict=dropped,forwarded !to:pod=default/backend'), ['dns', 'world'], "observe's value lists");
  assert.deepEqual(matches('drop-reason=policy_denied'), ['drop'], 'any observe flag');
});

test('plain words match the row text; bad words name themselves', () => {
  assert.deepEqual(matches('POLICY_DENIED'), ['drop']);
  assert.deepEqual(matches('github'), ['dns', 'world']);
  assert.deepEqual(matches('10.244.2.9'), ['drop', 'allow']);
  for (const [q, want] of [['size=3', /unknown kind "size"/], ['from:github', /needs kind=value/], ['to:verdict=dropped', /no from:\/to: side/], ['pod=', /empty value/], ['identity=x', /not a number/], ['label=a,,b', /cannot parse label selector/], ['verdict=bogus', /q: "verdict=bogus": unknown verdict "BOGUS"/], ['from:dns-query=x', /no from:\/to: side/]] as const) {
    assert.throws(() => textFilter(q, filtersFromFlags), (err: unknown) => err instanceof FlowFilterError && want.test(err.message), q);
  }
});
