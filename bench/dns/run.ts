/**
 * DNS proxy benchmark: queries/s and added latency through the transparent
 * proxy vs straight to the upstream server, in one run. Root; builds its own
 * namespaces (`pl-dn<random>-{pod,node,srv}`, deleted at the end even on failure).
 *
 *   pod ──veth── node [nft tproxy :5300 → DnsProxy, pinned to CPU 0] ──veth── srv [dnsmasq]
 *   10.99.0.53 = dnsmasq through the proxy; 10.99.0.54 = the same dnsmasq, not steered.
 *
 * Throughput: dnsperf (Debian `dnsperf`) for 10 s per path, closed loop.
 * Latency: an open-loop Node load generator at a fixed rate, p50/p99 per path;
 * "added" = proxy − direct. The proxy runs on one core (taskset 0), allowed
 * names only (every answer is learned and goes through onLearned).
 *
 *   node bench/dns/run.ts [--seconds 10] [--rate 5000]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const CHILD = fileURLToPath(new URL('../../src/fqdn/dns-proxy-test-child.ts', import.meta.url));
const P = `pl-dn${randomBytes(3).toString('hex')}`;
const NS = { pod: `${P}-pod`, node: `${P}-node`, srv: `${P}-srv` };
const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const SECONDS = opt('--seconds', 10);
const RATE = opt('--rate', 5000);
const NAMES = Array.from({ length: 50 }, (_, i) => `h${i}.bench.test`);

const procs = new Set<ChildProcess>();
const sh = async (args: string[], input?: string): Promise<string> => {
  const p = execFileP(args[0]!, args.slice(1), { timeout: 120_000, maxBuffer: 64 << 20 });
  if (input !== undefined) p.child.stdin?.end(input);
  return (await p).stdout;
};
const inNs = (ns: string, args: string[], input?: string): Promise<string> => sh(['ip', 'netns', 'exec', ns, ...args], input);
function startIn(ns: string, args: string[]): { proc: ChildProcess; out: () => string } {
  const proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  proc.on('exit', () => procs.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, out: () => out };
}

async function setup(): Promise<void> {
  for (const ns of Object.values(NS)) {
    await sh(['ip', 'netns', 'add', ns]);
    await sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await sh(['ip', 'link', 'add', 'p0', 'netns', NS.pod, 'type', 'veth', 'peer', 'name', 'n0', 'netns', NS.node]);
  await sh(['ip', 'link', 'add', 's0', 'netns', NS.srv, 'type', 'veth', 'peer', 'name', 'n1', 'netns', NS.node]);
  const batch = (ns: string, lines: string[]): Promise<string> => sh(['ip', '-n', ns, '-batch', '-'], lines.join('\n') + '\n');
  await batch(NS.pod, ['addr add 10.98.0.2/24 dev p0', 'link set p0 up', 'route add default via 10.98.0.1']);
  await batch(NS.node, [
    'addr add 10.98.0.1/24 dev n0', 'link set n0 up', 'addr add 10.97.0.1/24 dev n1', 'link set n1 up',
    'route add 10.99.0.0/24 via 10.97.0.2', 'rule add fwmark 1 lookup 100', 'route add local 0.0.0.0/0 dev lo table 100',
  ]);
  await batch(NS.srv, ['addr add 10.97.0.2/24 dev s0', 'link set s0 up', 'route add default via 10.97.0.1', 'addr add 10.99.0.53/32 dev lo', 'addr add 10.99.0.54/32 dev lo']);
  await inNs(NS.node, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  await inNs(NS.node, ['nft', '-f', '-'], `
table inet palisade_dns_bench {
  chain p {
    type filter hook prerouting priority mangle; policy accept;
    iifname "n0" ip daddr 10.99.0.53 meta l4proto udp udp dport 53 tproxy ip to :5300 meta mark set 1 accept
  }
}
`);
  startIn(NS.srv, [
    'taskset', '-c', '1', 'dnsmasq', '-k', '--conf-file=/dev/null', '--listen-address=10.99.0.53,10.99.0.54', '--bind-interfaces',
    '--no-resolv', '--no-hosts', '-u', 'root', '--pid-file=', '--local-ttl=300', '--dns-forward-max=10000',
    ...NAMES.map((n, i) => `--host-record=${n},10.200.${i >> 8}.${i & 0xff}`),
  ]);
  const proxy = startIn(NS.node, ['taskset', '-c', '0', process.execPath, CHILD, 'proxy', '5300', '--allow', '**.bench.test', '--quiet']);
  for (let i = 0; !proxy.out().includes('"ready"'); i++) {
    if (i > 100 || proxy.out().includes('fatal')) throw new Error(`proxy did not start: ${proxy.out()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (let i = 0; ; i++) {
    const r = await inNs(NS.pod, ['dig', '@10.99.0.53', NAMES[0]!, '+short', '+tries=1', '+time=1']).catch(() => '');
    if (r.trim() === '10.200.0.0') break;
    if (i > 30) throw new Error('no answer through the proxy');
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

interface PerfResult {
  qps: number;
  avgLatencyMs: number;
  lostPct: number;
}

async function dnsperf(server: string, file: string): Promise<PerfResult> {
  const out = await inNs(NS.pod, ['taskset', '-c', '1', 'dnsperf', '-s', server, '-d', file, '-l', String(SECONDS), '-q', '200', '-t', '2']);
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    lostPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/),
  };
}

interface LoadResult {
  sent: number;
  answered: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

async function load(server: string): Promise<LoadResult> {
  const out = await inNs(NS.pod, ['taskset', '-c', '1', process.execPath, CHILD, 'load', server, String(RATE), String(SECONDS), NAMES.join(',')]);
  return JSON.parse(out.trim().split('\n').pop()!) as LoadResult;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/dns: must run as root');
  const dir = mkdtempSync(join(tmpdir(), 'pl-dns-bench-'));
  try {
    await setup();
    const file = join(dir, 'queries.txt');
    writeFileSync(file, NAMES.map((n) => `${n} A`).join('\n') + '\n');
    // Warm up both paths (reply socket, learned names).
    await dnsperf('10.99.0.53', file).catch(() => {});
    const direct = await dnsperf('10.99.0.54', file);
    const proxied = await dnsperf('10.99.0.53', file);
    const lDirect = await load('10.99.0.54');
    const lProxied = await load('10.99.0.53');
    const round = (n: number): number => Math.round(n);
    const result = {
      setup: { seconds: SECONDS, latencyRate: RATE, proxyCores: 1, names: NAMES.length, upstream: 'dnsmasq (local records)' },
      throughput: {
        direct: { qps: round(direct.qps), lostPct: direct.lostPct },
        proxied: { qps: round(proxied.qps), lostPct: proxied.lostPct },
      },
      latencyUs: {
        direct: { p50: lDirect.p50Us, p99: lDirect.p99Us, max: lDirect.maxUs, answered: `${lDirect.answered}/${lDirect.sent}` },
        proxied: { p50: lProxied.p50Us, p99: lProxied.p99Us, max: lProxied.maxUs, answered: `${lProxied.answered}/${lProxied.sent}` },
        added: { p50: lProxied.p50Us - lDirect.p50Us, p99: lProxied.p99Us - lDirect.p99Us },
      },
      targets: {
        qpsAtLeast20000: proxied.qps >= 20_000,
        addedP99AtMost1ms: lProxied.p99Us - lDirect.p99Us <= 1000,
      },
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    for (const p of procs) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const p of procs) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
    for (const ns of Object.values(NS)) await sh(['ip', 'netns', 'delete', ns]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
