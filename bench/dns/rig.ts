/**
 * The DNS benchmarks' rig: three namespaces of its own, dnsmasq, the proxy
 * child, dnsperf. Root. Everything it made goes in teardown(), even after a failure.
 *
 *   pod [dnsperf, CPU 1] ──veth── node [nft tproxy :5300 → DnsProxy, CPU 0] ──veth── srv [dnsmasq, CPU 1]
 *   10.98.0.2                     10.98.0.1 | 10.97.0.1                             10.97.0.2
 *   10.99.0.53 = dnsmasq through the proxy; 10.99.0.54 = the same dnsmasq, not steered.
 *
 * dnsmasq answers `h<i>.bench.test` (50 names, each its own IP) and any
 * `*.cold.bench.test` (one IP); the proxy allows `**.bench.test`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTproxyTopology } from '../../test/kit/tproxy-topology.ts';

const execFileP = promisify(execFile);
export const CHILD = fileURLToPath(new URL('../../test/kit/dns-proxy-child.ts', import.meta.url));
export const PROXIED = '10.99.0.53';
export const DIRECT = '10.99.0.54';
export const WARM_NAMES = Array.from({ length: 50 }, (_, i) => `h${i}.bench.test`);

export const sh = async (args: string[], input?: string): Promise<string> => {
  const p = execFileP(args[0]!, args.slice(1), { timeout: 600_000, maxBuffer: 256 << 20 });
  if (input !== undefined) p.child.stdin?.end(input);
  return (await p).stdout;
};

export interface Started {
  proc: ChildProcess;
  out(): string;
}

export interface PerfRun {
  completed: number;
  qps: number;
  lostPct: number;
  /** Per answered query, µs, sorted; only with `verbose`. */
  latUs: Float64Array;
  /** Answers over 1 ms, and how they cluster (in answer order); only with `verbose`. */
  slow: SlowAnswers;
}

/**
 * Answers slower than 1 ms, grouped into bursts (slow answers with fewer
 * than BURST_GAP answers between them): a few large bursts are stalls of the
 * process or its CPU; many bursts of one are slowness spread over the run.
 */
export interface SlowAnswers {
  over1ms: number;
  bursts: number;
  largestBurst: number;
}

const BURST_GAP = 50;

export function slowAnswers(inOrder: readonly number[]): SlowAnswers {
  const r: SlowAnswers = { over1ms: 0, bursts: 0, largestBurst: 0 };
  let last = -Infinity;
  let size = 0;
  inOrder.forEach((us, i) => {
    if (us <= 1000) return;
    r.over1ms++;
    if (i - last > BURST_GAP) {
      r.bursts++;
      size = 0;
    }
    size++;
    r.largestBurst = Math.max(r.largestBurst, size);
    last = i;
  });
  return r;
}

export interface DnsperfOptions {
  seconds?: number;
  /** Go through the file once (-n 1). */
  onePass?: boolean;
  /** Offered queries/s (-Q). */
  rate?: number;
  /** Per-answer latencies (-v). */
  verbose?: boolean;
  outstanding?: number;
}

export class DnsRig {
  readonly prefix = `pl-dn${randomBytes(3).toString('hex')}`;
  readonly ns = { pod: `${this.prefix}-pod`, node: `${this.prefix}-node`, srv: `${this.prefix}-srv` };
  readonly dir = mkdtempSync(join(tmpdir(), 'pl-dns-bench-'));
  readonly #procs = new Set<ChildProcess>();

  inNs(ns: string, args: string[], input?: string): Promise<string> {
    return sh(['ip', 'netns', 'exec', ns, ...args], input);
  }

  /** `ip netns exec` and `taskset` exec in place, so the pid is the program's own. */
  startIn(ns: string, args: string[]): Started {
    const proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#procs.add(proc);
    proc.on('exit', () => this.#procs.delete(proc));
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return { proc, out: () => out };
  }

  /** Namespaces, veths, TPROXY, dnsmasq (CPU 1). */
  async up(): Promise<void> {
    const { ns } = this;
    await createTproxyTopology(ns, [PROXIED, DIRECT]);
    await this.inNs(ns.node, ['nft', '-f', '-'], `
table inet palisade_dns_bench {
  chain p {
    type filter hook prerouting priority mangle; policy accept;
    iifname "n0" ip daddr ${PROXIED} meta l4proto udp udp dport 53 tproxy ip to :5300 meta mark set 1 accept
    meta l4proto udp ct direction reply socket transparent 1 socket wildcard 0 meta mark set 1 accept
  }
}
`);
    // No --dns-forward-max: it answers everything itself, and a large forward
    // table costs dnsmasq a scan of every slot per packet (10,000 slots
    // doubled its CPU per query, which shares CPU 1 with dnsperf and capped
    // both paths' raw q/s).
    this.startIn(ns.srv, [
      'taskset', '-c', '1', 'dnsmasq', '-k', '--conf-file=/dev/null', `--listen-address=${PROXIED},${DIRECT}`, '--bind-interfaces',
      '--no-resolv', '--no-hosts', '-u', 'root', '--pid-file=', '--local-ttl=300', '--cache-size=0',
      '--address=/cold.bench.test/10.201.0.1',
      ...WARM_NAMES.map((n, i) => `--host-record=${n},10.200.${i >> 8}.${i & 0xff}`),
    ]);
  }

  /**
   * The proxy child (`child`: this tree's by default) on UDP :5300 in the
   * node namespace, run by `prefix` (taskset, valgrind, node and its flags);
   * resolves once it answers.
   */
  async startProxy(prefix: string[], readyTimeoutMs = 10_000, child = CHILD): Promise<Started> {
    const proxy = this.startIn(this.ns.node, [...prefix, child, 'proxy', '5300', '--allow', '**.bench.test', '--quiet']);
    const deadline = Date.now() + readyTimeoutMs;
    while (!proxy.out().includes('"ready"')) {
      if (Date.now() > deadline || proxy.out().includes('fatal') || proxy.proc.exitCode !== null) throw new Error(`proxy did not start: ${proxy.out()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (let i = 0; ; i++) {
      const r = await this.inNs(this.ns.pod, ['dig', `@${PROXIED}`, WARM_NAMES[0]!, '+short', '+tries=1', '+time=2']).catch(() => '');
      if (r.trim() === '10.200.0.0') return proxy;
      if (i > 30) throw new Error('no answer through the proxy');
      await new Promise((r2) => setTimeout(r2, 100));
    }
  }

  /** A query file in the rig's directory. */
  queryFile(name: string, names: readonly string[]): string {
    const f = join(this.dir, name);
    writeFileSync(f, names.map((n) => `${n} A`).join('\n') + '\n');
    return f;
  }

  /**
   * dnsperf from the pod (CPU 1). Its report goes to a file, not a pipe: with
   * `-v` it writes a line per answer, and a pipe would wake this process
   * thousands of times a second, on any CPU, the proxy's included (seen:
   * 140–200 ms of CPU 0 per second taken from the proxy at 5,000 q/s).
   */
  async dnsperf(server: string, file: string, o: DnsperfOptions): Promise<PerfRun> {
    const args = ['taskset', '-c', '1', 'dnsperf', '-s', server, '-d', file, '-q', String(o.outstanding ?? 200), '-t', '2', '-b', '4096'];
    if (o.seconds !== undefined) args.push('-l', String(o.seconds));
    if (o.onePass) args.push('-n', '1');
    if (o.rate !== undefined) args.push('-Q', String(o.rate));
    if (o.verbose) args.push('-v');
    const report = join(this.dir, 'dnsperf.out');
    const fd = openSync(report, 'w');
    try {
      const p = spawn('ip', ['netns', 'exec', this.ns.pod, ...args], { stdio: ['ignore', fd, fd] });
      const code = await new Promise<number | null>((resolve, reject) => p.once('error', reject).once('exit', resolve));
      if (code !== 0) throw new Error(`dnsperf exited ${code}: ${readFileSync(report, 'utf8').slice(-500)}`);
    } finally {
      closeSync(fd);
    }
    const out = readFileSync(report, 'utf8');
    const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
    let latUs = new Float64Array(0);
    let slow = slowAnswers([]);
    if (o.verbose) {
      // `> NOERROR h1.bench.test A 0.000123` per answer (latency in seconds).
      const l: number[] = [];
      for (const m of out.matchAll(/^> NOERROR \S+ \S+ ([\d.]+)$/gm)) l.push(Number(m[1]) * 1e6);
      slow = slowAnswers(l);
      latUs = Float64Array.from(l).sort();
    }
    return {
      completed: num(/Queries completed:\s+(\d+)/),
      qps: num(/Queries per second:\s+([\d.]+)/),
      lostPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/),
      latUs,
      slow,
    };
  }

  /** SIGTERM (then SIGKILL) to what the rig started, by pid; namespaces and files removed. */
  async down(): Promise<void> {
    for (const p of this.#procs) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGTERM');
    for (let i = 0; i < 100 && this.#procs.size > 0; i++) await new Promise((r) => setTimeout(r, 100));
    for (const p of this.#procs) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
    for (const n of Object.values(this.ns)) await sh(['ip', 'netns', 'delete', n]).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Sorted sample → the value at quantile p. */
export const quantile = (sorted: Float64Array, p: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN);

export const loadavg = async (): Promise<string> => (await sh(['cat', '/proc/loadavg'])).split(' ').slice(0, 3).join(' ');
