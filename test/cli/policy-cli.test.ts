// `palisade policy validate` and `palisade policy trace`, run as a user runs them: bin/palisade in a subprocess.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
