/** Target normalisation: every rule of normalise.ts as a table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpProxyError } from './errors.ts';
import { normaliseTarget, type NormalisedTarget } from './normalise.ts';

function norm(raw: string, method = 'GET'): NormalisedTarget {
  const out: NormalisedTarget = { target: '', authority: undefined, changed: false };
  normaliseTarget(raw, method, out);
  return out;
}

test('normalised targets (rule numbers from normalise.ts)', () => {
  const cases: [raw: string, want: string][] = [
    ['/', '/'],
    ['/public/a?x=1&y=/../z', '/public/a?x=1&y=/../z'], // query kept as sent
    ['/public/../admin', '/admin'], // 5
    ['/public/./a', '/public/a'],
    ['/public/%2e%2e/admin', '/admin'], // 3c + 5
    ['/public/%2E%2E/admin', '/admin'],
    ['/public/.%2e/admin', '/admin'],
    ['//admin', '/admin'], // 4
    ['/a//b///c', '/a/b/c'],
    ['/a/b/', '/a/b/'], // trailing slash kept
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/..', '/'],
    ['/../../x', '/x'],
    ['/%61dmin', '/admin'], // 3c: unreserved decoded
    ['/a%7e', '/a~'],
    ['/a%3f', '/a%3F'], // 3d: kept, hex upper-cased
    ['/a%20b', '/a%20b'],
    ['/ADMIN', '/ADMIN'], // 7
    ['/admin;x', '/admin;x'], // 6
    ['/.well-known/x', '/.well-known/x'],
    ['/a/..b/c', '/a/..b/c'],
  ];
  for (const [raw, want] of cases) assert.equal(norm(raw).target, want, raw);
});

test('fast path: an ordinary target is returned unchanged, same string', () => {
  const raw = '/public/items?id=7';
  const n = norm(raw);
  assert.equal(n.target, raw);
  assert.equal(n.changed, false);
  assert.equal(norm('/public/%2e%2e/x').changed, true);
});

test('absolute-form: authority split off, origin-form forwarded', () => {
  assert.deepEqual(norm('http://Example.com:8080/a/../b?q'), { target: '/b?q', authority: 'Example.com:8080', changed: true });
  assert.deepEqual(norm('HTTP://h'), { target: '/', authority: 'h', changed: true });
  assert.deepEqual(norm('http://h?q=1'), { target: '/?q=1', authority: 'h', changed: true });
  assert.deepEqual(norm('*', 'OPTIONS'), { target: '*', authority: undefined, changed: false });
});

test('rejected targets (400, reason)', () => {
  const cases: [raw: string, reason: string, method?: string][] = [
    ['/admin#x', 'fragment-in-target'],
    ['/admin%00', 'encoded-nul'],
    ['/admin\x00', 'nul-in-target'],
    ['/ad\x7fmin', 'ctl-in-target'],
    ['/ad\tmin', 'ctl-in-target'],
    ['/ad\u00e9', 'ctl-in-target'],
    ['/public%2f..%2fadmin', 'encoded-slash'],
    ['/public%2F..%2Fadmin', 'encoded-slash'],
    ['/a%5c', 'encoded-slash'],
    ['/public\\..\\admin', 'backslash-in-path'],
    ['/a%2', 'bad-percent-encoding'],
    ['/a%zz', 'bad-percent-encoding'],
    ['/public/..;/admin', 'dot-segment-with-params'],
    ['/public/.;x/admin', 'dot-segment-with-params'],
    ['/public/%2e%2e;/admin', 'dot-segment-with-params'],
    ['*', 'asterisk-form-not-options'],
    ['admin', 'bad-target-form'],
    ['example.com:443', 'bad-target-form'],
    ['https://h/admin', 'absolute-https'],
    ['http://user@h/admin', 'userinfo-in-target'],
    ['http:///admin', 'bad-authority'],
  ];
  for (const [raw, reason, method] of cases) {
    assert.throws(
      () => norm(raw, method),
      (e: unknown) => e instanceof HttpProxyError && e.status === 400 && e.reason === reason,
      JSON.stringify(raw),
    );
  }
});
