/**
 * ExternalHosts: hosts of the lab's outside world. Each is a namespace on the
 * fabric's bridge with an address in 198.18.0.0/16 — or the addresses its
 * spec names, e.g. 1.1.1.1 — running http-echo on its plain ports and
 * https-echo (a lab-CA certificate for all its names and addresses) on 443:
 *
 *   pl-<lab>-fabric:  br0 172.31.0.1/24 + 198.18.0.1/16 ── x-<host> veth
 *                     a route per named address: 1.1.1.1/32 dev br0
 *   pl-<lab>-ext-<host>:  eth0 198.18.a.b/16, default via 198.18.0.1
 *                     or eth0 1.1.1.1/32 1.0.0.1/32, default via 198.18.0.1 onlink
 *                         http-echo :80 …, https-echo :443   (POD_NAME=<host>)
 *
 * Nodes reach the world through their default route (the fabric routes
 * between its subnets and the named addresses on br0); pods reach it
 * masqueraded by their node. A named address such as 1.1.1.1 exists only in
 * the lab's namespaces: the fabric has no route to anywhere else (no default
 * route, no link to the root namespace), so what is sent to it reaches this
 * host or nothing — never the machine's own network.
 *
 * The record of every host (address, namespace, pids) is
 * /run/palisade/<lab>/world/hosts.json; changes to it are serialised per lab
 * inside this process (`…Locked`) — one controller owns a lab's world.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import * as z from 'zod';
import { ipBatch, run, createNetns, deleteNetns, netnsExists, netnsPath, netnsPids, processNetns } from '../../kernel/index.ts';
import { FABRIC_BRIDGE } from '../lab-network.ts';
import { fabricNetns, logsDir } from '../paths.ts';
import { PROJECT_ROOT, isAlive, pidsDir, startLabProcess, stopPid } from '../processes.ts';

/** The lean workload entry point (src/workload/main.ts), as pods use it. */
const WORKLOAD_MAIN = `${PROJECT_ROOT}src/workload/main.ts`;
import { EXTERNAL_HOST_DEFAULT_PORTS, externalAddressError } from '../../k8s/index.ts';
import { ensureLabCa, issueServerCert, writeAtomic, type LabCa } from './lab-ca.ts';
import { setExternalNames } from './upstream-dns.ts';
import {
  DNS_NAME_RE,
  HOST_NAME_RE,
  WORLD_GATEWAY,
  WORLD_PREFIX,
  externalHostNetns,
  hostCertDir,
  hostsJsonPath,
  labCaDir,
  worldDir,
} from './world-paths.ts';

export const DEFAULT_PORTS: readonly number[] = EXTERNAL_HOST_DEFAULT_PORTS;
export const TLS_PORT = 443;
/** The interface inside an ExternalHost's namespace. */
export const EXTERNAL_HOST_IF = 'eth0';

/** An ExternalHost object's spec, as the controller hands it over. */
export interface ExternalHostSpec {
  /** metadata.name: a DNS label. */
  name: string;
  /** spec.names: the DNS names it answers to, e.g. ["api.github.com"]. */
  names: string[];
  /** spec.ports: TCP ports (default [80, 443]); 443 speaks TLS. */
  ports?: number[];
  /** spec.addresses: the IPv4 addresses it answers on, e.g. ["1.1.1.1"] (default: one allocated in 198.18.0.0/16). */
  addresses?: string[];
}

/**
 * One host as hosts.json records it, e.g.
 *   { "name": "github", "names": ["api.github.com"], "ports": [80, 443], "ip": "198.18.57.3", "addresses": [],
 *     "netns": "pl-lab1-ext-github", "fabricPort": "x-github", "pids": { "80": 4121, "443": 4122 } }
 * `ip` is its (first) address; `addresses` the ones its spec named, each with a route in the fabric.
 */
const HostRecordSchema = z.object({
  name: z.string(),
  names: z.array(z.string()),
  ports: z.array(z.number().int()),
  ip: z.string(),
  addresses: z.array(z.string()).default([]),
  netns: z.string(),
  fabricPort: z.string(),
  pids: z.record(z.string(), z.number().int()),
});
export type ExternalHostRecord = z.infer<typeof HostRecordSchema>;
const HostsFileSchema = z.object({ hosts: z.record(z.string(), HostRecordSchema) });
type HostsFile = z.infer<typeof HostsFileSchema>;

export interface ExternalHostOptions {
  /** The fabric namespace (default pl-<lab>-fabric). */
  fabricNetns?: string;
  /** The CA for the 443 certificate (default: the lab's, made on first use under world/ca). */
  ca?: LabCa;
  /** How long the workloads may take to listen (default 15 s). */
  timeoutMs?: number;
}

export interface ExternalHostHandle {
  /** Its first address. */
  ip: string;
  /** Every address it answers on. */
  addresses: string[];
  netns: string;
  /** port → pid of the workload serving it. */
  pids: Record<string, number>;
}

/**
 * Creates (or re-creates, keeping its address) an ExternalHost: namespace,
 * veth to the fabric's bridge, address, route, workloads, DNS names.
 * Resolves once every port listens.
 */
export async function addExternalHost(lab: string, spec: ExternalHostSpec, opts: ExternalHostOptions = {}): Promise<ExternalHostHandle> {
  const host = validateSpec(spec);
  return withHostsLocked(lab, () => addExternalHostLocked(lab, host, opts));
}

/** Stops an ExternalHost's workloads, deletes its namespace (and veth), names and address. */
export function removeExternalHost(lab: string, name: string): Promise<boolean> {
  return withHostsLocked(lab, async () => {
    const file = await readHosts(lab);
    const rec = file.hosts[name];
    await teardownLocked(lab, fabricNetns(lab), name, rec);
    if (!rec) return false;
    delete file.hosts[name];
    await writeHosts(lab, file);
    return true;
  });
}

export async function listExternalHosts(lab: string): Promise<ExternalHostRecord[]> {
  const file = await readHosts(lab);
  return Object.values(file.hosts).sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The fabric's world gateway (198.18.0.1/16 on br0), added if missing; and
 * br0's MAC address pinned to the one it has. A bridge whose address was never
 * set takes the lowest MAC of its ports, so adding or removing a host's veth
 * could change it — and every node's ARP entry for its gateway 172.31.0.1
 * would point at a MAC nobody has until it expires (seconds of lost packets).
 * An address set explicitly stays (the kernel marks it NET_ADDR_SET).
 */
export async function ensureWorldGateway(fabric: string): Promise<void> {
  const show = await run('ip', ['-n', fabric, '-j', 'link', 'show', 'dev', FABRIC_BRIDGE]);
  const [link] = JSON.parse(show.stdout) as { address?: string }[];
  if (!link?.address) throw new Error(`${FABRIC_BRIDGE} in ${fabric} has no MAC address`);
  await ipBatch(
    [`link set dev ${FABRIC_BRIDGE} address ${link.address}`, `addr replace ${WORLD_GATEWAY}/${WORLD_PREFIX} dev ${FABRIC_BRIDGE}`],
    fabric,
  );
}

/**
 * The address for `name` in 198.18.1.1–198.18.255.254 (x.y.c.0 and x.y.c.255
 * left out; 198.18.0.0/24 is the fabric's): starts at a hash of the name, so a
 * host keeps its address across labs, then walks to the next free one.
 */
export function allocateWorldIp(name: string, taken: ReadonlySet<string>): string {
  const size = 255 * 254;
  const start = createHash('sha256').update(name).digest().readUInt32BE(0) % size;
  for (let i = 0; i < size; i++) {
    const k = (start + i) % size;
    const ip = `198.18.${1 + Math.floor(k / 254)}.${1 + (k % 254)}`;
    if (!taken.has(ip)) return ip;
  }
  throw new Error('the lab world has no free address left');
}

/** The fabric side of a host's veth: `x-<host>` when it fits in IFNAMSIZ, else `x-<6 chars>-<hash>`. */
export function fabricPortName(host: string): string {
  if (host.length <= 13) return `x-${host}`;
  return `x-${host.slice(0, 6)}-${createHash('sha256').update(host).digest('hex').slice(0, 6)}`;
}

// ── inside the lock ─────────────────────────────────────────────────────────

async function addExternalHostLocked(lab: string, host: Required<ExternalHostSpec>, opts: ExternalHostOptions): Promise<ExternalHostHandle> {
  const fabric = opts.fabricNetns ?? fabricNetns(lab);
  if (!netnsExists(fabric)) throw new Error(`no namespace ${fabric}: the lab's fabric must exist first`);
  const file = await readHosts(lab);
  const old = file.hosts[host.name];
  // An address belongs to one host: refused before anything of the old host is touched.
  const owners = new Map<string, string>();
  for (const h of Object.values(file.hosts)) if (h.name !== host.name) for (const a of [h.ip, ...h.addresses]) owners.set(a, h.name);
  host.addresses.forEach((a, i) => {
    const owner = owners.get(a);
    if (owner !== undefined) throw new Error(`ExternalHost ${host.name}: spec.addresses[${i}]: ${a} is already ExternalHost ${owner}'s`);
  });
  await teardownLocked(lab, fabric, host.name, old);

  const named = host.addresses.length > 0;
  const ip = named ? host.addresses[0]! : old && old.addresses.length === 0 && !owners.has(old.ip) ? old.ip : allocateWorldIp(host.name, new Set(owners.keys()));
  const addresses = named ? host.addresses : [ip];
  const netns = externalHostNetns(lab, host.name);
  const fabricPort = fabricPortName(host.name);
  const rec: ExternalHostRecord = { name: host.name, names: host.names, ports: host.ports, ip, addresses: host.addresses, netns, fabricPort, pids: {} };
  // Recorded before anything is made, so a crash half-way leaves a record to clean from.
  file.hosts[host.name] = rec;
  await writeHosts(lab, file);

  try {
    // 1. Wires: the gateway on the fabric, a namespace and a veth into it.
    await ensureWorldGateway(fabric);
    await createNetns(netns);
    await ipBatch(
      [
        `link add ${fabricPort} type veth peer name ${EXTERNAL_HOST_IF} netns ${netns}`,
        `link set ${fabricPort} master ${FABRIC_BRIDGE}`,
        `link set ${fabricPort} up`,
      ],
      fabric,
    );
    if (named) {
      // Addresses of their own: /32s, the gateway on the link without a subnet around it, and a route back in the fabric.
      await ipBatch(
        [
          ...addresses.map((a) => `addr add ${a}/32 dev ${EXTERNAL_HOST_IF}`),
          `link set ${EXTERNAL_HOST_IF} up`,
          `route add default via ${WORLD_GATEWAY} dev ${EXTERNAL_HOST_IF} onlink`,
        ],
        netns,
      );
      await ipBatch(addresses.map((a) => `route replace ${a}/32 dev ${FABRIC_BRIDGE}`), fabric);
    } else {
      await ipBatch(
        [
          `addr add ${ip}/${WORLD_PREFIX} dev ${EXTERNAL_HOST_IF}`,
          `link set ${EXTERNAL_HOST_IF} up`,
          `route add default via ${WORLD_GATEWAY} dev ${EXTERNAL_HOST_IF}`,
        ],
        netns,
      );
    }

    // 2. The certificate for 443: every name, and every address.
    let certFiles: { cert: string; key: string } | undefined;
    if (host.ports.includes(TLS_PORT)) {
      const ca = opts.ca ?? (await ensureLabCa(labCaDir(lab), lab));
      const cert = await issueServerCert(ca, host.names, addresses);
      const dir = hostCertDir(lab, host.name);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      certFiles = { cert: `${dir}/tls.crt`, key: `${dir}/tls.key` };
      await writeAtomic(certFiles.cert, cert.certPem, 0o644);
      await writeAtomic(certFiles.key, cert.keyPem, 0o600);
    }

    // 3. Workloads, named after the host in their replies.
    const env: NodeJS.ProcessEnv = { ...process.env, POD_NAME: host.name };
    delete env['POD_NAMESPACE'];
    for (const port of host.ports) {
      const common = { lab, name: processName(host.name, port), netns, env };
      rec.pids[String(port)] =
        port === TLS_PORT && certFiles
          ? await startLabProcess({ ...common, script: WORKLOAD_MAIN, args: ['https-echo', '--port', String(port), '--cert', certFiles.cert, '--key', certFiles.key] })
          : await startLabProcess({ ...common, script: WORKLOAD_MAIN, args: ['http-echo', '--port', String(port)] });
    }
    await writeHosts(lab, file);
    await waitListening(lab, rec, opts.timeoutMs ?? 15_000);

    // 4. Names last: a name resolves only once its host answers.
    await setExternalNames(lab, { name: host.name, ips: addresses, names: host.names });
    return { ip, addresses: [...addresses], netns, pids: { ...rec.pids } };
  } catch (err) {
    await teardownLocked(lab, fabric, host.name, rec).catch(() => undefined);
    delete file.hosts[host.name];
    await writeHosts(lab, file).catch(() => undefined);
    throw err;
  }
}

/** Removes whatever exists of host `name`: names, processes, namespace, its addresses' routes, certificate, pid files. */
async function teardownLocked(lab: string, fabric: string, name: string, rec: ExternalHostRecord | undefined): Promise<void> {
  const netns = externalHostNetns(lab, name);
  await setExternalNames(lab, { name, ips: [], names: [] });
  for (const pid of Object.values(rec?.pids ?? {})) {
    if (isHostProcess(pid, netns)) await stopPid(pid, 2000);
  }
  // Anything else still inside the host's own namespace was started for it.
  for (const pid of await netnsPids(netns)) await stopPid(pid, 1000);
  await deleteNetns(netns);
  // The veth went with the namespace; the fabric's routes to the host's own addresses stay unless removed.
  for (const a of rec?.addresses ?? []) await run('ip', ['-n', fabric, 'route', 'del', `${a}/32`, 'dev', FABRIC_BRIDGE], { allowFailure: true });
  await rm(hostCertDir(lab, name), { recursive: true, force: true });
  for (const port of rec?.ports ?? []) await rm(`${pidsDir(lab)}/${processName(name, port)}.pid`, { force: true });
}

/**
 * A recorded pid is still the host's workload when it lives in the host's
 * namespace — or, just after start, is the `ip netns exec <netns>` about to enter it.
 */
function isHostProcess(pid: number, netns: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    if (processNetns(pid) === `net:[${statSync(netnsPath(netns)).ino}]`) return true;
  } catch {
    /* namespace gone */
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(netns);
  } catch {
    return false;
  }
}

async function waitListening(lab: string, rec: ExternalHostRecord, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ss = await run('ss', ['-Hltn'], { netns: rec.netns, allowFailure: true });
    const listening = new Set(ss.stdout.split('\n').map((l) => Number(l.trim().split(/\s+/)[3]?.split(':').pop())));
    const missing = rec.ports.filter((p) => !listening.has(p));
    if (missing.length === 0) return;
    const dead = Object.entries(rec.pids).filter(([, pid]) => !isAlive(pid));
    if (dead.length > 0 || Date.now() > deadline) {
      const logs = await Promise.all(
        missing.map(async (p) => `--- ${processName(rec.name, p)} ---\n${(await readFile(`${logsDir(lab)}/${processName(rec.name, p)}.log`, 'utf8').catch(() => '')).slice(-1000)}`),
      );
      throw new Error(`ExternalHost ${rec.name}: port(s) ${missing.join(', ')} not listening${dead.length ? ' (workload exited)' : ` after ${timeoutMs / 1000} s`}\n${logs.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const processName = (host: string, port: number): string => `ext-${host}-${port}`;

function validateSpec(spec: ExternalHostSpec): Required<ExternalHostSpec> {
  if (!HOST_NAME_RE.test(spec.name)) throw new Error(`ExternalHost name ${JSON.stringify(spec.name)} must be a DNS label (a-z, 0-9, '-', at most 63)`);
  const names = [...new Set(spec.names.map((n) => n.toLowerCase().replace(/\.$/, '')))];
  if (names.length === 0) throw new Error(`ExternalHost ${spec.name}: spec.names is empty`);
  for (const n of names) if (!DNS_NAME_RE.test(n)) throw new Error(`ExternalHost ${spec.name}: ${JSON.stringify(n)} is not a DNS name`);
  const ports = [...new Set(spec.ports ?? DEFAULT_PORTS)].sort((a, b) => a - b);
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`ExternalHost ${spec.name}: ${p} is not a TCP port`);
  if (ports.length === 0) throw new Error(`ExternalHost ${spec.name}: spec.ports is empty`);
  // Checked here too: objects written past `palisade apply` (kubectl, the API) reach the world unvalidated.
  const addresses = spec.addresses ?? [];
  addresses.forEach((a, i) => {
    const error = externalAddressError(a) ?? (addresses.indexOf(a) < i ? `${a} is listed twice` : undefined);
    if (error !== undefined) throw new Error(`ExternalHost ${spec.name}: spec.addresses[${i}]: ${error}`);
  });
  return { name: spec.name, names, ports, addresses };
}

// ── hosts.json ──────────────────────────────────────────────────────────────

async function readHosts(lab: string): Promise<HostsFile> {
  let text: string;
  try {
    text = await readFile(hostsJsonPath(lab), 'utf8');
  } catch {
    return { hosts: {} };
  }
  return HostsFileSchema.parse(JSON.parse(text));
}

async function writeHosts(lab: string, file: HostsFile): Promise<void> {
  await mkdir(worldDir(lab), { recursive: true });
  await writeAtomic(hostsJsonPath(lab), JSON.stringify(file, null, 2) + '\n', 0o644);
}

const hostsLocks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier change to `lab`'s hosts (in this process) has finished. */
function withHostsLocked<T>(lab: string, fn: () => Promise<T>): Promise<T> {
  const prev = hostsLocks.get(lab) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const settled = next.catch(() => undefined);
  hostsLocks.set(lab, settled);
  void settled.then(() => {
    if (hostsLocks.get(lab) === settled) hostsLocks.delete(lab);
  });
  return next;
}
