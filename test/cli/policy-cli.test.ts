// `palisade policy validate` and `palisade policy trace`, run as a user runs them: bin/palisade in a subprocess.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const palisade = (...args: string[]) => {
  const r = spawnSync(`${root}/bin/palisade`, args, { encoding: 'utf8', cwd: root, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test('validate lists all three faults of a file with their paths and exits 1', () => {
  const r = palisade('policy', 'validate', '-f', 'examples/faulty-policy.yaml');
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /faulty-policy\.yaml#1 spec\.egress\[0\]\.toFQDNs\[1\]\.matchPattern: '%' is not allowed in a DNS pattern/);
  assert.match(r.out, /faulty-policy\.yaml#1 spec\.egress\[0\]\.toPorts\[0\]\.ports\[0\]\.protocol: .*TCPX/);
  assert.match(r.out, /faulty-policy\.yaml#2 spec\.ingres: unknown field "ingres".*ingress/);
  assert.match(r.out, /3 faults/);
});

test('validate exits 0 on valid files and reports what it read', () => {
  const r = palisade('policy', 'validate', '-f', 'examples/star-wars/');
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /cluster\.yaml: 5 objects valid/);
  assert.match(r.out, /policy-l7\.yaml: 1 object valid/);
});

test('validate -o json gives each file’s faults with source, doc and path', () => {
  const r = palisade('policy', 'validate', '-f', 'examples/faulty-policy.yaml', '-o', 'json');
  assert.equal(r.code, 1);
  const [file] = JSON.parse(r.out) as { valid: boolean; faults: { doc: number; path: string }[] }[];
  assert.equal(file?.valid, false);
  assert.deepEqual(file?.faults.map((f) => `${f.doc} ${f.path}`).sort(), [
    '1 spec.egress[0].toFQDNs[1].matchPattern',
    '1 spec.egress[0].toPorts[0].ports[0].protocol',
    '2 spec.ingres',
  ]);
});

const sw = ['policy', 'trace', '-f', 'examples/star-wars/'];

test('trace: an allowed L7 request names the policy and rule that allowed it', () => {
  const r = palisade(...sw, '--src', 'default/tiefighter', '--dst', 'default/deathstar', '--dport', '80', '--http-method', 'POST', '--http-path', '/v1/request-landing');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /ingress of default\/deathstar\s+✓ allowed\s+allowed at L7 \(l7\/http\) by "method=POST path=\/v1\/request-landing"/);
  assert.match(r.out, /CiliumNetworkPolicy default\/rule1 at spec\.ingress\[0\]\.toPorts\[0\]/);
  assert.match(r.out, /verdict ALLOWED/);
});

test('trace: a denied L7 request says the proxy answers 403 and lists the rules that did not match', () => {
  const r = palisade(...sw, '--src', 'default/tiefighter', '--dst', 'default/deathstar', '--dport', '80', '--http-method', 'PUT', '--http-path', '/v1/exhaust-port');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /✗ method=POST path=\/v1\/request-landing/);
  assert.match(r.out, /verdict DENIED — the HTTP proxy answers 403 Access denied/);
});

test('trace: a connection dropped by default-deny names the policy that enforces it; a service is traced to its backends', () => {
  const r = palisade(...sw, '--src', 'default/xwing', '--dst', 'default/deathstar', '--dport', '80');
  assert.match(r.out, /default-deny because these rules select it\s+CiliumNetworkPolicy default\/rule1 at spec/);
  assert.match(r.out, /DENIED — dropped, POLICY_DENIED/);
  const viaService = palisade(...sw, '--src', 'default/xwing', '--dst', '10.96.0.80', '--dport', '80');
  assert.match(viaService.out, /backend of service default\/deathstar/);
  assert.match(viaService.out, /0 of 1 backends allowed|DENIED/);
});

test('trace -o json carries the verdict, the match kind and the policies', () => {
  const r = palisade(...sw, '--src', 'default/tiefighter', '--dst', 'default/deathstar', '--dport', '80', '-o', 'json');
  const v = JSON.parse(r.out) as { allowed: boolean; ingress: { reason: string; match: string; allowedBy: { name: string }[] } };
  assert.equal(v.allowed, true);
  assert.equal(v.ingress.reason, 'l7-redirect');
  assert.equal(v.ingress.match, 'l7/http');
  assert.deepEqual(v.ingress.allowedBy.map((o) => o.name), ['rule1']);
});

test('trace: a DNS name destination needs --fqdn-ip and is matched against toFQDNs', () => {
  const missing = palisade(...sw, '--src', 'default/xwing', '--dst', 'api.github.com', '--dport', '443');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--fqdn-ip api\.github\.com=IP/);
  const world = palisade(...sw, '--src', 'default/xwing', '--dst', 'api.github.com', '--dport', '443', '--fqdn-ip', 'api.github.com=140.82.112.6');
  assert.equal(world.code, 0, world.err);
  assert.match(world.out, /140\.82\.112\.6/);
  assert.match(world.out, /verdict ALLOWED/);
});

test('trace: bad input names the flag at fault', () => {
  const r = palisade(...sw, '--src', 'default/nobody', '--dst', 'default/deathstar', '--dport', '80');
  assert.equal(r.code, 2);
  assert.match(r.err, /--src: no pod default\/nobody/);
  const p = palisade(...sw, '--src', 'default/xwing', '--dst', 'default/deathstar', '--dport', '99999');
  assert.match(p.err, /--dport: "99999" is not a port number/);
});

const scratch = mkdtempSync(`${tmpdir()}/palisade-policy-cli-`);
after(() => rmSync(scratch, { recursive: true, force: true }));
let written = 0;
const cases = (yaml: string): string => {
  const file = `${scratch}/cases-${written++}.yaml`;
  writeFileSync(file, yaml);
  return file;
};

test('policy test: the example expectations all pass (exit 0)', () => {
  const r = palisade('policy', 'test', '-f', 'examples/star-wars/', '--cases', 'examples/policy-test/cases.yaml');
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /PASS {2}an empire ship may request landing\n.*POST \/v1\/request-landing \(allowed by default\/rule1\)/);
  assert.match(r.out, /PASS {2}the same holds through the deathstar Service/);
  assert.match(r.out, /5 of 5 cases passed/);
});

test('policy test: a wrong verdict and a wrong deciding policy fail with a report (exit 1)', () => {
  const file = cases(`
- name: xwing lands
  from: default/xwing
  to: default/deathstar
  port: 80
  expect: allow
- from: default/tiefighter
  to: default/deathstar
  port: 80
  http: {method: POST, path: /v1/request-landing}
  expect: allow
  policy: default/other
- from: default/tiefighter
  to: default/deathstar
  port: 80
  http: {method: POST, path: /v1/request-landing}
  expect: allow
  policy: rule1
`);
  const r = palisade('policy', 'test', '-f', 'examples/star-wars/', '--cases', file);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /FAIL {2}xwing lands\n.*\n {6}expected allow, got deny \(denied by default\/rule1\)/);
  assert.match(r.out, /FAIL {2}case 2\n.*\n {6}expected default\/other to decide, but default\/rule1 did/);
  assert.match(r.out, /PASS {2}case 3/);
  assert.match(r.out, /2 of 3 cases failed/);
  const json = JSON.parse(palisade('policy', 'test', '-f', 'examples/star-wars/', '--cases', file, '-o', 'json').out) as { passed: number; failed: number; cases: { got: string; passed: boolean }[] };
  assert.deepEqual([json.passed, json.failed, json.cases.map((c) => `${c.got} ${c.passed}`)], [1, 2, ['deny false', 'allow false', 'allow true']]);
});

test('policy test: bad cases are all named and nothing runs (exit 2)', () => {
  const r = palisade('policy', 'test', '-f', 'examples/star-wars/', '--cases', cases(`
cases:
  - {from: default/xwing, to: default/deathstar, port: 80, expect: deny}
  - {to: default/deathstar, port: "80", expect: maybe, colour: red}
`));
  assert.equal(r.code, 2, r.out + r.err);
  assert.equal(r.out, '');
  assert.match(r.err, /3 faults|4 faults/);
  assert.match(r.err, /cases\[1\]\.colour: unknown field/);
  assert.match(r.err, /cases\[1\]\.from: is missing/);
  assert.match(r.err, /cases\[1\]\.port: "80" is not a port number/);
  assert.match(r.err, /cases\[1\]\.expect: "maybe" is not allow or deny/);
  const pod = palisade('policy', 'test', '-f', 'examples/star-wars/', '--cases', cases('- {from: default/nobody, to: default/deathstar, port: 80, expect: deny}\n'));
  assert.equal(pod.code, 2);
  assert.match(pod.err, /cases\[0\]\.from: no pod default\/nobody in the given objects/);
});

test('trace --batch: bad lines answer with their error, the others with verdicts (exit 2)', () => {
  writeFileSync(`${scratch}/q.jsonl`, '{"src":"default/xwing","dst":"default/deathstar","dport":80}\n\nnot json\n{"src":"default/xwing","dst":"default/deathstar","dport":80,"colour":"red"}\n{"src":"default/xwing","dst":"api.github.com","dport":443}\n');
  const r = palisade(...sw, '--batch', `${scratch}/q.jsonl`);
  assert.equal(r.code, 2, r.err);
  const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as { allowed?: boolean; line?: number; error?: string });
  assert.equal(lines.length, 4);
  assert.equal(lines[0]?.allowed, false);
  assert.match(lines[1]?.error ?? '', /^line 3: not JSON/);
  assert.match(lines[2]?.error ?? '', /^line 4: unknown field "colour"/);
  assert.match(lines[3]?.error ?? '', /^line 5: dst: api\.github\.com looks like a DNS name; say what it resolved to with fqdn-ip/);
  const none = palisade(...sw, '--src', 'default/xwing');
  assert.equal(none.code, 2);
  assert.match(none.err, /--dst is required \(or give queries with --batch FILE\)/);
});
