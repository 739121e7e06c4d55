/**
 * L7 proxy benchmark: small GETs over keep-alive connections, with wrk on
 * 127.0.0.1, in one run:
 *
 *   direct     wrk ─────────────────────────────► backend (nginx, `return 200`)
 *   palisade   wrk ─► Palisade HTTP proxy ───────► backend    (bench/l7/proxy-server.ts)
 *   nginx      wrk ─► nginx reverse proxy ───────► backend    (proxy_pass, upstream keepalive)
 *
 * The Palisade proxy runs as a plain reverse proxy on a loopback port with
 * ctx.original fixed to the backend (no TPROXY), with real policy (one
 * compiled rule) and an event callback. Each proxy gets one core (taskset
 * CPU 1; nginx: 1 worker); wrk (1 thread) and the backend share CPU 0.
 *
 * Two phases: throughput (requests/s at -c CONNS) and latency (p50/p99 at
 * -c 1, so the figure is the proxy's own added time rather than queueing).
 * Targets: Palisade ≥ 70 % of nginx's requests/s, ≤ 200 µs added at p50.
 *
 * The machine may be shared: the throughput phase runs ROUNDS rounds, each
 * target once per round in turn (so a burst of outside load hits both
 * proxies alike), and reports medians. Per run it also records each
 * proxy's own CPU time (/proc, all threads) and how busy the proxy core and
 * the load core were, so "CPU per request" and "others on the proxy core"
 * say whether a figure was taken on a quiet machine.
 *
 * Needs Debian's `wrk` and `nginx` (nginx-light) installed.
 *   node bench/l7/run.ts [seconds=8] [connections=50] [rounds=3]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { needProgram } from '../tools.ts';

const SECONDS = Number(process.argv[2] ?? 8);
const CONNS = Number(process.argv[3] ?? 50);
const ROUNDS = Number(process.argv[4] ?? 3);
const LAT_SECONDS = Math.max(3, Math.round(SECONDS / 2));
const PROXY_CPU = cpus().length > 1 ? '1' : '0';
const LOAD_CPU = '0';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${port}`);
}

const started: ChildProcess[] = [];

/** utime+stime of a process and its children's threads, in clock ticks (1/100 s), from /proc. */
function cpuTicks(pids: number[]): number {
  let t = 0;
  for (const pid of pids) {
    const stat = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    t += Number(fields[11]) + Number(fields[12]);
  }
  return t;
}

/** Busy (non-idle, non-iowait) ticks per CPU, from /proc/stat. */
function cpuBusy(): number[] {
  const out: number[] = [];
  for (const line of spawnSync('cat', ['/proc/stat'], { encoding: 'utf8' }).stdout.split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const f = (m[2] as string).trim().split(/\s+/).map(Number);
    out[Number(m[1])] = f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0);
  }
  return out;
}

function loadavg(): string {
  return spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 3).join(' ');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** The nginx worker(s) under a master pid. */
function workers(master: number): number[] {
  return spawnSync('pgrep', ['-P', String(master)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
}

function nginxConf(dir: string, name: string, body: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const conf = `
worker_processes 1;
daemon off;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy; fastcgi_temp_path ${d}/fcgi;
  uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  ${body}
}`;
  const file = join(d, 'nginx.conf');
  writeFileSync(file, conf);
  return file;
}

function startNginx(nginx: string, conf: string, cpu: string): ChildProcess {
  const p = spawn('taskset', ['-c', cpu, nginx, '-c', conf, '-e', conf.replace(/nginx\.conf$/, 'error.log')], { stdio: 'ignore' });
  started.push(p);
  return p;
}

interface WrkResult {
  rps: number;
  p50us: number;
  p99us: number;
}

function us(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n : m[2] === 'ms' ? n * 1000 : n * 1e6;
}

function wrk(wrkBin: string, port: number, conns: number, seconds: number): WrkResult {
  const r = spawnSync('taskset', ['-c', LOAD_CPU, wrkBin, '-t1', `-c${conns}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/bench`], { encoding: 'utf8' });
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '';
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '';
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
  if (errors) console.error(`  wrk on ${port}: ${errors[0]}`);
  return { rps, p50us: us(p50), p99us: us(p99) };
}

async function main(): Promise<void> {
  const wrkBin = needProgram('wrk');
  const nginx = needProgram('nginx', 'nginx-light', '/usr/sbin/nginx');
  const dir = mkdtempSync(join(tmpdir(), 'palisade-l7-bench-'));
  try {
    const backendPort = await freePort();
    const nginxProxyPort = await freePort();
    startNginx(nginx, nginxConf(dir, 'backend', `server { listen 127.0.0.1:${backendPort} reuseport; location / { return 200 "hello, world\\n"; } }`), LOAD_CPU);
    const nginxProxy = startNginx(
      nginx,
      nginxConf(
        dir,
        'proxy',
        `upstream backend { server 127.0.0.1:${backendPort}; keepalive 256; }
  server { listen 127.0.0.1:${nginxProxyPort}; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering on; } }`,
      ),
      PROXY_CPU,
    );
    const palisade = spawn('taskset', ['-c', PROXY_CPU, process.execPath, new URL('./proxy-server.ts', import.meta.url).pathname, String(backendPort)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started.push(palisade);
    const palisadePort = await new Promise<number>((resolve, reject) => {
      let out = '';
      palisade.stdout?.on('data', (d: Buffer) => {
        out += d;
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      palisade.once('exit', () => reject(new Error('proxy-server exited')));
    });
    await waitPort(backendPort);
    await waitPort(nginxProxyPort);
    await waitPort(palisadePort);

    const targets: [string, number][] = [
      ['direct', backendPort],
      ['palisade', palisadePort],
      ['nginx', nginxProxyPort],
    ];
    console.log(`L7 proxy benchmark — small GETs, keep-alive, wrk -t1 on CPU ${LOAD_CPU} with the backend; each proxy on CPU ${PROXY_CPU} (1 core)`);
    console.log(`Palisade runs as a plain reverse proxy on a loopback port with ctx.original fixed to the backend (no TPROXY), real policy + events.`);
    console.log(`throughput: -c${CONNS} ${SECONDS}s; latency: -c1 ${LAT_SECONDS}s; node ${process.version}; load average ${loadavg()}\n`);
    for (const [, port] of targets) wrk(wrkBin, port, CONNS, 2); // warm-up (JIT, upstream pools)
    const cpuOf: Record<string, () => number[]> = {
      palisade: () => [palisade.pid as number],
      nginx: () => workers(nginxProxy.pid as number),
    };
    interface Run {
      rps: number;
      p50us: number;
      p99us: number;
      /** The proxy's own CPU per request (µs, user+sys); NaN for direct. */
      cpuUs: number;
      /** Share of the proxy core used by other processes, and how busy the load core was (0..1). */
      othersOnProxyCore: number;
      loadCoreBusy: number;
    }
    const runs = new Map<string, Run[]>(targets.map(([name]) => [name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, port] of targets) {
        const pids = cpuOf[name]?.() ?? [];
        const before = cpuTicks(pids);
        const busyBefore = cpuBusy();
        const t0 = performance.now();
        const r = wrk(wrkBin, port, CONNS, SECONDS);
        const ticks = (performance.now() - t0) / 10; // clock ticks of 10 ms
        const busy = cpuBusy().map((b, i) => (b - (busyBefore[i] ?? 0)) / ticks);
        const own = cpuTicks(pids) - before;
        runs.get(name)?.push({
          ...r,
          cpuUs: pids.length ? (own * 10_000) / (r.rps * SECONDS) : NaN,
          othersOnProxyCore: Math.max(0, (busy[Number(PROXY_CPU)] ?? 0) - own / ticks),
          loadCoreBusy: busy[Number(LOAD_CPU)] ?? NaN,
        });
      }
    }
    const lat = new Map<string, WrkResult>();
    for (const [name, port] of targets) lat.set(name, wrk(wrkBin, port, 1, LAT_SECONDS));

    const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;
    const med = (name: string, f: (r: Run) => number): number => median((runs.get(name) ?? []).map(f));
    const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(10) : c.padStart(13))).join('');
    console.log(`throughput, ${ROUNDS} rounds (each: ${targets.map(([n]) => n).join(' → ')}); medians:`);
    console.log(row(['', `req/s -c${CONNS}`, `p50 -c${CONNS}`, `p99 -c${CONNS}`, 'CPU/req', 'others@proxy', 'load core']));
    for (const [name] of targets) {
      console.log(
        row([
          name,
          med(name, (r) => r.rps).toFixed(0),
          `${med(name, (r) => r.p50us).toFixed(0)} µs`,
          `${med(name, (r) => r.p99us).toFixed(0)} µs`,
          name === 'direct' ? '—' : `${med(name, (r) => r.cpuUs).toFixed(1)} µs`,
          pct(med(name, (r) => r.othersOnProxyCore)),
          pct(med(name, (r) => r.loadCoreBusy)),
        ]),
      );
    }
    console.log(`  each run, req/s: ${targets.map(([n]) => `${n} ${(runs.get(n) ?? []).map((r) => r.rps.toFixed(0)).join('/')}`).join('; ')}`);
    console.log(`\nlatency, -c1 ${LAT_SECONDS}s (one request in flight: the proxy's own added time):`);
    console.log(row(['', 'p50', 'p99', '+p50', '+p99']));
    const direct = lat.get('direct') as WrkResult;
    for (const [name] of targets) {
      const l = lat.get(name) as WrkResult;
      const add = (a: number, b: number): string => (name === 'direct' ? '—' : `${(a - b).toFixed(0)} µs`);
      console.log(row([name, `${l.p50us.toFixed(0)} µs`, `${l.p99us.toFixed(0)} µs`, add(l.p50us, direct.p50us), add(l.p99us, direct.p99us)]));
    }
    const ratio = med('palisade', (r) => r.rps) / med('nginx', (r) => r.rps);
    const pl = lat.get('palisade') as WrkResult;
    const addedP50 = pl.p50us - direct.p50us;
    console.log(`\npalisade / nginx requests/s: ${(ratio * 100).toFixed(0)} %  (target ≥ 70 %: ${ratio >= 0.7 ? 'met' : 'NOT met'})`);
    console.log(`palisade added p50 at -c1: ${addedP50.toFixed(0)} µs  (target ≤ 200 µs: ${addedP50 <= 200 ? 'met' : 'NOT met'}); added p99: ${(pl.p99us - direct.p99us).toFixed(0)} µs`);
    console.log(`nginx added p50 at -c1: ${((lat.get('nginx') as WrkResult).p50us - direct.p50us).toFixed(0)} µs`);
    const pc = med('palisade', (r) => r.cpuUs);
    const nc = med('nginx', (r) => r.cpuUs);
    console.log(`proxy CPU per request at -c${CONNS} (user+sys, /proc): palisade ${pc.toFixed(1)} µs, nginx ${nc.toFixed(1)} µs → palisade's one-core ceiling is ${((nc / pc) * 100).toFixed(0)} % of nginx's`);
    const others = Math.max(med('palisade', (r) => r.othersOnProxyCore), med('nginx', (r) => r.othersOnProxyCore));
    console.log(`load average after: ${loadavg()}${others > 0.05 ? `  — NOTE: other processes used ${pct(others)} of the proxy core; figures are from a busy machine` : ''}`);
  } finally {
    for (const p of started) if (p.exitCode === null && p.pid !== undefined) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
