/**
 * `palisade policy trace`: would this connection (or request) be allowed, and
 * by which rule? Loads objects from manifests into a fresh policy engine and
 * asks it, exactly as the agent would.
 */
import type { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { isIP } from 'node:net';
import { createInterface } from 'node:readline';
import type { Service } from '../k8s/index.ts';
import { PolicyEngine, type HttpRequest, type PeerRef, type PolicySnapshot, type Protocol, type Verdict } from '../policy/index.ts';
import { normaliseName } from '../fqdn/index.ts';
import { loadObjectsOrFail } from './load-objects.ts';
import { renderVerdict } from './trace-render.ts';
import { CliError } from './style.ts';

const ENTITIES = ['world', 'host', 'remote-node', 'kube-apiserver', 'ingress', 'init', 'health', 'unmanaged'];
const PROTOCOLS: Record<string, Protocol> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP', icmp: 'ICMP', icmpv6: 'ICMPv6' };

/** `--knp-ipblock`, on `policy trace` and `lab up`: whose meaning a NetworkPolicy ipBlock has. */
export const KNP_IPBLOCK_HELP =
  'what a NetworkPolicy ipBlock selects: kubernetes (default: every address in it, pods included) or cilium (addresses outside the cluster only, cilium#9209)';

export function knpIpBlockSelectsPods(text: string): boolean {
  if (text === 'kubernetes') return true;
  if (text === 'cilium') return false;
  throw new CliError(`--knp-ipblock: ${JSON.stringify(text)} is not kubernetes or cilium`);
}

interface TraceOptions {
  filename: string[];
  src?: string;
  dst?: string;
  dport?: string;
  protocol: string;
  httpMethod?: string;
  httpPath?: string;
  httpHost?: string;
  httpHeader: string[];
  dnsName?: string;
  fqdnIp: string[];
  knpIpblock: string;
  batch?: string;
  output: string;
}

export function registerTrace(policy: Command): void {
  policy
    .command('trace')
    .description('Explain whether a connection or request would be allowed, and by which rule')
    .requiredOption('-f, --filename <path...>', 'manifests with namespaces, pods (status.podIP), services and policies')
    .option('--src <peer>', 'source: ns/pod, an IP, or an entity (world, host, remote-node, …)')
    .option('--dst <peer>', 'destination: ns/pod, ns/service, an IP, an entity, or a DNS name given with --fqdn-ip')
    .option('--dport <port>', 'destination port (the ICMP type with --protocol icmp)')
    .option('--protocol <proto>', 'tcp, udp, sctp, icmp or icmpv6', 'tcp')
    .option('--http-method <method>', 'check an HTTP request with this method')
    .option('--http-path <path>', 'request target: path and query (default /)')
    .option('--http-host <host>', 'Host header of the request')
    .option('--http-header <header>', "a request header 'Name: value'; repeatable", collect, [])
    .option('--dns-name <name>', 'check a DNS query for this name (the destination is the DNS server)')
    .option('--fqdn-ip <name=ip>', 'NAME resolved to IP through the DNS proxy; repeatable', collect, [])
    .option('--knp-ipblock <semantics>', `${KNP_IPBLOCK_HELP}; as the agents' networkPolicy.ipBlockSelectsPods`, 'kubernetes')
    .option('--batch <file>', "many queries, one JSON object per line (- for stdin), each with the flags' fields; prints one JSON verdict per line")
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
Both sides are checked: the egress policy of the source (when it is a pod) and
the ingress policy of the destination (when it is a pod). A destination that is
a Service (ns/name or its ClusterIP) is traced to each of its backends.

Examples:
  palisade policy trace -f cluster.yaml --src prod/frontend --dst prod/backend --dport 80
  palisade policy trace -f cluster.yaml --src prod/frontend --dst prod/backend --dport 80 \\
      --http-method POST --http-path /admin
  palisade policy trace -f cluster.yaml --src prod/frontend --dst api.github.com --dport 443 \\
      --fqdn-ip api.github.com=140.82.112.6
  palisade policy trace -f cluster.yaml --src prod/frontend --dst kube-system/kube-dns \\
      --dport 53 --protocol udp --dns-name evil.example.com

Many questions in one run (the objects are loaded once):
  palisade policy trace -f cluster.yaml --batch queries.jsonl
  echo '{"src":"prod/frontend","dst":"prod/backend","dport":80,"http-method":"POST"}' \\
    | palisade policy trace -f cluster.yaml --batch -
  Each input line gives src, dst, dport and optionally protocol, http-method, http-path,
  http-host, http-header (a list), dns-name and fqdn-ip (a list of NAME=IP), as the flags
  do. Each output line is what -o json prints for that query, or {"line":N,"error":"…"}
  for a query that is wrong (the run then exits 2).`,
    )
    .action(async (opts: TraceOptions) => {
      if (opts.batch === undefined) {
        for (const flag of ['src', 'dst', 'dport'] as const) {
          if (opts[flag] === undefined) throw new CliError(`--${flag} is required (or give queries with --batch FILE)`);
        }
      }
      const snap = await loadSnapshot(opts.filename, opts.knpIpblock);
      if (opts.batch !== undefined) {
        process.exitCode = await traceBatch(snap, opts.batch);
        return;
      }
      const query: TraceQuery = { src: opts.src ?? '', dst: opts.dst ?? '', dport: opts.dport ?? '', protocol: opts.protocol, httpHeader: opts.httpHeader, fqdnIp: opts.fqdnIp };
      for (const k of ['httpMethod', 'httpPath', 'httpHost', 'dnsName'] as const) if (opts[k] !== undefined) query[k] = opts[k];
      const results = traceQuery(snap, query, flagName);
      if (opts.output === 'json') {
        console.log(JSON.stringify(traceJson(results), null, 2));
        return;
      }
      const http = results[0]?.http;
      const request = http ? `${http.method} ${http.path}` : opts.dnsName ? `DNS ${normaliseName(opts.dnsName)}` : undefined;
      console.log(results.map((r) => renderVerdict(r.verdict, { ...(request ? { request } : {}), ...(r.service ? { service: r.service } : {}) })).join('\n\n'));
      if (results.length > 1) {
        const ok = results.filter((r) => r.verdict.allowed).length;
        console.log(`\n${ok} of ${results.length} backends allowed`);
      }
    });
}

/** The manifests' objects compiled, as an agent would hold them (`knpIpblock`: the --knp-ipblock value). */
export async function loadSnapshot(files: string[], knpIpblock: string): Promise<PolicySnapshot> {
  const engine = new PolicyEngine({ ipBlockSelectsPods: knpIpBlockSelectsPods(knpIpblock) });
  const entries = await loadObjectsOrFail(files);
  engine.batch((e) => {
    for (const { object } of entries) e.upsert(object);
  });
  return engine.snapshot();
}

/** One question, as the flags ask it (values as strings or, from JSON, numbers). */
export interface TraceQuery {
  src: string;
  dst: string;
  dport: string | number;
  protocol?: string;
  httpMethod?: string;
  httpPath?: string;
  httpHost?: string;
  httpHeader?: string[];
  dnsName?: string;
  fqdnIp?: string[];
}

/** The verdict for one backend (a Service destination has one per backend). */
export interface TraceResult {
  service?: string;
  verdict: Verdict;
  http?: HttpRequest;
}

/** How an error names a query's field: `--dport` for flags, `dport` in a batch line. */
type FieldName = (field: keyof TraceQuery) => string;
const batchField: FieldName = (f) => f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const flagName: FieldName = (f) => `--${batchField(f)}`;

/** Answers one query against the loaded objects; a CliError names the field at fault. */
export function traceQuery(snap: PolicySnapshot, q: TraceQuery, field: FieldName = flagName): TraceResult[] {
  const protocol = PROTOCOLS[(q.protocol ?? 'tcp').toLowerCase()];
  if (!protocol) throw new CliError(`${field('protocol')}: ${JSON.stringify(q.protocol)} is not one of tcp, udp, sctp, icmp, icmpv6`);
  const port = typeof q.dport === 'number' ? q.dport : q.dport.trim() === '' ? NaN : Number(q.dport);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`${field('dport')}: ${JSON.stringify(q.dport)} is not a port number (0–65535)`);
  const fqdns = fqdnMap(q.fqdnIp ?? [], field);
  const http = httpRequest(q, field);
  const src = resolveSource(snap, q.src, field);
  const targets = resolveDestination(snap, q.dst, port, fqdns, field);
  const lookup = (ip: string): readonly string[] => fqdns.byIp.get(ip) ?? [];
  return targets.map((t) => ({
    ...(t.service !== undefined ? { service: t.service } : {}),
    ...(http ? { http } : {}),
    verdict: snap.verdict({ src, dst: t.ref, protocol, port: t.port, ...(http ? { http } : {}), ...(q.dnsName ? { dnsName: q.dnsName } : {}) }, lookup),
  }));
}

/** What `-o json` prints: the verdict, or one {service, verdict} per backend of a Service. */
export function traceJson(results: readonly TraceResult[]): unknown {
  return results.length === 1 && results[0]?.service === undefined ? results[0]?.verdict : results.map((r) => ({ service: r.service, verdict: r.verdict }));
}

/** A batch line's keys: the flags' long names, or their camelCase. */
const BATCH_KEYS: Record<string, keyof TraceQuery> = {};
for (const k of ['src', 'dst', 'dport', 'protocol', 'httpMethod', 'httpPath', 'httpHost', 'httpHeader', 'dnsName', 'fqdnIp'] as const) {
  BATCH_KEYS[k] = k;
  BATCH_KEYS[batchField(k)] = k;
}
const LIST_KEYS = new Set<keyof TraceQuery>(['httpHeader', 'fqdnIp']);

/** One batch line as a query; a CliError names the line and the key at fault. */
export function parseBatchLine(text: string, line: number): TraceQuery {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CliError(`line ${line}: not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CliError(`line ${line}: a query is a JSON object, e.g. {"src":"ns/pod","dst":"ns/pod","dport":80}`);
  const q: Partial<Record<keyof TraceQuery, unknown>> = {};
  for (const [key, value] of Object.entries(raw)) {
    const k = BATCH_KEYS[key];
    if (k === undefined) throw new CliError(`line ${line}: unknown field ${JSON.stringify(key)} (fields: ${Object.keys(BATCH_KEYS).filter((x) => !x.includes('-')).join(', ')}, or the flags' names)`);
    if (LIST_KEYS.has(k) ? !(Array.isArray(value) && value.every((v) => typeof v === 'string')) : !(typeof value === 'string' || (k === 'dport' && typeof value === 'number'))) {
      throw new CliError(`line ${line}: ${key}: ${JSON.stringify(value)} is not ${LIST_KEYS.has(k) ? 'a list of strings' : k === 'dport' ? 'a port number' : 'a string'}`);
    }
    q[k] = value;
  }
  for (const k of ['src', 'dst', 'dport'] as const) if (q[k] === undefined) throw new CliError(`line ${line}: ${k} is missing`);
  return q as TraceQuery;
}

/** `--batch`: a verdict line per query line; returns the exit code (2 when a line was wrong). */
async function traceBatch(snap: PolicySnapshot, file: string): Promise<number> {
  const input = file === '-' ? process.stdin : createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    if (file === '-') return resolve();
    input.once('open', () => resolve());
    input.once('error', (err: Error) => reject(new CliError(`--batch: ${err.message}`)));
  });
  await opened;
  // Answers go out in chunks, flushed whenever the loop waits for more input, not a write per line.
  let out: string[] = [];
  let flushQueued = false;
  const flush = (): void => {
    flushQueued = false;
    if (out.length > 0) process.stdout.write(out.join(''));
    out = [];
  };
  let bad = 0;
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    let answer: string;
    try {
      const q = parseBatchLine(text, line);
      answer = JSON.stringify(traceJson(traceQuery(snap, q, batchField)));
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      bad++;
      const error = err.message.startsWith('line ') ? err.message : `line ${line}: ${err.message}`;
      answer = JSON.stringify({ line, error });
      process.stderr.write(`error: ${error}\n`);
    }
    out.push(answer, '\n');
    if (out.length >= 1024) flush();
    else if (!flushQueued) {
      flushQueued = true;
      setImmediate(flush);
    }
  }
  flush();
  return bad > 0 ? 2 : 0;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

function fqdnMap(pairs: readonly string[], field: FieldName): { byName: Map<string, string[]>; byIp: Map<string, string[]> } {
  const byName = new Map<string, string[]>();
  const byIp = new Map<string, string[]>();
  for (const p of pairs) {
    const eq = p.indexOf('=');
    const name = p.slice(0, eq);
    const ip = p.slice(eq + 1);
    if (eq <= 0 || isIP(ip) === 0) throw new CliError(`${field('fqdnIp')}: ${JSON.stringify(p)} is not NAME=IP`);
    const n = normaliseName(name);
    byName.set(n, [...(byName.get(n) ?? []), ip]);
    byIp.set(ip, [...(byIp.get(ip) ?? []), n]);
  }
  return { byName, byIp };
}

function httpRequest(o: TraceQuery, field: FieldName): HttpRequest | undefined {
  if (o.httpMethod === undefined && o.httpPath === undefined) return undefined;
  const headers: Record<string, string> = {};
  for (const h of o.httpHeader ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new CliError(`${field('httpHeader')}: ${JSON.stringify(h)} is not 'Name: value'`);
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  const host = o.httpHost ?? headers['host'];
  return { method: o.httpMethod ?? 'GET', path: o.httpPath ?? '/', ...(host !== undefined ? { host } : {}), headers };
}

function resolveSource(snap: PolicySnapshot, s: string, field: FieldName): PeerRef {
  if (isIP(s)) return { ip: s };
  if (ENTITIES.includes(s)) return { entity: s as 'world' };
  if (s.includes('/')) {
    if (!snap.endpoint(s)) throw new CliError(`${field('src')}: no pod ${s} in the given objects${podHint(snap)}`);
    return { endpoint: s };
  }
  throw new CliError(`${field('src')}: ${JSON.stringify(s)} is neither ns/pod, an IP nor an entity (${ENTITIES.join(', ')})`);
}

interface Target {
  ref: PeerRef;
  port: number;
  service?: string;
}

function resolveDestination(
  snap: PolicySnapshot,
  d: string,
  port: number,
  fqdns: { byName: Map<string, string[]> },
  field: FieldName,
): Target[] {
  if (isIP(d)) {
    const svc = snap.serviceByIp(d);
    return svc ? serviceTargets(snap, svc, port, field) : [{ ref: { ip: d }, port }];
  }
  if (ENTITIES.includes(d)) return [{ ref: { entity: d as 'world' }, port }];
  if (d.includes('/')) {
    if (snap.endpoint(d)) return [{ ref: { endpoint: d }, port }];
    const [ns, name] = d.split('/');
    const svc = [...snap.services()].find((s) => (s.metadata.namespace ?? 'default') === ns && s.metadata.name === name);
    if (svc) return serviceTargets(snap, svc, port, field);
    throw new CliError(`${field('dst')}: no pod or service ${d} in the given objects${podHint(snap)}`);
  }
  const ips = fqdns.byName.get(normaliseName(d));
  if (!ips) throw new CliError(`${field('dst')}: ${d} looks like a DNS name; say what it resolved to with ${field('fqdnIp')} ${d}=IP`);
  return ips.map((ip) => ({ ref: { ip }, port }));
}

function serviceTargets(snap: PolicySnapshot, svc: Service, port: number, field: FieldName): Target[] {
  const name = `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
  const backends = snap.serviceBackends(svc, port);
  if (backends.length === 0) throw new CliError(`${field('dst')}: service ${name} has no backend pod for port ${port}`);
  return backends.map((b) => ({ ref: { endpoint: b.endpoint.key }, port: b.targetPort, service: name }));
}

function podHint(snap: PolicySnapshot): string {
  const names = [...snap.endpoints()].slice(0, 8).map((e) => e.key);
  return names.length ? ` (pods: ${names.join(', ')}${names.length === 8 ? ', …' : ''})` : ' (it holds no pods)';
}
