/**
 * `palisade policy trace`: would this connection (or request) be allowed, and
 * by which rule? Loads objects from manifests into a fresh policy engine and
 * asks it, exactly as the agent would.
 */
import type { Command } from 'commander';
import { isIP } from 'node:net';
import type { Service } from '../k8s/index.ts';
import { PolicyEngine, type HttpRequest, type PeerRef, type PolicySnapshot, type Protocol } from '../policy/index.ts';
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
  src: string;
  dst: string;
  dport: string;
  protocol: string;
  httpMethod?: string;
  httpPath?: string;
  httpHost?: string;
  httpHeader: string[];
  dnsName?: string;
  fqdnIp: string[];
  knpIpblock: string;
  output: string;
}

export function registerTrace(policy: Command): void {
  policy
    .command('trace')
    .description('Explain whether a connection or request would be allowed, and by which rule')
    .requiredOption('-f, --filename <path...>', 'manifests with namespaces, pods (status.podIP), services and policies')
    .requiredOption('--src <peer>', 'source: ns/pod, an IP, or an entity (world, host, remote-node, …)')
    .requiredOption('--dst <peer>', 'destination: ns/pod, ns/service, an IP, an entity, or a DNS name given with --fqdn-ip')
    .requiredOption('--dport <port>', 'destination port (the ICMP type with --protocol icmp)')
    .option('--protocol <proto>', 'tcp, udp, sctp, icmp or icmpv6', 'tcp')
    .option('--http-method <method>', 'check an HTTP request with this method')
    .option('--http-path <path>', 'request target: path and query (default /)')
    .option('--http-host <host>', 'Host header of the request')
    .option('--http-header <header>', "a request header 'Name: value'; repeatable", collect, [])
    .option('--dns-name <name>', 'check a DNS query for this name (the destination is the DNS server)')
    .option('--fqdn-ip <name=ip>', 'NAME resolved to IP through the DNS proxy; repeatable', collect, [])
    .option('--knp-ipblock <semantics>', `${KNP_IPBLOCK_HELP}; as the agents' networkPolicy.ipBlockSelectsPods`, 'kubernetes')
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
      --dport 53 --protocol udp --dns-name evil.example.com`,
    )
    .action(async (opts: TraceOptions) => {
      const engine = new PolicyEngine({ ipBlockSelectsPods: knpIpBlockSelectsPods(opts.knpIpblock) });
      const entries = await loadObjectsOrFail(opts.filename);
      engine.batch((e) => {
        for (const { object } of entries) e.upsert(object);
      });
      const snap = engine.snapshot();
      const protocol = PROTOCOLS[opts.protocol.toLowerCase()];
      if (!protocol) throw new CliError(`--protocol: ${JSON.stringify(opts.protocol)} is not one of tcp, udp, sctp, icmp, icmpv6`);
      const port = Number(opts.dport);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--dport: ${JSON.stringify(opts.dport)} is not a port number (0–65535)`);
      const fqdns = fqdnMap(opts.fqdnIp);
      const http = httpRequest(opts);
      const src = resolveSource(snap, opts.src);
      const targets = resolveDestination(snap, opts.dst, port, fqdns);
      const lookup = (ip: string): readonly string[] => fqdns.byIp.get(ip) ?? [];
      const results = targets.map((t) => ({
        service: t.service,
        verdict: snap.verdict(
          { src, dst: t.ref, protocol, port: t.port, ...(http ? { http } : {}), ...(opts.dnsName ? { dnsName: opts.dnsName } : {}) },
          lookup,
        ),
      }));
      if (opts.output === 'json') {
        console.log(JSON.stringify(results.length === 1 && !results[0]?.service ? results[0]?.verdict : results, null, 2));
        return;
      }
      const request = http ? `${http.method} ${http.path}` : opts.dnsName ? `DNS ${normaliseName(opts.dnsName)}` : undefined;
      console.log(results.map((r) => renderVerdict(r.verdict, { ...(request ? { request } : {}), ...(r.service ? { service: r.service } : {}) })).join('\n\n'));
      if (results.length > 1) {
        const ok = results.filter((r) => r.verdict.allowed).length;
        console.log(`\n${ok} of ${results.length} backends allowed`);
      }
    });
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

function fqdnMap(pairs: string[]): { byName: Map<string, string[]>; byIp: Map<string, string[]> } {
  const byName = new Map<string, string[]>();
  const byIp = new Map<string, string[]>();
  for (const p of pairs) {
    const eq = p.indexOf('=');
    const name = p.slice(0, eq);
    const ip = p.slice(eq + 1);
    if (eq <= 0 || isIP(ip) === 0) throw new CliError(`--fqdn-ip: ${JSON.stringify(p)} is not NAME=IP`);
    const n = normaliseName(name);
    byName.set(n, [...(byName.get(n) ?? []), ip]);
    byIp.set(ip, [...(byIp.get(ip) ?? []), n]);
  }
  return { byName, byIp };
}

function httpRequest(o: TraceOptions): HttpRequest | undefined {
  if (o.httpMethod === undefined && o.httpPath === undefined) return undefined;
  const headers: Record<string, string> = {};
  for (const h of o.httpHeader) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new CliError(`--http-header: ${JSON.stringify(h)} is not 'Name: value'`);
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  const host = o.httpHost ?? headers['host'];
  return { method: o.httpMethod ?? 'GET', path: o.httpPath ?? '/', ...(host !== undefined ? { host } : {}), headers };
}

function resolveSource(snap: PolicySnapshot, s: string): PeerRef {
  if (isIP(s)) return { ip: s };
  if (ENTITIES.includes(s)) return { entity: s as 'world' };
  if (s.includes('/')) {
    if (!snap.endpoint(s)) throw new CliError(`--src: no pod ${s} in the given objects${podHint(snap)}`);
    return { endpoint: s };
  }
  throw new CliError(`--src: ${JSON.stringify(s)} is neither ns/pod, an IP nor an entity (${ENTITIES.join(', ')})`);
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
): Target[] {
  if (isIP(d)) {
    const svc = snap.serviceByIp(d);
    return svc ? serviceTargets(snap, svc, port) : [{ ref: { ip: d }, port }];
  }
  if (ENTITIES.includes(d)) return [{ ref: { entity: d as 'world' }, port }];
  if (d.includes('/')) {
    if (snap.endpoint(d)) return [{ ref: { endpoint: d }, port }];
    const [ns, name] = d.split('/');
    const svc = [...snap.services()].find((s) => (s.metadata.namespace ?? 'default') === ns && s.metadata.name === name);
    if (svc) return serviceTargets(snap, svc, port);
    throw new CliError(`--dst: no pod or service ${d} in the given objects${podHint(snap)}`);
  }
  const ips = fqdns.byName.get(normaliseName(d));
  if (!ips) throw new CliError(`--dst: ${d} looks like a DNS name; say what it resolved to with --fqdn-ip ${d}=IP`);
  return ips.map((ip) => ({ ref: { ip }, port }));
}

function serviceTargets(snap: PolicySnapshot, svc: Service, port: number): Target[] {
  const name = `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
  const backends = snap.serviceBackends(svc, port);
  if (backends.length === 0) throw new CliError(`--dst: service ${name} has no backend pod for port ${port}`);
  return backends.map((b) => ({ ref: { endpoint: b.endpoint.key }, port: b.targetPort, service: name }));
}

function podHint(snap: PolicySnapshot): string {
  const names = [...snap.endpoints()].slice(0, 8).map((e) => e.key);
  return names.length ? ` (pods: ${names.join(', ')}${names.length === 8 ? ', …' : ''})` : ' (it holds no pods)';
}
