// The lab CA and the world's address plan: files in a temporary directory, no privileges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { allocateWorldIp, ensureLabCa, fabricPortName, issueServerCert, trustBundle } from './index.ts';

test('ensureLabCa makes the CA once and keeps it (key 0600)', async () => {
  const dir = mkdtempSync(`${tmpdir()}/palisade-ca-`);
  try {
    const a = await ensureLabCa(dir, 'wtest');
    const b = await ensureLabCa(dir, 'wtest');
    assert.equal(a.certPem, b.certPem);
    const ca = new X509Certificate(a.certPem);
    assert.equal(ca.subject, 'CN=Palisade lab CA wtest');
    assert.equal(ca.ca, true);
    const years = (Date.parse(ca.validTo) - Date.now()) / (365 * 86_400_000);
    assert.ok(years > 9.9 && years < 10.1, `CA valid for ${years} years`);
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(statSync(`${dir}/ca-key.pem`).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('issueServerCert: signed by the lab CA, SANs = names + addresses, serverAuth, 1 year', async () => {
  const dir = mkdtempSync(`${tmpdir()}/palisade-ca-`);
  try {
    const ca = await ensureLabCa(dir, 'wtest');
    const { certPem, keyPem } = await issueServerCert(ca, ['api.github.com', 'www.github.com'], ['198.18.1.5']);
    const leaf = new X509Certificate(certPem);
    const caCert = new X509Certificate(ca.certPem);
    assert.ok(leaf.checkIssued(caCert));
    assert.ok(leaf.verify(caCert.publicKey));
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subjectAltName, 'DNS:api.github.com, DNS:www.github.com, IP Address:198.18.1.5');
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']); // node reports the extended key usage here
    assert.equal(leaf.checkHost('www.github.com'), 'www.github.com');
    assert.equal(leaf.checkIP('198.18.1.5'), '198.18.1.5');
    const days = (Date.parse(leaf.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 364 && days < 366, `leaf valid for ${days} days`);
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trustBundle is the system roots followed by the lab CA', () => {
  const dir = mkdtempSync(`${tmpdir()}/palisade-ca-`);
  try {
    writeFileSync(`${dir}/system.crt`, '-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----');
    const bundle = trustBundle('-----BEGIN CERTIFICATE-----\nLAB\n-----END CERTIFICATE-----\n', `${dir}/system.crt`);
    assert.match(bundle, /SYSTEM\n-----END CERTIFICATE-----\n# Palisade lab CA\n-----BEGIN CERTIFICATE-----\nLAB\n/);
    assert.equal(trustBundle('LAB', `${dir}/missing.crt`), '# Palisade lab CA\nLAB\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('allocateWorldIp: stable per name, never a taken, network or gateway address', () => {
  const a = allocateWorldIp('github', new Set());
  assert.equal(allocateWorldIp('github', new Set()), a);
  const b = allocateWorldIp('github', new Set([a]));
  assert.notEqual(b, a);
  for (const name of ['a', 'b', 'github', 'example', 'x'.repeat(63)]) {
    const ip = allocateWorldIp(name, new Set());
    const [o1, o2, o3, o4] = ip.split('.').map(Number);
    assert.deepEqual([o1, o2], [198, 18], ip);
    assert.ok(o3! >= 1 && o3! <= 255 && o4! >= 1 && o4! <= 254, ip);
  }
});

test('fabricPortName fits IFNAMSIZ and tells long names apart', () => {
  const table: [string, string][] = [
    ['github', 'x-github'],
    ['exactly13char', 'x-exactly13char'],
  ];
  for (const [host, port] of table) assert.equal(fabricPortName(host), port);
  const long1 = fabricPortName('external-api-one');
  const long2 = fabricPortName('external-api-two');
  assert.notEqual(long1, long2);
  for (const p of [long1, long2, fabricPortName('y'.repeat(63))]) assert.ok(p.length <= 15 && p.startsWith('x-'), p);
});
