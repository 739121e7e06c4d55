/**
 * `palisade policy test`: policy expectations kept next to the manifests and
 * checked in CI. Each case asks what `policy trace` asks (from, to, port,
 * protocol, optionally an HTTP request or a DNS query) and says what it expects
 * (allow or deny, optionally the policy that decides). Every case is checked
 * before any is run: a case that cannot be asked (a field of the wrong type, a
 * pod that is not in the manifests) stops the run with exit 2, naming it.
 * A mismatch exits 1 with a report; all passing exits 0.
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { PolicySnapshot, RuleOrigin, Verdict } from '../policy/index.ts';
import { KNP_IPBLOCK_HELP, loadSnapshot, traceQuery, type TraceQuery, type TraceResult } from './policy-trace.ts';
import { bold, CliError, dim, green, red } from './style.ts';

/** One expectation as the cases file writes it. */
export interface PolicyCase {
  name: string;
  from: string;
  to: string;
  port: number;
  protocol: string;
  http?: { method: string; path: string; host?: string; headers: Record<string, string> };
  dns?: string;
  fqdn: Record<string, string>;
  expect: 'allow' | 'deny';
  /** `ns/name`, or `name` for a cluster-wide policy. */
  policy?: string;
}

/** What a case found, for the report and -o json. */
export interface CaseResult {
  name: string;
  passed: boolean;
  expected: 'allow' | 'deny';
  got: 'allow' | 'deny' | 'mixed';
  /** The policies that decided: what allowed it, or what denied or enforced default-deny. */
  decidedBy: string[];
  /** Why a failed case failed, in a sentence. */
  problem?: string;
}

const CASE_FIELDS = ['name', 'from', 'to', 'port', 'protocol', 'http', 'dns', 'fqdn', 'expect', 'policy'];
const HTTP_FIELDS = ['method', 'path', 'host', 'headers'];

export function registerPolicyTest(policy: Command): void {
  policy
    .command('test')
    .description('Check policy expectations (allow or deny, and by which policy) against manifests; exits 1 on a mismatch')
    .requiredOption('-f, --filename <path...>', 'manifests with namespaces, pods (status.podIP), services and policies')
    .requiredOption('--cases <file>', 'the expectations: YAML or JSON, a list of cases (or {cases: [...]})')
    .option('--knp-ipblock <semantics>', `${KNP_IPBLOCK_HELP}; as the agents' networkPolicy.ipBlockSelectsPods`, 'kubernetes')
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
A case:
  - name: frontend may call the API          # optional; shown in the report
    from: prod/frontend                      # ns/pod, an IP or an entity (world, host, …)
    to: prod/backend                         # ns/pod, ns/service, an IP, an entity or a DNS name
    port: 8080
    protocol: tcp                            # default tcp; udp, sctp, icmp, icmpv6
    http: {method: POST, path: /orders}      # optional: check this request at L7
    dns: api.github.com                      # optional: check this DNS query (to is the DNS server)
    fqdn: {api.github.com: 140.82.112.6}     # optional: what a DNS name in \`to\` resolved to
    expect: allow                            # allow or deny
    policy: prod/backend-ingress             # optional: a policy that must be among the deciding ones

Exit status: 0 every case passed, 1 a case failed, 2 the cases or manifests are wrong.

Example:
  palisade policy test -f examples/policy-test/ --cases examples/policy-test/cases.yaml`,
    )
    .action(async (opts: { filename: string[]; cases: string; knpIpblock: string; output: string }) => {
      const cases = parseCases(await readCasesFile(opts.cases), opts.cases);
      const results = runCases(await loadSnapshot(opts.filename, opts.knpIpblock), cases);
      const failed = results.filter((r) => !r.passed).length;
      if (opts.output === 'json') console.log(JSON.stringify({ passed: results.length - failed, failed, cases: results }, null, 2));
      else console.log(renderReport(cases, results));
      process.exitCode = failed > 0 ? 1 : 0;
    });
}

async function readCasesFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(`--cases: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new CliError(`${path}: not YAML or JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The cases of a parsed file; every fault of every case is listed in one CliError. */
export function parseCases(doc: unknown, source: string): PolicyCase[] {
  const list = Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null && Array.isArray((doc as { cases?: unknown }).cases) ? (doc as { cases: unknown[] }).cases : undefined;
  if (list === undefined) throw new CliError(`${source}: expected a list of cases, or {cases: [...]}`);
  if (list.length === 0) throw new CliError(`${source}: no cases`);
  const faults: string[] = [];
  const cases: PolicyCase[] = [];
  list.forEach((raw, i) => {
    const at = `cases[${i}]`;
    const fault = (field: string, text: string): void => void faults.push(`${at}.${field}: ${text}`);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      faults.push(`${at}: a case is a mapping (from, to, port, expect, …)`);
      return;
    }
    const c = raw as Record<string, unknown>;
    for (const k of Object.keys(c)) if (!CASE_FIELDS.includes(k)) fault(k, `unknown field (fields: ${CASE_FIELDS.join(', ')})`);
    const str = (k: string, required: boolean): string | undefined => {
      const v = c[k];
      if (v === undefined) {
        if (required) fault(k, 'is missing');
        return undefined;
      }
      if (typeof v !== 'string' || v === '') {
        fault(k, `${JSON.stringify(v)} is not a non-empty string`);
        return undefined;
      }
      return v;
    };
    const from = str('from', true);
    const to = str('to', true);
    const port = c['port'];
    if (port === undefined) fault('port', 'is missing');
    else if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) fault('port', `${JSON.stringify(port)} is not a port number (0–65535)`);
    const protocol = str('protocol', false) ?? 'tcp';
    const expect = c['expect'];
    if (expect === undefined) fault('expect', 'is missing (allow or deny)');
    else if (expect !== 'allow' && expect !== 'deny') fault('expect', `${JSON.stringify(expect)} is not allow or deny`);
    const dns = str('dns', false);
    const policy = str('policy', false);
    const name = str('name', false) ?? `case ${i + 1}`;
    let http: PolicyCase['http'];
    if (c['http'] !== undefined) {
      const h = c['http'];
      if (typeof h !== 'object' || h === null || Array.isArray(h)) fault('http', 'is a mapping (method, path, host, headers)');
      else {
        const hr = h as Record<string, unknown>;
        for (const k of Object.keys(hr)) if (!HTTP_FIELDS.includes(k)) fault(`http.${k}`, `unknown field (fields: ${HTTP_FIELDS.join(', ')})`);
        const hs = (k: string): string | undefined => {
          const v = hr[k];
          if (v === undefined) return undefined;
          if (typeof v !== 'string' || v === '') fault(`http.${k}`, `${JSON.stringify(v)} is not a non-empty string`);
          return typeof v === 'string' ? v : undefined;
        };
        const headers = stringMap(hr['headers'], (text) => fault('http.headers', text));
        const host = hs('host');
        http = { method: hs('method') ?? 'GET', path: hs('path') ?? '/', ...(host !== undefined ? { host } : {}), headers };
      }
    }
    const fqdn = stringMap(c['fqdn'], (text) => fault('fqdn', text));
    if (from === undefined || to === undefined || typeof port !== 'number' || (expect !== 'allow' && expect !== 'deny')) return;
    cases.push({ name, from, to, port, protocol, ...(http ? { http } : {}), ...(dns !== undefined ? { dns } : {}), fqdn, expect, ...(policy !== undefined ? { policy } : {}) });
  });
  if (faults.length > 0) throw new CliError(`${source}: ${faults.length} fault${faults.length === 1 ? '' : 's'}, no case was run:\n  ${faults.join('\n  ')}`);
  return cases;
}

function stringMap(v: unknown, fault: (text: string) => void): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    fault(`${JSON.stringify(v)} is not a mapping of strings`);
    return {};
  }
  return v as Record<string, string>;
}

/** A case as `policy trace` asks it; errors name the case's own fields. */
function caseQuery(c: PolicyCase): TraceQuery {
  return {
    src: c.from,
    dst: c.to,
    dport: c.port,
    protocol: c.protocol,
    ...(c.http ? { httpMethod: c.http.method, httpPath: c.http.path, httpHeader: Object.entries(c.http.headers).map(([k, v]) => `${k}: ${v}`), ...(c.http.host !== undefined ? { httpHost: c.http.host } : {}) } : {}),
    ...(c.dns !== undefined ? { dnsName: c.dns } : {}),
    fqdnIp: Object.entries(c.fqdn).map(([name, ip]) => `${name}=${ip}`),
  };
}

const CASE_FIELD: Record<keyof TraceQuery, string> = {
  src: 'from', dst: 'to', dport: 'port', protocol: 'protocol', httpMethod: 'http.method', httpPath: 'http.path',
  httpHost: 'http.host', httpHeader: 'http.headers', dnsName: 'dns', fqdnIp: 'fqdn',
};

/** Every case asked, then judged; a case that cannot be asked stops the run (exit 2) before any report. */
export function runCases(snap: PolicySnapshot, cases: readonly PolicyCase[]): CaseResult[] {
  const faults: string[] = [];
  const answers = cases.map((c, i) => {
    try {
      return traceQuery(snap, caseQuery(c), (f) => `cases[${i}].${CASE_FIELD[f]}`);
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      faults.push(err.message);
      return [];
    }
  });
  if (faults.length > 0) throw new CliError(`${faults.length} case${faults.length === 1 ? '' : 's'} cannot be checked against these manifests, no case was run:\n  ${faults.join('\n  ')}`);
  return cases.map((c, i) => judge(c, answers[i] ?? []));
}

function judge(c: PolicyCase, results: readonly TraceResult[]): CaseResult {
  const allowed = results.filter((r) => r.verdict.allowed).length;
  const got = allowed === results.length ? 'allow' : allowed === 0 ? 'deny' : 'mixed';
  const decidedBy = [...new Set(results.flatMap((r) => decidingOrigins(r.verdict)).map(originName))];
  let problem: string | undefined;
  if (got === 'mixed') problem = `${allowed} of ${results.length} backends of ${results[0]?.service ?? c.to} allowed`;
  else if (got !== c.expect) problem = `expected ${c.expect}, got ${got}`;
  else if (c.policy !== undefined && !decidedBy.some((p) => policyMatches(c.policy ?? '', p))) {
    problem = `expected ${c.policy} to decide, but ${decidedBy.length > 0 ? decidedBy.join(', ') : 'no policy'} did`;
  }
  return { name: c.name, passed: problem === undefined, expected: c.expect, got, decidedBy, ...(problem !== undefined ? { problem } : {}) };
}

/** The rules behind a verdict: what allowed it, or, for each direction that refused, what refused it. */
function decidingOrigins(v: Verdict): RuleOrigin[] {
  const out: RuleOrigin[] = [];
  for (const d of [v.egress, v.ingress]) {
    if (d === null) continue;
    if (v.allowed) out.push(...d.allowedBy, ...(d.reason === 'l7-allowed' ? (d.l7?.from ?? []) : []));
    else if (!d.allowed) out.push(...(d.reason === 'denied-by-rule' ? d.deniedBy : d.reason === 'default-deny' ? d.enforcedBy : (d.l7?.from ?? [])));
  }
  return out;
}

const originName = (o: RuleOrigin): string => (o.namespace !== undefined ? `${o.namespace}/${o.name}` : o.name);

/** `ns/name` names one namespaced policy; a bare name, a cluster-wide one (or any namespace's). */
function policyMatches(want: string, got: string): boolean {
  return want.includes('/') ? want === got : got === want || got.endsWith(`/${want}`);
}

function renderReport(cases: readonly PolicyCase[], results: readonly CaseResult[]): string {
  const lines = results.map((r, i) => {
    const c = cases[i] as PolicyCase;
    const ask = `${c.from} → ${c.to}:${c.port}/${c.protocol}${c.http ? ` ${c.http.method} ${c.http.path}` : ''}${c.dns !== undefined ? ` DNS ${c.dns}` : ''}`;
    const by = r.decidedBy.length > 0 ? dim(` (${r.got === 'allow' ? 'allowed' : 'denied'} by ${r.decidedBy.join(', ')})`) : '';
    const head = r.passed ? `${green('PASS')}  ${r.name}` : `${red('FAIL')}  ${bold(r.name)}`;
    return `${head}\n      ${dim(ask)}${r.passed ? by : `\n      ${r.problem ?? ''}${by}`}`;
  });
  const failed = results.filter((r) => !r.passed).length;
  const summary = failed === 0 ? green(`${results.length} of ${results.length} cases passed`) : red(`${failed} of ${results.length} cases failed`);
  return `${lines.join('\n')}\n\n${summary}`;
}
