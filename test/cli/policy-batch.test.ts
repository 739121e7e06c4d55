// `policy trace --batch` against single `policy trace` calls: 1,000 generated queries over a
// generated cluster (pods, services, KNP, CNP with L7 HTTP, deny and FQDN/DNS rules). The single
// calls run the CLI in-process (buildProgram, as bin/palisade does, minus a process per call).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../../src/cli/main.ts';
import { CliError } from '../../src/cli/style.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const scratch = mkdtempSync(`${tmpdir()}/palisade-policy-batch-`);
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A small deterministic PRNG: the same sample every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const NS = ['shop', 'pay', 'ops'];
const APPS = ['web', 'api', 'db'];
const objects: unknown[] = [];
const pods: string[] = [];
NS.forEach((ns, n) => {
  objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { team: ns } } });
  APPS.forEach((app, a) => {
    for (let i = 0; i < 2; i++) {
      const name = `${app}-${i}`;
      pods.push(`${ns}/${name}`);
      objects.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { app } }, spec: { containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] }, status: { podIP: `10.1.${n}.${a * 10 + i + 1}` } });
    }
    objects.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: app, namespace: ns }, spec: { clusterIP: `10.96.${n}.${a + 1}`, selector: { app }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] } });
  });
  objects.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'db-from-api', namespace: ns }, spec: { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { app: 'api' } } }], ports: [{ port: 8080, protocol: 'TCP' }] }] } });
  objects.push({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'api-l7', namespace: ns }, spec: { endpointSelector: { matchLabels: { app: 'api' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/v1/.*' }, { method: 'POST', path: '/v1/orders', headers: ['X-Team: ' + ns] }] } }] }], ingressDeny: [{ fromEntities: ['world'] }] } });
  objects.push({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'web-egress', namespace: ns }, spec: { endpointSelector: { matchLabels: { app: 'web' } }, egress: [{ toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } }], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }], rules: { dns: [{ matchPattern: '*.example.com' }] } }] }, { toFQDNs: [{ matchName: 'api.example.com' }], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }, { toEndpoints: [{ matchLabels: { app: 'api' } }] }] } });
});
objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } });
objects.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'coredns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } }, spec: { containers: [{ name: 'c' }] }, status: { podIP: '10.1.9.2' } });
pods.push('kube-system/coredns');
const manifest = `${scratch}/cluster.yaml`;
writeFileSync(manifest, objects.map((o) => JSON.stringify(o)).join('\n---\n'));

/** 1,000 queries in the flags' terms: pods, services, IPs, entities, FQDNs; TCP and UDP; HTTP and DNS. */
function sample(n: number): Record<string, unknown>[] {
  const r = rng(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const q: Record<string, unknown> = { src: pick([...pods, ...pods, 'world', '203.0.113.9', '10.1.0.1']) };
    const kind = r();
    if (kind < 0.55) q['dst'] = pick([...pods, 'world', 'host']);
    else if (kind < 0.7) q['dst'] = pick([`${pick(NS)}/${pick(APPS)}`, `10.96.${Math.floor(r() * 3)}.${1 + Math.floor(r() * 3)}`]);
    else if (kind < 0.85) {
      q['dst'] = pick(['api.example.com', 'evil.example.org']);
      q['fqdn-ip'] = ['api.example.com=198.51.100.7', 'evil.example.org=198.51.100.66'];
    } else {
      q['dst'] = 'kube-system/coredns';
      q['dns-name'] = pick(['www.example.com', 'evil.example.org', 'a.b.example.com']);
    }
    q['dport'] = q['dns-name'] !== undefined ? 53 : pick([8080, 8080, 80, 443, 5432]);
    if (q['dns-name'] !== undefined || r() < 0.1) q['protocol'] = q['dns-name'] !== undefined ? 'udp' : pick(['udp', 'tcp']);
    if (q['dns-name'] === undefined && r() < 0.4) {
      q['http-method'] = pick(['GET', 'POST', 'DELETE']);
      q['http-path'] = pick(['/v1/orders', '/v1/items/3', '/admin']);
      if (r() < 0.5) q['http-header'] = [`X-Team: ${pick(NS)}`];
    }
    out.push(q);
  }
  return out;
}

/** One `palisade policy trace … -o json` in-process: its stdout, or its error message. */
async function single(q: Record<string, unknown>): Promise<string> {
  const args = ['policy', 'trace', '-f', manifest, '-o', 'json'];
  for (const [k, v] of Object.entries(q)) for (const x of Array.isArray(v) ? v : [v]) args.push(`--${k}`, String(x));
  const log = console.log;
  let out = '';
  console.log = (s: string) => void (out += s);
  try {
    await buildProgram().parseAsync(args, { from: 'user' });
    return JSON.stringify(JSON.parse(out));
  } catch (err) {
    if (err instanceof CliError) return `error: ${err.message}`;
    throw err;
  } finally {
    console.log = log;
  }
}

test('trace --batch agrees with single trace calls on every query of a 1,000-query sample', async () => {
  const queries = sample(1000);
  writeFileSync(`${scratch}/queries.jsonl`, queries.map((q) => JSON.stringify(q)).join('\n'));
  const r = spawnSync(`${root}/bin/palisade`, ['policy', 'trace', '-f', manifest, '--batch', `${scratch}/queries.jsonl`], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, queries.length, r.stderr);
  let allowed = 0;
  let errors = 0;
  for (let i = 0; i < queries.length; i++) {
    const batch = JSON.parse(lines[i] as string) as { line?: number; error?: string; allowed?: boolean };
    const one = await single(queries[i] as Record<string, unknown>);
    if (batch.error !== undefined) {
      errors++;
      // The same fault, named by its flag in one and its field in the other.
      assert.equal(batch.line, i + 1);
      assert.equal(batch.error.replace(/^line \d+: /, '').replace(/\b(fqdn-ip|dst|src|dport)\b/g, '--$1').replace(/----/g, '--'), one.replace(/^error: /, ''), `query ${i + 1}: ${JSON.stringify(queries[i])}`);
    } else {
      if (batch.allowed === true) allowed++;
      assert.equal(JSON.stringify(batch), one, `query ${i + 1}: ${JSON.stringify(queries[i])}`);
    }
  }
  // The sample exercises both outcomes and the error path, not one of them.
  assert.ok(allowed > 100 && allowed < 900, `${allowed} of 1,000 allowed`);
  assert.ok(errors < 100, `${errors} of 1,000 queries were errors`);
  assert.equal(r.status, errors > 0 ? 2 : 0);
});
