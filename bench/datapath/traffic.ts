/**
 * The load generators of the datapath benches, run inside a client
 * namespace against servers already listening: iperf3 (TCP bulk) and
 * sockperf ping-pong (TCP request/response, one outstanding at a time).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { netnsPids } from '../../src/kernel/index.ts';

export const IPERF_PORT = 5201;
export const RR_PORT = 7001;

/** iperf3 and sockperf servers in `netns` (kill them by pid when done). */
export function startServers(netns: string): ChildProcess[] {
  return [
    spawn('ip', ['netns', 'exec', netns, 'iperf3', '-s', '-p', String(IPERF_PORT)], { stdio: 'ignore' }),
    spawn('ip', ['netns', 'exec', netns, 'sockperf', 'server', '--tcp', '-p', String(RR_PORT)], { stdio: 'ignore' }),
  ];
}

export interface Throughput {
  gbps: number;
  retransmits: number;
}

/**
 * iperf3 TCP for `seconds` with `streams` parallel streams: the receiver's
 * rate. With `cpu`, the client runs on that CPU only (its server pinned
 * there too by pinIperfServers): where the scheduler puts two busy threads
 * on a 2-vCPU machine otherwise moves a run's rate up to 3×. A pinned run
 * cannot escape another job's load on its CPU (seen: single runs fell to a
 * tenth), which alternated rounds and medians absorb.
 */
export function iperf(netns: string, server: string, seconds: number, streams = 1, cpu?: number): Throughput {
  const pin = cpu === undefined ? [] : ['taskset', '-c', String(cpu)];
  const r = spawnSync('ip', ['netns', 'exec', netns, ...pin, 'iperf3', '-c', server, '-p', String(IPERF_PORT), '-t', String(seconds), '-P', String(streams), '--connect-timeout', '3000', '-J'], {
    encoding: 'utf8',
  });
  const doc = JSON.parse(r.stdout || '{}') as { error?: string; end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } } };
  const bps = doc.end?.sum_received?.bits_per_second;
  if (bps === undefined) throw new Error(`iperf3 ${netns} → ${server}: ${doc.error ?? r.stdout.slice(0, 300)}${r.stderr}`);
  return { gbps: bps / 1e9, retransmits: doc.end?.sum_sent?.retransmits ?? 0 };
}

/** Pins every thread of the iperf3 servers running in `netns` to `cpu`; throws when there is none. */
export async function pinIperfServers(netns: string, cpu: number): Promise<void> {
  const servers = (await netnsPids(netns)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'iperf3';
    } catch {
      return false; // gone meanwhile
    }
  });
  if (servers.length === 0) throw new Error(`no iperf3 server in ${netns} to pin`);
  for (const pid of servers) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`taskset ${pid}: ${r.stderr}`);
  }
}

/** sockperf ping-pong: transactions per second. */
export function rr(netns: string, server: string, seconds: number): number {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'sockperf', 'ping-pong', '--tcp', '-i', server, '-p', String(RR_PORT), '-t', String(seconds)], { encoding: 'utf8' });
  const m = /avg-latency=([\d.]+)/.exec(r.stdout) ?? /avg-rtt=([\d.]+)/.exec(r.stdout);
  if (!m?.[1]) throw new Error(`sockperf: ${r.stdout.slice(-400)}${r.stderr}`);
  // sockperf reports one-way latency (half the round trip) in µs.
  return Math.round(1e6 / (2 * Number(m[1])));
}

/** Waits until a TCP server answers in `netns` (servers start asynchronously). */
export async function waitForServer(netns: string, server: string, port = IPERF_PORT): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['netns', 'exec', netns, 'bash', '-c', `exec 3<>/dev/tcp/${server}/${port}`], { encoding: 'utf8', timeout: 2000 });
    if (r.status === 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`no server on ${server}:${port} from ${netns}`);
}

export interface IpReceived {
  packets: number;
  octets: number;
}

/**
 * IP packets and bytes the namespace's stack has taken in so far
 * (/proc/net/snmp Ip InReceives, /proc/net/netstat IpExt InOctets). Bytes per
 * packet over a bulk transfer show whether GSO/GRO aggregates survive the
 * path: ≈ 64 KB when they do, ≈ 1.5 KB when every segment arrives alone.
 */
export function ipReceived(netns: string): IpReceived {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'cat', '/proc/net/snmp', '/proc/net/netstat'], { encoding: 'utf8' });
  const field = (table: string, name: string): number => {
    const lines = r.stdout.split('\n').filter((l) => l.startsWith(`${table}: `));
    const [head, vals] = [lines[0]?.split(' ') ?? [], lines[1]?.split(' ') ?? []];
    return Number(vals[head.indexOf(name)] ?? NaN);
  };
  return { packets: field('Ip', 'InReceives'), octets: field('IpExt', 'InOctets') };
}
