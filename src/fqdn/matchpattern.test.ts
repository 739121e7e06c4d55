// The upstream Cilium matchpattern table (shared/fixtures/fqdn-matchpattern.json): every row must hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compileMatchName, compileMatchPattern, normaliseName, patternToRegexSource } from './index.ts';

interface Fixture {
  regexCompilation: Record<string, string>;
  cases: { pattern: string; match: string[]; noMatch: string[] }[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../../test/fixtures/fqdn-matchpattern.json', import.meta.url), 'utf8'),
) as Fixture;

test('matchPattern compiles to the same regular expressions as Cilium', () => {
  for (const [pattern, want] of Object.entries(fixture.regexCompilation)) {
    assert.equal(patternToRegexSource(pattern), want, pattern);
  }
});

for (const c of fixture.cases) {
  test(`matchPattern ${JSON.stringify(c.pattern)}`, () => {
    const m = compileMatchPattern(c.pattern);
    for (const name of c.match) assert.ok(m.matches(name), `${c.pattern} should match ${JSON.stringify(name)}`);
    for (const name of c.noMatch) assert.ok(!m.matches(name), `${c.pattern} should not match ${JSON.stringify(name)}`);
  });
}

test('names and patterns compare lower-case and fully qualified', () => {
  assert.equal(normaliseName('API.GitHub.com'), 'api.github.com.');
  assert.ok(compileMatchPattern('*.GITHUB.com').matches(normaliseName('Api.github.COM')));
  assert.ok(compileMatchName('Api.GitHub.com').matches('api.github.com.'));
  assert.ok(!compileMatchName('api.github.com').matches('www.api.github.com.'));
});

test('a leading **. needs at least one label before the domain', () => {
  const m = compileMatchPattern('**.example.com');
  assert.ok(m.matches('a.b.c.example.com.'));
  assert.ok(m.matches('a.example.com.'));
  assert.ok(!m.matches('example.com.'));
});
