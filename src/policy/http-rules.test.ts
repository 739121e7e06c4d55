// HTTP rule fields are RE2 patterns matched against the whole value, as Envoy
// matches them for Cilium; verdicts come from the policy snapshot, the code path
// the node's HTTP proxy asks for every request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ask, world } from '../../test/kit/policy-world.ts';
import type { HttpRequest } from './http-rules.ts';

const l7 = (rule: string): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: l7, namespace: prod}\nspec:\n  endpointSelector: {matchLabels: {app: backend}}\n  ingress:\n  - toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [${rule}]}}]\n`;

const request = (http: Partial<HttpRequest>): HttpRequest => ({ method: 'GET', path: '/', ...http });

// [rule, request, allowed]: Go RE2 syntax and full-value matching.
const cases: [rule: string, http: Partial<HttpRequest>, allowed: boolean][] = [
  ['{method: "GET|HEAD"}', { method: 'HEAD' }, true],
  ['{method: "GET|HEAD"}', { method: 'GETX' }, false],
  ['{method: "(?i)get"}', { method: 'gEt' }, true],
  ['{path: "/api/\\\\d+"}', { path: '/api/42' }, true],
  ['{path: "/api/\\\\d+"}', { path: '/api/42/x' }, false],
  ['{path: "/api/\\\\d+"}', { path: '/v2/api/42' }, false],
  ['{path: "/[[:alpha:]]+"}', { path: '/abc' }, true],
  ['{path: "/[[:alpha:]]+"}', { path: '/ab1' }, false],
  ['{path: "\\\\Q/a.b\\\\E"}', { path: '/a.b' }, true],
  ['{path: "\\\\Q/a.b\\\\E"}', { path: '/axb' }, false],
  ['{path: "/(?P<id>[0-9]+)"}', { path: '/7' }, true],
  ['{path: "/\\\\pL+"}', { path: '/héllo' }, true],
  ['{path: "/files/([a-z]+/?)+\\\\.txt"}', { path: '/files/a/bc/d.txt' }, true],
  // `.` stops at a newline unless (?s), as in Go.
  ['{path: "/a.*"}', { path: '/a\nb' }, false],
  ['{path: "(?s)/a.*"}', { path: '/a\nb' }, true],
  ['{host: "api\\\\.example\\\\.com"}', { host: 'api.example.com' }, true],
  ['{host: "api\\\\.example\\\\.com"}', { host: 'api.example.com.evil' }, false],
];

for (const [rule, http, allowed] of cases) {
  test(`RE2 HTTP rule ${rule} ${allowed ? 'allows' : 'denies'} ${JSON.stringify(http)}`, () => {
    const v = ask(world(l7(rule)), { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: request(http) });
    assert.equal(v.allowed, allowed, JSON.stringify(v.ingress?.l7));
    assert.equal(v.ingress?.reason, allowed ? 'l7-allowed' : 'l7-denied');
  });
}

// The acceptance asks for a bound: a backtracking engine took 34 s over the
// 34-character path below; RE2 takes time linear in the path.
const PATHOLOGICAL = '{path: "/files/([a-z]+/?)+\\\\.txt"}';
for (const length of [34, 10_000]) {
  test(`the pathological path rule answers a ${length}-character request in under 10 ms`, () => {
    const engine = world(l7(PATHOLOGICAL));
    engine.snapshot();
    const path = `/files/${'a'.repeat(length - 8)}!`;
    assert.equal(path.length, length);
    // The fastest of five: a loaded machine can preempt any one run, but not make matching exponential.
    let ms = Infinity;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const v = ask(engine, { src: 'prod/frontend', dst: 'prod/backend', port: 80, http: request({ path }) });
      ms = Math.min(ms, performance.now() - t0);
      assert.equal(v.ingress?.reason, 'l7-denied');
    }
    assert.ok(ms < 10, `verdict took ${ms.toFixed(1)} ms`);
  });
}
