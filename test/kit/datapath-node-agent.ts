/**
 * Test support: a stand-in for the node agent, run INSIDE a node namespace
 * (`ip netns exec <node> node datapath-node-agent.ts <legacy|ebpf> <pinDir>`),
 * owning one datapath of that mode. It reads one JSON command per stdin line
 * and answers one JSON line on stdout:
 *
 *   {"id":1,"cmd":"wire","pod":{podNetns,ifname,hostIfname,ip,gateway}}   → pod wiring (pod-wiring.ts)
 *   {"id":2,"cmd":"setup","node":NodeNetwork,"peers":PeerNode[]}
 *   {"id":3,"cmd":"apply","world":World}                                 → ApplyResult
 *   {"id":4,"cmd":"status"} / "drops" / "traffic" / "events" → {events (collected so far, then cleared), lost}
 *   eBPF only: "counters" (packet counters) and the commands "detach", "hooks", "tc-attach" below
 *   {"id":5,"cmd":"detach"}  {"id":6,"cmd":"exit"}
 *   {"id":7,"cmd":"proxies","httpPort":P,"dnsPort":Q}  transparent stand-ins for the agent's proxies
 *   {"id":8,"cmd":"proxy-seen"}  what they saw (then cleared)   {"id":9,"cmd":"proxies-close"}
 *   {"id":10,"cmd":"hooks","ifname":X}  program ids on X's hooks, read from the kernel:
 *                                        {tcx: [ingress ids, egress ids] | null, tc: [ingress id, egress id]}
 *   {"id":11,"cmd":"tc-attach","ifname":X,"program":P}  P (as pinned) on X's ingress as a clsact
 *                                        filter, the way agents before tcx attached it
 *
 * The stand-in proxies are what the agent's are at the socket level: the HTTP
 * one (TCP, listenTransparent) records the original destination and client
 * of each connection, connects onward transparently from the client's own
 * address (connectTransparent) and pipes both ways; the DNS one answers
 * itself, over UDP (openTransparentUdp, the answer sent from the original
 * destination) and TCP, with `dns <original destination> <client>`.
 *
 * The policy state is built here from plain Kubernetes-shaped objects with a
 * PolicyEngine, as the agent would: identities are hashes of labels, so every
 * node's process arrives at the same numbers from the same objects.
 */
import { createInterface } from 'node:readline';
import { PolicyEngine } from '../../src/policy/index.ts';
import type { KubeObject } from '../../src/k8s/objects.ts';
import type { Server, Socket } from 'node:net';
import type { NameMatcher } from '../../src/fqdn/index.ts';
import { wirePod, type PodWiringSpec } from '../../src/cni/pod-wiring.ts';
import { connectTransparent, listenTransparent } from '../../src/proxy/transparent/transparent-tcp.ts';
import { openTransparentUdp, type TransparentUdp } from '../../src/proxy/transparent/transparent-udp.ts';
import type { Datapath, DatapathEvent, DatapathEventReader, DatapathMode, LocalEndpoint, NodeNetwork, PeerNode, ServiceEntry } from '../../src/datapath/types.ts';
import { EbpfDatapath } from '../../src/datapath/ebpf/ebpf-datapath.ts';
import { LegacyDatapath } from '../../src/datapath/legacy/legacy-datapath.ts';
import { TC_HANDLE, TC_PRIORITY } from '../../src/datapath/ebpf/hooks.ts';
import { BPF_TC_EGRESS, BPF_TC_INGRESS, libbpf } from '../../src/datapath/ebpf/libbpf.ts';

export interface World {
  objects: KubeObject[];
  services: ServiceEntry[];
  localEndpoints: LocalEndpoint[];
  ownAddresses: string[];
  peerAddresses: string[];
  httpProxyPort?: number;
  dnsProxyPort?: number;
  /** What the DNS proxy learned: name (`api.example.com`) → addresses. Absent: no fqdnIps at all. */
  learned?: Record<string, string[]>;
}

/** One connection or datagram a stand-in proxy took: `ip:port` of both ends, as its socket saw them. */
export interface ProxySeen {
  proxy: 'http' | 'dns-udp' | 'dns-tcp';
  original: string;
  client: string;
}

interface Command {
  id: number;
  cmd: string;
  pod?: PodWiringSpec;
  node?: NodeNetwork;
  peers?: PeerNode[];
  world?: World;
  httpPort?: number;
  dnsPort?: number;
  ifname?: string;
  program?: string;
}

const mode = process.argv[2] as DatapathMode;
const pinDir = process.argv[3];
if ((mode !== 'legacy' && mode !== 'ebpf') || !pinDir) throw new Error('usage: datapath-node-agent.ts <legacy|ebpf> <pinDir>');
const ebpf = mode === 'ebpf' ? new EbpfDatapath({ pinDir }) : null;
const dp: Datapath = ebpf ?? new LegacyDatapath();
/** The commands about tc programs and BPF counters have no legacy meaning. */
const ebpfOnly = (cmd: string): EbpfDatapath => {
  if (!ebpf) throw new Error(`${cmd}: eBPF only (this agent runs the ${mode} datapath)`);
  return ebpf;
};
const events: DatapathEvent[] = [];
/** Events the kernel could not hand over: a test that counts events must see none lost. */
let lost = 0;
let reader: DatapathEventReader | null = null;
const seen: ProxySeen[] = [];
let engine: PolicyEngine | null = null;
let engineObjects = '';
let proxies: { http: Server; dnsTcp: Server; dnsUdp: TransparentUdp; sockets: Set<Socket> } | null = null;
/** The UDP listener answers through itself; the callback needs it before open resolves. */
let dnsUdpRef: TransparentUdp | null = null;

const addr = (ip: string | undefined, port: number | undefined): string => `${(ip ?? '').replace(/^::ffff:/, '')}:${port ?? 0}`;

function fqdnIpsOf(learned: Record<string, string[]>): (sel: readonly NameMatcher[]) => ReadonlySet<string> {
  return (sel) => {
    const out = new Set<string>();
    for (const [name, ips] of Object.entries(learned)) if (sel.some((m) => m.matches(`${name}.`))) for (const ip of ips) out.add(ip);
    return out;
  };
}

async function startProxies(httpPort: number, dnsPort: number): Promise<void> {
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.once('close', () => sockets.delete(s));
  };
  const http = await listenTransparent(httpPort, (client) => {
    track(client);
    const original = { ip: (client.localAddress ?? '').replace(/^::ffff:/, ''), port: client.localPort ?? 0 };
    const clientIp = (client.remoteAddress ?? '').replace(/^::ffff:/, '');
    seen.push({ proxy: 'http', original: addr(original.ip, original.port), client: addr(clientIp, client.remotePort) });
    client.pause();
    connectTransparent({ ip: clientIp }, original).then(
      (up) => {
        track(up);
        client.pipe(up).on('error', () => {});
        up.pipe(client).on('error', () => {});
        client.resume();
      },
      () => client.destroy(),
    );
  });
  const dnsTcp = await listenTransparent(dnsPort, (client) => {
    track(client);
    const original = addr(client.localAddress, client.localPort);
    const peer = addr(client.remoteAddress, client.remotePort);
    seen.push({ proxy: 'dns-tcp', original, client: peer });
    client.end(`dns ${original} ${peer}\n`);
  });
  // The question does not matter to the stand-in: it answers who asked whom.
  const dnsUdp = await openTransparentUdp(dnsPort, (d) => {
    const original = addr(d.origDst.ip, d.origDst.port);
    const peer = addr(d.src.ip, d.src.port);
    seen.push({ proxy: 'dns-udp', original, client: peer });
    dnsUdpRef?.reply(d, Buffer.from(`dns ${original} ${peer}`));
  });
  dnsUdpRef = dnsUdp;
  proxies = { http, dnsTcp, dnsUdp, sockets };
}

async function closeProxies(): Promise<void> {
  const p = proxies;
  proxies = null;
  dnsUdpRef = null;
  if (!p) return;
  for (const s of p.sockets) s.destroy();
  await Promise.all([new Promise((r) => p.http.close(r)), new Promise((r) => p.dnsTcp.close(r)), p.dnsUdp.close()]);
}

async function handle(c: Command): Promise<unknown> {
  switch (c.cmd) {
    case 'wire':
      return wirePod(c.pod!);
    case 'setup':
      await dp.setupNode(c.node!, c.peers ?? []);
      // As the agent: one reader for the process's life, opened after the first set-up.
      reader ??= await dp.readEvents(
        (e) => events.push(e),
        (n) => (lost += n),
      );
      return { ok: true };
    case 'apply': {
      const w = c.world!;
      // As the agent's engine: the same objects, the same snapshot object
      // (what lets an FQDN-only apply skip the policy render).
      const text = JSON.stringify(w.objects);
      if (!engine || text !== engineObjects) {
        const fresh = new PolicyEngine();
        fresh.batch((e) => {
          for (const o of w.objects) e.upsert(o);
        });
        engine = fresh;
        engineObjects = text;
      }
      return dp.apply({
        snapshot: engine.snapshot(),
        services: w.services,
        localEndpoints: w.localEndpoints,
        ownAddresses: w.ownAddresses,
        peerAddresses: w.peerAddresses,
        ...(w.httpProxyPort !== undefined ? { httpProxyPort: w.httpProxyPort } : {}),
        ...(w.dnsProxyPort !== undefined ? { dnsProxyPort: w.dnsProxyPort } : {}),
        ...(w.learned ? { fqdnIps: fqdnIpsOf(w.learned) } : {}),
      });
    }
    case 'proxies':
      await closeProxies();
      await startProxies(c.httpPort!, c.dnsPort!);
      return { ok: true };
    case 'proxy-seen':
      return seen.splice(0);
    case 'proxies-close':
      await closeProxies();
      return { ok: true };
    case 'status':
      return dp.status();
    case 'drops':
      return dp.dropCounters();
    case 'traffic':
      return dp.readTraffic();
    case 'counters':
      return ebpfOnly(c.cmd).packetCounters();
    case 'events':
      return { events: events.splice(0), lost };
    case 'hooks': {
      ebpfOnly(c.cmd);
      const bpf = libbpf();
      const ifindex = bpf.ifNameToIndex(c.ifname!);
      return {
        tcx: bpf.hasTcx() ? [bpf.tcxQuery(ifindex, BPF_TC_INGRESS), bpf.tcxQuery(ifindex, BPF_TC_EGRESS)] : null,
        tc: [bpf.tcQuery(ifindex, BPF_TC_INGRESS, TC_HANDLE, TC_PRIORITY), bpf.tcQuery(ifindex, BPF_TC_EGRESS, TC_HANDLE, TC_PRIORITY)],
      };
    }
    case 'tc-attach': {
      ebpfOnly(c.cmd);
      const bpf = libbpf();
      const ifindex = bpf.ifNameToIndex(c.ifname!);
      const fd = bpf.pinnedFd(`${pinDir}/progs/${c.program!}`);
      try {
        bpf.tcHookCreate(ifindex);
        return { id: bpf.tcAttach(ifindex, BPF_TC_INGRESS, fd, TC_HANDLE, TC_PRIORITY) };
      } finally {
        bpf.closeFd(fd);
      }
    }
    case 'detach':
      ebpfOnly(c.cmd).detachAll();
      return { ok: true };
    case 'exit':
      reader?.close();
      ebpf?.close();
      setImmediate(() => process.exit(0));
      return { ok: true };
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

// Commands run one at a time, in order, like the agent's serialised applies.
let chain: Promise<void> = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const c = JSON.parse(line) as Command;
  chain = chain.then(async () => {
    try {
      const result = await handle(c);
      process.stdout.write(JSON.stringify({ id: c.id, result }) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ id: c.id, error: (err as Error).stack ?? String(err) }) + '\n');
    }
  });
});
process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + '\n');
