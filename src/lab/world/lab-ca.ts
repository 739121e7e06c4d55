/**
 * The lab's certificate authority: one ECDSA P-256 CA per lab, made once and
 * kept in a directory (ca.pem, ca-key.pem 0600). It signs the server
 * certificates of the lab's outside world (ExternalHosts on 443), and lab pods
 * trust it through a bundle that is the system's roots plus this CA — so
 * `curl https://api.github.com` inside the lab verifies without `-k`.
 *
 *   ensureLabCa(dir, lab) ──► issueServerCert(ca, names, ips) ──► https-echo
 *            └──────────────► trustBundle(ca.certPem) ─────────► pods (SSL_CERT_FILE, CURL_CA_BUNDLE)
 */
import { webcrypto, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, dirname } from 'node:path';
import 'reflect-metadata'; // before @peculiar/x509, whose dependency injector needs the Reflect metadata API
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 86_400_000;
export const CA_VALIDITY_DAYS = 3650;
export const SERVER_CERT_VALIDITY_DAYS = 365;

/** Where the system keeps its roots (Debian's ca-certificates). */
export const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export interface LabCa {
  /** The directory holding ca.pem and ca-key.pem. */
  dir: string;
  certPath: string;
  certPem: string;
  cert: x509.X509Certificate;
  /** The CA's private key (signing only; never leaves this process except in ca-key.pem). */
  key: CryptoKey;
}

export interface ServerCert {
  certPem: string;
  keyPem: string;
}

export const caCertPath = (dir: string): string => `${dir}/ca.pem`;
export const caKeyPath = (dir: string): string => `${dir}/ca-key.pem`;

/**
 * The lab's CA from `dir`, made there first if it is not there yet (CN
 * "Palisade lab CA <lab>", 10 years). Calling it again returns the same CA.
 */
export async function ensureLabCa(dir: string, lab: string): Promise<LabCa> {
  if (existsSync(caCertPath(dir)) && existsSync(caKeyPath(dir))) return loadLabCa(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Palisade lab CA ${lab}`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  // The key first, the certificate last: a CA directory with ca.pem always has its key.
  await writeAtomic(caKeyPath(dir), await privateKeyPem(keys.privateKey), 0o600);
  await writeAtomic(caCertPath(dir), cert.toString('pem') + '\n', 0o644);
  return loadLabCa(dir);
}

export async function loadLabCa(dir: string): Promise<LabCa> {
  const certPem = await readFile(caCertPath(dir), 'utf8');
  const keyPem = await readFile(caKeyPath(dir), 'utf8');
  const key = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), EC_KEY, false, ['sign']);
  return { dir, certPath: caCertPath(dir), certPem, cert: new x509.X509Certificate(certPem), key };
}

/**
 * A server certificate signed by the lab CA: 1 year, SANs = `names` (+ `ips`),
 * EKU serverAuth, key usage digitalSignature (ECDHE-ECDSA needs nothing more).
 */
export async function issueServerCert(ca: LabCa, names: readonly string[], ips: readonly string[] = []): Promise<ServerCert> {
  if (names.length === 0 && ips.length === 0) throw new Error('a server certificate needs at least one name or address');
  for (const ip of ips) if (!isIP(ip)) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0] ?? ips[0]}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + SERVER_CERT_VALIDITY_DAYS * DAY_MS),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.map((value) => ({ type: 'dns' as const, value })),
        ...ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(keys.privateKey) };
}

/** The system's roots (when the machine has them) followed by the lab CA: what lab clients should trust. */
export function trustBundle(caPem: string, systemBundle = SYSTEM_BUNDLE): string {
  let system = '';
  try {
    system = readFileSync(systemBundle, 'utf8');
  } catch {
    /* no system roots: the lab CA alone */
  }
  const sep = system === '' || system.endsWith('\n') ? '' : '\n';
  return `${system}${sep}# Palisade lab CA\n${caPem.trim()}\n`;
}

/** Writes `trustBundle(ca.certPem)` to `path` (0644) and returns the path. */
export async function writeTrustBundle(ca: LabCa, path: string): Promise<string> {
  await writeAtomic(path, trustBundle(ca.certPem), 0o644);
  return path;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY') + '\n';
}

/** A positive 128-bit serial (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString('hex');
}

/** Write-then-rename; the temporary name starts with '.' so directory watchers (dnsmasq's --hostsdir) skip it. */
export async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${dirname(path)}/.${basename(path)}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}
