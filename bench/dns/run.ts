/**
 * bench/dns: the transparent DNS proxy vs straight to the upstream server,
 * in one run. Root; builds its own namespaces (`pl-dn<random>-{pod,node,srv}`,
 * deleted at the end even on failure).
 *
 *   pod [dnsperf, CPU 1] ──veth── node [nft tproxy :5300 → DnsProxy, CPU 0] ──veth── srv [dnsmasq, CPU 1]
 *   10.99.0.53 = dnsmasq through the proxy; 10.99.0.54 = the same dnsmasq, not steered.
 *
 * What is measured (dnsperf is the load generator for everything: C, no GC):
 * 1. Throughput: dnsperf closed loop (`-q OUTSTANDING`) for SECONDS per path,
 *    over 50 allowed names whose IPs the proxy has already learned (a warm-up
 *    run learns them): the steady state of pods asking for the same names.
 *    The proxy is pinned to CPU 0; dnsperf and dnsmasq share CPU 1, so the
 *    raw proxied figure can be capped by CPU 1 (the direct figure shows that
 *    ceiling). Hence also: the proxy process's CPU time (user + sys from
 *    /proc/<pid>/stat, all its threads, kernel work done in its syscalls
 *    included) per answered query, and its inverse, queries/s per core.
 * 2. Cold names: the same, over unique names never seen (`u<N>.cold.bench.test`,
 *    one pass): every answer is new, goes through onLearned (which resolves
 *    at once in the bench child) and is held until it does.
 * 3. Latency (measured before 2, in the steady state of warm names: the
 *    cold phase leaves 100,000 names that all expire together later):
 *    dnsperf at a fixed offered rate (`-Q RATE`, below saturation)
 *    with `-v`, which prints each answer's latency; p50/p99 per path over the
 *    same warm names; the paths alternate (direct, proxied, direct, proxied,
 *    SECONDS/2 each) so load elsewhere on the machine hits both alike;
 *    "added" = proxied − direct, per percentile. Answers over 1 ms are
 *    counted and grouped into bursts in answer order: a few large bursts
 *    are stalls (a GC pause, the CPU taken), many small ones slowness
 *    spread over the run.
 * This script itself runs on CPU 1 too, and reads dnsperf's reports from
 * files once each run is over. The load average before and after is printed, and how long the proxy
 * waited runnable for CPU 0: on a busy machine (other work on CPU 0 or 1)
 * raw q/s and latency suffer, CPU per query much less. `--proxy-nice N`
 * runs the proxy at that nice value: a diagnostic that shows what the
 * proxy adds once it is not starved by other work on CPU 0 (printed in the
 * header; an agent could do the same, the direct path's dnsmasq does not).
 * The child counts events (onEvent set, as the agent will) but prints none.
 *
 *   node bench/dns/run.ts [--seconds 10] [--rate 5000] [--outstanding 200] [--cold 100000]
 *                         [--child other/tree/test/kit/dns-proxy-child.ts] [--proxy-nice=-10] [--proxy-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--proxy-log FILE] [--json]
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { DIRECT, DnsRig, loadavg, PROXIED, quantile, WARM_NAMES, type PerfRun, type SlowAnswers } from './rig.ts';
import { AGENT_NODE_FLAGS } from '../../src/lab/lifecycle.ts';
import { needProgram } from '../tools.ts';

if (process.getuid?.() !== 0) throw new Error('bench/dns: must run as root');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '5000' },
    outstanding: { type: 'string', default: '200' },
    cold: { type: 'string', default: '100000' },
    'proxy-node-args': { type: 'string', default: '' },
    'proxy-log': { type: 'string' },
    'proxy-nice': { type: 'string' },
    /** Another tree's dns-proxy-test-child.ts, for a before/after in the same conditions. */
    child: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const OUTSTANDING = Number(values.outstanding);
const COLD = Number(values.cold);
// The proxy runs with the agent's own V8 flags (heap limits), then any given here.
const PROXY_NODE_ARGS = [...AGENT_NODE_FLAGS, ...values['proxy-node-args'].split(' ').filter(Boolean)];
const TARGET_QPS = 20_000;
const TARGET_ADDED_P99_US = 1000;
const CLK_TCK = 100; // Linux USER_HZ, what /proc/<pid>/stat counts in

interface LatencyFigures {
  p50: number;
  p99: number;
  max: number;
  answered: number;
  lostPct: number;
  slow: SlowAnswers;
}

/** user and system CPU seconds of a process, all threads (fields 14 and 15 of /proc/<pid>/stat). */
function cpuSeconds(pid: number): { user: number; sys: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK };
}

/**
 * Nanoseconds the process's threads spent runnable but waiting for a CPU
 * (field 2 of /proc/<pid>/task/<tid>/schedstat): what other work on CPU 0
 * costs the proxy. `main` is the event loop's thread alone.
 */
function runQueueWaitNs(pid: number): { all: number; main: number } {
  let all = 0;
  let main = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
      all += ns;
      if (tid === String(pid)) main = ns;
    } catch {
      // the thread ended
    }
  }
  return { all, main };
}

/** dnsperf against the proxy, with the proxy's CPU time over the run. */
async function proxiedWithCpu(rig: DnsRig, pid: number, file: string, o: { seconds?: number; onePass?: boolean }): Promise<PerfRun & { cpuUsPerQuery: number; userShare: number }> {
  const c0 = cpuSeconds(pid);
  const r = await rig.dnsperf(PROXIED, file, { ...o, outstanding: OUTSTANDING });
  const c1 = cpuSeconds(pid);
  const user = c1.user - c0.user;
  const total = user + c1.sys - c0.sys;
  return { ...r, cpuUsPerQuery: (total * 1e6) / r.completed, userShare: user / total };
}

async function main(): Promise<void> {
  // This process is part of the load generator: it stays off the proxy's CPU, with dnsperf and dnsmasq.
  execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  needProgram('dnsperf');
  const rig = new DnsRig();
  let proxyOut = (): string => '';
  const load0 = await loadavg();
  try {
    await rig.up();
    const nice = values['proxy-nice'] !== undefined ? ['nice', '-n', values['proxy-nice']] : [];
    const proxy = await rig.startProxy(['taskset', '-c', '0', ...nice, process.execPath, ...PROXY_NODE_ARGS], 10_000, values.child);
    proxyOut = proxy.out;
    const pid = proxy.proc.pid!;
    const warm = rig.queryFile('warm.txt', WARM_NAMES);
    const cold = rig.queryFile('cold.txt', Array.from({ length: COLD }, (_, i) => `u${i}.cold.bench.test`));

    await rig.dnsperf(PROXIED, warm, { seconds: 2 }); // learns the warm names, opens the reply socket
    const direct = await rig.dnsperf(DIRECT, warm, { seconds: SECONDS, outstanding: OUTSTANDING });
    const proxied = await proxiedWithCpu(rig, pid, warm, { seconds: SECONDS });
    // Latency: the two paths alternate in halves, so a burst of load elsewhere on the machine hits both alike.
    const half = Math.max(1, Math.round(SECONDS / 2));
    const waitNs = { all: 0, main: 0 };
    const latency = async (server: string): Promise<PerfRun> => {
      const w0 = runQueueWaitNs(pid);
      const r = await rig.dnsperf(server, warm, { seconds: half, rate: RATE, verbose: true, outstanding: 1000 });
      if (server === PROXIED) {
        const w1 = runQueueWaitNs(pid);
        waitNs.all += w1.all - w0.all;
        waitNs.main += w1.main - w0.main;
      }
      return r;
    };
    const runs = [await latency(DIRECT), await latency(PROXIED), await latency(DIRECT), await latency(PROXIED)];
    // Cold names last: their mass expiry (minTtl later) is not the steady state the latency phase measures.
    const coldRun = COLD > 0 ? await proxiedWithCpu(rig, pid, cold, { onePass: true }) : undefined;
    const waitMsPerS = waitNs.all / 1e6 / (2 * half);
    const mainWaitMsPerS = waitNs.main / 1e6 / (2 * half);
    const merge = (a: PerfRun, b: PerfRun): PerfRun => ({
      completed: a.completed + b.completed, qps: (a.qps + b.qps) / 2, lostPct: (a.lostPct + b.lostPct) / 2,
      latUs: Float64Array.from([...a.latUs, ...b.latUs]).sort(),
      slow: { over1ms: a.slow.over1ms + b.slow.over1ms, bursts: a.slow.bursts + b.slow.bursts, largestBurst: Math.max(a.slow.largestBurst, b.slow.largestBurst) },
    });
    const lDirect = merge(runs[0]!, runs[2]!);
    const lProxied = merge(runs[1]!, runs[3]!);
    const load1 = await loadavg();

    const perCore = 1e6 / proxied.cpuUsPerQuery;
    const added = { p50: quantile(lProxied.latUs, 0.5) - quantile(lDirect.latUs, 0.5), p99: quantile(lProxied.latUs, 0.99) - quantile(lDirect.latUs, 0.99) };
    const ratio = { p50: +(quantile(lProxied.latUs, 0.5) / quantile(lDirect.latUs, 0.5)).toFixed(2), p99: +(quantile(lProxied.latUs, 0.99) / quantile(lDirect.latUs, 0.99)).toFixed(2) };
    const lat = (r: PerfRun): LatencyFigures => ({ p50: quantile(r.latUs, 0.5), p99: quantile(r.latUs, 0.99), max: quantile(r.latUs, 1), answered: r.latUs.length, lostPct: r.lostPct, slow: r.slow });
    const result = {
      setup: { proxyNice: values['proxy-nice'] !== undefined ? Number(values['proxy-nice']) : 0, seconds: SECONDS, latencyRate: RATE, outstanding: OUTSTANDING, warmNames: WARM_NAMES.length, coldNames: COLD, proxyCpu: 0, loadGeneratorAndUpstreamCpu: 1, loadavg: { before: load0, after: load1 } },
      throughput: {
        direct: { qps: Math.round(direct.qps), lostPct: direct.lostPct },
        proxied: {
          qps: Math.round(proxied.qps), lostPct: proxied.lostPct, proxyCpuUsPerQuery: +proxied.cpuUsPerQuery.toFixed(2),
          userShare: +proxied.userShare.toFixed(2), qpsPerCore: Math.round(perCore),
        },
        proxiedColdNames: coldRun && {
          qps: Math.round(coldRun.qps), lostPct: coldRun.lostPct, proxyCpuUsPerQuery: +coldRun.cpuUsPerQuery.toFixed(2),
          qpsPerCore: Math.round(1e6 / coldRun.cpuUsPerQuery),
        },
        ratio: { proxiedOverDirect: +(proxied.qps / direct.qps).toFixed(2) },
      },
      latencyUs: { direct: lat(lDirect), proxied: lat(lProxied), added, ratio, proxyRunQueueWaitMsPerS: { allThreads: +waitMsPerS.toFixed(1), eventLoopThread: +mainWaitMsPerS.toFixed(1) } },
      targets: {
        [`rawQpsAtLeast${TARGET_QPS}`]: proxied.qps >= TARGET_QPS,
        [`qpsPerCoreAtLeast${TARGET_QPS}`]: perCore >= TARGET_QPS,
        [`addedP99AtMost${TARGET_ADDED_P99_US}us`]: added.p99 <= TARGET_ADDED_P99_US,
      },
    };
    if (values.json) return void console.log(JSON.stringify(result, null, 2));
    const t = result.throughput;
    const yes = (b: boolean): string => (b ? 'met' : 'NOT met');
    console.log(`bench/dns  load average before ${load0}, after ${load1}  (proxy on CPU 0${values['proxy-nice'] !== undefined ? `, nice ${values['proxy-nice']} (diagnostic)` : ''}; dnsperf + dnsmasq on CPU 1)`);
    console.log(`throughput, closed loop, ${OUTSTANDING} outstanding, ${SECONDS} s, ${WARM_NAMES.length} warm names:`);
    console.log(`  direct   ${t.direct.qps} q/s (lost ${t.direct.lostPct}%)`);
    console.log(`  proxied  ${t.proxied.qps} q/s (lost ${t.proxied.lostPct}%) = ${t.ratio.proxiedOverDirect} × direct`);
    console.log(`  proxy CPU ${t.proxied.proxyCpuUsPerQuery} µs/query (user ${Math.round(t.proxied.userShare * 100)}%) → ${t.proxied.qpsPerCore} q/s per core`);
    if (t.proxiedColdNames) {
      const c = t.proxiedColdNames;
      console.log(`  cold names (${COLD} unique, each learned + held for onLearned): ${c.qps} q/s, ${c.proxyCpuUsPerQuery} µs/query → ${c.qpsPerCore} q/s per core (lost ${c.lostPct}%)`);
    }
    const l = result.latencyUs;
    const latLine = (f: LatencyFigures): string =>
      `p50 ${f.p50}  p99 ${f.p99}  max ${f.max}  (${f.answered} answered; ${f.slow.over1ms} over 1 ms` +
      (f.slow.over1ms > 0 ? ` in ${f.slow.bursts} burst${f.slow.bursts === 1 ? '' : 's'}, the largest ${f.slow.largestBurst})` : ')');
    console.log(`latency at ${RATE} q/s offered, ${SECONDS} s per path (µs):`);
    console.log(`  direct   ${latLine(l.direct)}`);
    console.log(`  proxied  ${latLine(l.proxied)}`);
    console.log(`  added    p50 ${added.p50}  p99 ${added.p99}   (proxied / direct: p50 × ${ratio.p50}, p99 × ${ratio.p99})`);
    console.log(`  the proxy waited for CPU 0 (runnable, not running) ${waitMsPerS.toFixed(1)} ms per second, its event-loop thread ${mainWaitMsPerS.toFixed(1)} ms`);
    console.log('targets:');
    console.log(`  ≥ ${TARGET_QPS} q/s raw (proxy on one core): ${t.proxied.qps} → ${yes(proxied.qps >= TARGET_QPS)}`);
    console.log(`  ≥ ${TARGET_QPS} q/s per core of proxy CPU: ${t.proxied.qpsPerCore} → ${yes(perCore >= TARGET_QPS)}`);
    console.log(`  ≤ ${TARGET_ADDED_P99_US} µs added at p99: ${added.p99} → ${yes(added.p99 <= TARGET_ADDED_P99_US)}`);
  } finally {
    await rig.down();
    if (values['proxy-log']) writeFileSync(values['proxy-log'], proxyOut());
  }
}

await main();
