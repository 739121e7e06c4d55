/**
 * The lab's upstream DNS server: what "the internet's DNS" is inside the lab.
 * Debian's dnsmasq runs in the fabric namespace on 172.31.0.1:53 (UDP and TCP)
 * and answers only from one hosts file per ExternalHost in a --hostsdir:
 *
 *   setExternalNames(host) ──► world/dns-hosts/<host>  ──inotify──► dnsmasq ──► cluster DNS (forwards here)
 *
 * dnsmasq re-reads a --hostsdir on its own: a new or changed file is read, a
 * removed file's names are flushed (inotify; checked by world.test.ts).
 * It never forwards: --no-resolv and no --server, and `--local=/#/` makes every
 * name it does not hold NXDOMAIN ("--local=/domain/ … queries in these domains
 * are answered from /etc/hosts or DHCP only", dnsmasq(8)) instead of REFUSED.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { run, netnsExists } from '../../kernel/index.ts';
import { LAB_NETWORK } from '../addressing.ts';
import { fabricNetns, labMarker, logsDir } from '../paths.ts';
import { isAlive, isOurs, pidsDir, stopPid } from '../processes.ts';
import { writeAtomic } from './lab-ca.ts';
import { DNS_NAME_RE, HOST_NAME_RE, dnsHostsDir, worldDir } from './world-paths.ts';

export const DNSMASQ = '/usr/sbin/dnsmasq';
export const UPSTREAM_DNS_PORT = 53;
/** TTL of the answers: short, so a removed or moved host is forgotten soon by caches downstream. */
export const UPSTREAM_DNS_TTL = 5;

const pidPath = (lab: string): string => `${pidsDir(lab)}/upstream-dns.pid`;
export const upstreamDnsLogPath = (lab: string): string => `${logsDir(lab)}/upstream-dns.log`;

export interface UpstreamDnsOptions {
  /** The namespace to run in (default: the lab's fabric). */
  netns?: string;
  /** The address to serve on (default: the fabric's underlay address, 172.31.0.1). */
  listen?: string;
  ttlSeconds?: number;
  /** Log every query to the log (default true). */
  logQueries?: boolean;
  timeoutMs?: number;
}

export interface UpstreamDns {
  pid: number;
  address: string;
  port: number;
}

/** Starts the lab's dnsmasq (or returns the one already running) once it listens on UDP and TCP. */
export async function startUpstreamDns(lab: string, o: UpstreamDnsOptions = {}): Promise<UpstreamDns> {
  const netns = o.netns ?? fabricNetns(lab);
  const address = o.listen ?? LAB_NETWORK.fabricIp;
  if (!existsSync(DNSMASQ)) throw new Error(`${DNSMASQ} is missing: install the Debian package dnsmasq-base`);
  if (!netnsExists(netns)) throw new Error(`no namespace ${netns}: the lab's fabric must exist first`);
  const running = await upstreamDnsPid(lab);
  if (running) return { pid: running, address, port: UPSTREAM_DNS_PORT };

  await mkdir(dnsHostsDir(lab), { recursive: true });
  await mkdir(pidsDir(lab), { recursive: true });
  await mkdir(logsDir(lab), { recursive: true });
  const args = [
    '--keep-in-foreground',
    '--no-resolv', // no upstream servers from /etc/resolv.conf …
    '--no-poll',
    '--local=/#/', // … nor any other: every name not in the hostsdir is NXDOMAIN
    '--no-hosts', // not the machine's /etc/hosts
    `--hostsdir=${dnsHostsDir(lab)}`,
    `--listen-address=${address}`,
    '--bind-interfaces',
    `--port=${UPSTREAM_DNS_PORT}`,
    `--local-ttl=${o.ttlSeconds ?? UPSTREAM_DNS_TTL}`,
    '--user=root',
    '--group=root',
    // Explicit, so the machine's own /run/dnsmasq/dnsmasq.pid is never touched.
    `--pid-file=${worldDir(lab)}/dnsmasq.pid`,
    `--log-facility=${upstreamDnsLogPath(lab)}`,
    ...(o.logQueries === false ? [] : ['--log-queries']),
  ];
  const log = openSync(upstreamDnsLogPath(lab), 'a');
  const child = spawn('ip', ['netns', 'exec', netns, DNSMASQ, ...args], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start dnsmasq');
  child.unref();
  await writeAtomic(pidPath(lab), `${pid}\n`, 0o644);

  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  for (;;) {
    if (!isAlive(pid)) break;
    const ss = await run('ss', ['-Hln', '-tu', `sport = :${UPSTREAM_DNS_PORT}`], { netns, allowFailure: true });
    const lines = ss.stdout.split('\n').filter((l) => l.includes(`${address}:${UPSTREAM_DNS_PORT}`));
    if (lines.some((l) => l.startsWith('udp')) && lines.some((l) => l.startsWith('tcp'))) return { pid, address, port: UPSTREAM_DNS_PORT };
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopUpstreamDns(lab);
  const tail = (await readFile(upstreamDnsLogPath(lab), 'utf8').catch(() => '')).slice(-1500);
  throw new Error(`dnsmasq did not come up on ${address}:${UPSTREAM_DNS_PORT} in ${netns}${tail ? `:\n${tail}` : ''}`);
}

/** The running upstream DNS server's pid, if it is running and still ours. */
export async function upstreamDnsPid(lab: string): Promise<number | null> {
  const pid = Number((await readFile(pidPath(lab), 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 1 && isOurs(pid, labMarker(lab)) ? pid : null;
}

/** Stops the lab's dnsmasq by its recorded pid (after checking its command line names the lab). */
export async function stopUpstreamDns(lab: string): Promise<void> {
  const pid = await upstreamDnsPid(lab);
  if (pid) await stopPid(pid);
  await rm(pidPath(lab), { force: true });
}

export interface ExternalNames {
  /** The ExternalHost's name: the hosts file's name. */
  name: string;
  /** Its addresses: every name resolves to all of them. */
  ips: readonly string[];
  /** DNS names; none removes the host's file. */
  names: readonly string[];
}

/** Writes (or, with no names, removes) one host's file in the hostsdir; dnsmasq picks it up by itself. */
export async function setExternalNames(lab: string, h: ExternalNames): Promise<void> {
  if (!HOST_NAME_RE.test(h.name)) throw new Error(`ExternalHost name ${JSON.stringify(h.name)} is not a DNS label`);
  const file = `${dnsHostsDir(lab)}/${h.name}`;
  if (h.names.length === 0) {
    await rm(file, { force: true });
    return;
  }
  const names = h.names.map((n) => n.toLowerCase());
  for (const n of names) if (!DNS_NAME_RE.test(n)) throw new Error(`${JSON.stringify(n)} is not a DNS name`);
  await mkdir(dnsHostsDir(lab), { recursive: true });
  // hosts(5): "IP_address canonical_hostname [aliases...]", a line per address.
  await writeAtomic(file, `# ExternalHost ${h.name}\n${h.ips.map((ip) => `${ip} ${names.join(' ')}\n`).join('')}`, 0o644);
}
