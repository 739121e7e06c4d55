/**
 * The eBPF host-routing datapath: tc programs route pod traffic past
 * netfilter and enforce policy from BPF maps (bpf/palisade.bpf.c).
 *
 *   setupNode   sysctls, routes to other nodes' pod CIDRs, masquerade, the
 *               proxies' policy route (../node-setup.ts, as legacy's), the
 *               `socket transparent` mark for masqueraded answers to the
 *               proxies, node config map, from_netdev on the underlay's ingress
 *   apply       render (render.ts) ─► diff against the maps' contents ─►
 *               write changes (adds, then attach on new veths, then deletes)
 *   events      ring buffer ─► decodeEvent (events.ts) ─► readEvents' onEvent; lost_events growth ─► onLost
 *
 * Maps and programs are pinned under `pinDir` (bpffs.ts). A new process
 * loads the object again with every map's pin path set, so libbpf re-uses the
 * pinned maps (connection tracking included), reads their content as its
 * starting point, and on its first apply writes only what differs; attaching
 * replaces the previous process's programs on each hook in one step
 * (hooks.ts). Between the two processes the kernel keeps forwarding and
 * enforcing with the old programs and maps.
 *
 * Runs inside the node's network namespace, single-threaded: applies must be
 * serialised by the caller (the agent does).
 */
import { performance } from 'node:perf_hooks';
import { unlinkSync } from 'node:fs';
import koffi from 'koffi';
import { nft, assertNotRootNetns } from '../../kernel/index.ts';
import { dropReasonName, PROXY_MARK } from '../constants.ts';
import { setupNodeNetwork } from '../node-setup.ts';
import type {
  ApplyResult,
  Datapath,
  DatapathEvent,
  DatapathEventReader,
  DatapathState,
  DatapathStatus,
  DropCounter,
  NodeNetwork,
  PeerNode,
  TrafficCounter,
} from '../types.ts';
import { BPF_OBJECT } from './build.ts';
import { preparePinDir } from './bpffs.ts';
import { decodeEvent } from './events.ts';
import { BPF_TC_EGRESS, BPF_TC_INGRESS, libbpf, type Libbpf, type Ptr } from './libbpf.ts';
import { deviceHooks, type AttachMode, type DeviceHooks, type HookKind } from './hooks.ts';
import {
  BpfMap,
  CFG_VERDICT_EVENTS,
  DIR_EGRESS,
  DIR_INGRESS,
  EP_ID_MAX,
  fwdCounterKey,
  decodeBackendValue,
  decodeCounterKey,
  decodeEndpointValue,
  decodeSvcValue,
  decodeTrafficKey,
  decodeU32,
  EP_F_EGRESS_ENFORCED,
  EP_F_INGRESS_ENFORCED,
  ifindexKey,
  MAP_NAMES,
  type MapContents,
  type MapName,
  nodeConfigValue,
  REASON_FORWARDED,
  STATE_MAPS,
  type StateMapName,
} from './maps.ts';
import { renderEbpfState, type IdSource, type RenderedEndpoint, type RenderedState } from './render.ts';
import { FQDN_IDENTITY_COUNT } from './fqdn-identities.ts';
import { fnv1a } from '../../identity/index.ts';

/**
 * Answers to a proxy's onward connection to the world come back to the
 * node's address (masquerade) and reach the pod's address only after the
 * stack undoes the NAT, past the tc programs: this marks them for the
 * proxies' policy route, as legacy's `socket transparent` rule does. UDP
 * only for replies (the DNS proxy's queries in a pod's name): a pod's own
 * query must never land on the DNS proxy's reply socket bound to that
 * server's address. Packets BPF routes (pod to pod) never cross this hook.
 */
/**
 * And only steered traffic reaches a proxy: packets for the host go through
 * the stack, so a pod (or another node) could otherwise open a connection to
 * a proxy port of a node address directly. Steering keeps the original
 * destination and marks the packet, so an unmarked packet to a proxy port
 * was aimed at the proxy itself (as legacy's input chain judges it).
 */
function proxyTable(proxyPorts: readonly number[]): string {
  return [
    'add table ip palisade_proxy',
    'delete table ip palisade_proxy',
    'table ip palisade_proxy {',
    `  set proxy_ports { type inet_service;${proxyPorts.length ? ` elements = { ${proxyPorts.join(', ')} }` : ''} }`,
    '  chain prerouting {',
    '    type filter hook prerouting priority dstnat + 10; policy accept;',
    // Not the proxies' own listeners (bound to 0.0.0.0): a SYN aimed at them is not a proxy's connection.
    `    meta l4proto tcp socket transparent 1 socket wildcard 0 meta mark set ${PROXY_MARK}`,
    `    meta l4proto udp ct direction reply socket transparent 1 socket wildcard 0 meta mark set ${PROXY_MARK}`,
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    '    ct state established,related accept',
    `    meta l4proto { tcp, udp } th dport @proxy_ports meta mark & ${PROXY_MARK} == 0 counter drop`,
    '  }',
    '}',
  ].join('\n') + '\n';
}

const PROGRAMS = ['from_container', 'to_container', 'from_netdev'] as const;
type ProgramName = (typeof PROGRAMS)[number];

export interface EbpfDatapathOptions {
  /** bpffs directory of this node, e.g. /sys/fs/bpf/palisade/<lab>/<node>. */
  pinDir: string;
  /** Compiled programs (default build/bpf/palisade.bpf.o; see build.ts). */
  objectPath?: string;
  /** How programs go onto devices (hooks.ts); default auto: tcx where the kernel has it, else clsact. */
  attach?: AttachMode;
  /** A policy-verdict event for every allowed new connection, not only denied ones (default true). */
  verdictEvents?: boolean;
  /** libbpf bindings (a fake in tests). */
  libbpf?: Libbpf;
}

export interface EndpointPrograms {
  endpoint: string;
  ifname: string;
  ifindex: number;
  /** Program ids tc has at our handle (0: none), and whether they are this process's. */
  fromContainer: number;
  toContainer: number;
  current: boolean;
}

export interface MapFill {
  name: string;
  entries: number | null;
  maxEntries: number;
}

export interface EbpfStatus extends DatapathStatus {
  pinDir: string;
  /** How the programs sit on devices: tcx hooks, or clsact filters on kernels before 6.6. */
  hook: HookKind | null;
  programs: EndpointPrograms[];
  netdev: { ifname: string; ifindex: number; fromNetdev: number; current: boolean } | null;
  maps: MapFill[];
  lostEvents: number;
  serviceProblems: string[];
  skippedEndpoints: string[];
  /** Addresses in the ipcache because the DNS proxy learned them for a toFQDNs selector. */
  fqdnAddresses: number;
}

export interface PacketCounter {
  endpoint: string;
  direction: 'ingress' | 'egress';
  /** 'FORWARDED' or a Hubble drop reason name. */
  reason: string;
  packets: number;
  bytes: number;
}

/** Traffic counters read per turn of the event loop. */
const LOOKUPS_PER_TURN = 1024;

export class EbpfDatapath implements Datapath {
  readonly mode = 'ebpf' as const;
  readonly #opts: EbpfDatapathOptions;
  #bpf: Libbpf | null = null;
  #hooks: DeviceHooks | null = null;
  #obj: Ptr | null = null;
  readonly #maps = new Map<MapName, BpfMap>();
  readonly #progFd = new Map<ProgramName, number>();
  readonly #progId = new Map<ProgramName, number>();
  /** What the state maps hold, as far as this process knows (seeded from the kernel at load). */
  #installed: Record<StateMapName, MapContents> | null = null;
  #ids: StableIds | null = null;
  #rendered: RenderedState | null = null;
  /** The maps hold `#rendered` exactly: the last apply ran to its end. */
  #synced = false;
  /** ifindex → program ids we attached, per veth. */
  readonly #attached = new Map<number, { ifname: string; endpoint: string; ingress: number; egress: number }>();
  #netdev: { ifname: string; ifindex: number } | null = null;
  /** The ports in table palisade_proxy; undefined until this process has written it. */
  #proxyPorts: number[] | undefined;
  #applies = 0;
  #lastApply: ApplyResult | undefined;
  #reader: { close(): void } | null = null;
  readonly #subscribers = new Set<(e: DatapathEvent) => void>();

  constructor(opts: EbpfDatapathOptions) {
    this.#opts = opts;
  }

  // ------------------------------------------------------------ Datapath

  async setupNode(node: NodeNetwork, peers: readonly PeerNode[]): Promise<void> {
    assertNotRootNetns('ebpf datapath');
    // Sysctls, routes to the other nodes' pod CIDRs (bpf_fib_lookup reads them),
    // the proxies' policy route and masquerade for pod → world: as legacy's.
    await setupNodeNetwork(node, peers);
    // A node switched from legacy keeps no nftables policy or Service DNAT that would judge twice.
    await nft('add table inet palisade\ndelete table inet palisade\nadd table ip palisade_svc\ndelete table ip palisade_svc\n');
    // The proxy-port table is the first apply's to write: a restarted agent rewriting
    // it here, before it knows the ports, would open the proxy ports for a moment.
    const bpf = this.#load();
    const ifindex = bpf.ifNameToIndex(node.underlayIf);
    if (ifindex === 0) throw new Error(`ebpf datapath: no underlay interface ${node.underlayIf}`);
    const flags = this.#opts.verdictEvents === false ? 0 : CFG_VERDICT_EVENTS;
    this.#map('config').update(ifindexKey(0), nodeConfigValue(ifindex, node.clusterPodCIDR, flags));
    this.#hooks!.attach(ifindex, BPF_TC_INGRESS, this.#progFd.get('from_netdev')!, this.#progId.get('from_netdev')!);
    this.#netdev = { ifname: node.underlayIf, ifindex };
  }

  async apply(state: DatapathState): Promise<ApplyResult> {
    assertNotRootNetns('ebpf datapath');
    const t0 = performance.now();
    const bpf = this.#load();
    const installed = this.#installed!;
    const ids = this.#ids!;
    const proxyPorts = [state.httpProxyPort, state.dnsProxyPort].filter((p): p is number => p !== undefined).sort((a, b) => a - b);
    if (proxyPorts.join() !== this.#proxyPorts?.join()) {
      await nft(proxyTable(proxyPorts));
      this.#proxyPorts = proxyPorts;
    }
    // The last render goes in: an apply that only adds or drops learned FQDN
    // addresses (the DNS proxy waits on it) reuses it and diffs the ipcache.
    const next = renderEbpfState(state, ids.source(), (name) => bpf.ifNameToIndex(name), this.#rendered);
    ids.keepOnly(next);

    let ipcacheChanges = 0;
    const touched = new Set<number>();
    /** Endpoints new to the map this apply. */
    const fresh = new Set<number>();
    const epOfPolicyKey = (k: string): number => decodeU16(k, 4);
    const write = (name: StateMapName, k: string, v: string | undefined): void => {
      const m = this.#map(name);
      if (name === 'endpoints' && v !== undefined && !installed.endpoints.has(k)) fresh.add(decodeEndpointValue(v).epId);
      if (v === undefined) m.delete(k);
      else m.update(k, v);
      if (v === undefined) installed[name].delete(k);
      else installed[name].set(k, v);
      if (name === 'ipcache') ipcacheChanges++;
      if (name === 'policy') touched.add(epOfPolicyKey(k));
      if (name === 'endpoints') touched.add(decodeEndpointValue(v ?? installed.endpoints.get(k) ?? '00'.repeat(16)).epId);
    };
    // 1. Adds and changes, the referenced before the referencing (a service never
    //    points to a missing slot, an endpoint never to missing policy, an
    //    address never to an identity whose policy keys are not there yet).
    const upsertOrder: StateMapName[] = ['backends', 'svc_slots', 'services', 'policy', 'ipblock_pods', 'ipcache', 'endpoints', 'ep_ifindex'];
    // A map the render took over unchanged from the last apply is what the
    // kernel holds — when that apply wrote everything (an apply that threw
    // half-way leaves `#synced` false, and the next one diffs every map).
    const prev = this.#synced ? this.#rendered : null;
    this.#synced = false;
    const unchanged = (name: StateMapName): boolean => prev !== null && next.maps[name] === prev.maps[name];
    for (const name of upsertOrder) {
      if (unchanged(name)) continue;
      for (const [k, v] of next.maps[name]) if (installed[name].get(k) !== v) write(name, k, v);
    }
    // A new endpoint's counts start at zero, not at what an earlier holder of its id left
    // (before its programs are attached, below).
    if (fresh.size > 0) this.#resetCounters(fresh);
    // 2. Programs on the veths of endpoints that have their map entries now.
    this.#attachEndpoints(next.endpoints);
    // 3. Removals, the referencing first.
    for (const name of [...upsertOrder].reverse()) {
      if (unchanged(name)) continue;
      for (const [k, v] of [...installed[name]]) {
        if (!next.maps[name].has(k)) {
          if (name === 'endpoints') touched.add(decodeEndpointValue(v).epId);
          write(name, k, undefined);
        }
      }
    }
    const full = this.#applies === 0;
    this.#applies++;
    this.#rendered = next;
    this.#synced = true;
    const result: ApplyResult = {
      full,
      endpointsProgrammed: next.endpoints.filter((e) => touched.has(e.epId)).length,
      ipcacheChanges,
      durationMs: Math.round((performance.now() - t0) * 100) / 100,
    };
    this.#lastApply = result;
    return result;
  }

  async dropCounters(): Promise<DropCounter[]> {
    return this.packetCounters()
      .filter((c) => c.reason === 'POLICY_DENIED' || c.reason === 'POLICY_DENY')
      .map((c) => ({ ...c, reason: c.reason as DropCounter['reason'] }));
  }

  async readTraffic(): Promise<TrafficCounter[]> {
    if (!this.#bpf) return [];
    const m = this.#map('traffic');
    const cpus = this.#bpf.possibleCpus();
    const out: TrafficCounter[] = [];
    const keys = m.keys();
    for (let i = 0; i < keys.length; i++) {
      // Each lookup is a blocking syscall: a full map (one pod can fill it) read in one go
      // stalled the agent's event loop for over half a second.
      if (i > 0 && i % LOOKUPS_PER_TURN === 0) await new Promise<void>((r) => setImmediate(r));
      const k = keys[i] as string;
      const sums = m.lookupPerCpuSum(k, cpus, 2);
      if (!sums) continue; // let go by the LRU meanwhile
      out.push({ ...decodeTrafficKey(k), packets: Number(sums[0]), bytes: Number(sums[1]) });
    }
    return out;
  }

  status(): EbpfStatus {
    const r = this.#rendered;
    const hooks = this.#hooks;
    const programs: EndpointPrograms[] = [];
    if (r && hooks) {
      for (const e of r.endpoints) {
        const fromContainer = hooks.attached(e.ifindex, BPF_TC_INGRESS);
        const toContainer = hooks.attached(e.ifindex, BPF_TC_EGRESS);
        programs.push({
          endpoint: e.key,
          ifname: e.hostIfname,
          ifindex: e.ifindex,
          fromContainer,
          toContainer,
          current: fromContainer === this.#progId.get('from_container') && toContainer === this.#progId.get('to_container'),
        });
      }
    }
    let netdev: EbpfStatus['netdev'] = null;
    if (this.#netdev && hooks) {
      const id = hooks.attached(this.#netdev.ifindex, BPF_TC_INGRESS);
      netdev = { ...this.#netdev, fromNetdev: id, current: id === this.#progId.get('from_netdev') };
    }
    return {
      mode: this.mode,
      endpoints: (r?.endpoints ?? []).map((e) => ({
        endpoint: e.key,
        ip: e.ip,
        ingressEnforced: (e.flags & EP_F_INGRESS_ENFORCED) !== 0,
        egressEnforced: (e.flags & EP_F_EGRESS_ENFORCED) !== 0,
        rules: e.rules,
        unenforceable: e.unenforceable,
      })),
      ipcacheEntries: this.#installed?.ipcache.size ?? 0,
      services: r?.services ?? 0,
      ...(this.#lastApply ? { lastApply: this.#lastApply } : {}),
      pinDir: this.#opts.pinDir,
      hook: this.#hooks?.kind ?? null,
      programs,
      netdev,
      maps: this.mapFill(),
      lostEvents: this.lostEvents(),
      serviceProblems: r?.serviceProblems ?? [],
      skippedEndpoints: r?.skipped ?? [],
      fqdnAddresses: r?.fqdnAddresses ?? 0,
    };
  }

  // ------------------------------------------------------------ beyond Datapath

  /** Entries / max_entries of every map (CT and counters are counted by walking them). */
  mapFill(): MapFill[] {
    if (!this.#bpf) return [];
    return [...this.#maps.values()].map((m) => ({
      name: m.name,
      entries:
        m.name === 'events'
          ? null
          : m.name === 'fwd_counters'
            ? 2 * this.#endpointNames().size // an array's slots always exist: the endpoints' two are in use
            : (STATE_MAPS as readonly string[]).includes(m.name)
              ? this.#installed![m.name as StateMapName].size
              : m.keys().length,
      maxEntries: m.maxEntries,
    }));
  }

  /** Forwarded and dropped packets per endpoint, direction and reason (every reason, not only policy). */
  packetCounters(): PacketCounter[] {
    if (!this.#bpf) return [];
    const m = this.#map('counters');
    const names = this.#endpointNames();
    const out: PacketCounter[] = [];
    const fwd = this.#map('fwd_counters');
    for (const [epId, endpoint] of names) {
      for (const dir of [DIR_INGRESS, DIR_EGRESS]) {
        const sums = fwd.lookupPerCpuSum(fwdCounterKey(epId, dir), this.#bpf.possibleCpus(), 2);
        if (!sums || sums[0] === 0n) continue;
        out.push({ endpoint, direction: dir === DIR_INGRESS ? 'ingress' : 'egress', reason: 'FORWARDED', packets: Number(sums[0]), bytes: Number(sums[1]) });
      }
    }
    for (const k of m.keys()) {
      const key = decodeCounterKey(k);
      const sums = m.lookupPerCpuSum(k, this.#bpf.possibleCpus(), 2);
      const endpoint = names.get(key.epId);
      if (!sums || endpoint === undefined) continue;
      out.push({
        endpoint,
        direction: key.dir === DIR_INGRESS ? 'ingress' : 'egress',
        reason: key.reason === REASON_FORWARDED ? 'FORWARDED' : dropReasonName(key.reason),
        packets: Number(sums[0]),
        bytes: Number(sums[1]),
      });
    }
    return out;
  }

  /** Ring buffer records lost because it was full. */
  lostEvents(): number {
    if (!this.#bpf) return 0;
    return Number(this.#map('lost_events').lookupPerCpuSum(ifindexKey(0), this.#bpf.possibleCpus(), 1)?.[0] ?? 0n);
  }

  /**
   * Events from the ring buffer; records it had no room for (`lost_events`,
   * summed over CPUs) are reported to onLost once a second as they grow.
   * onEvent runs inside ring_buffer__consume: it must not call apply().
   */
  async readEvents(onEvent: (e: DatapathEvent) => void, onLost: (events: number) => void): Promise<DatapathEventReader> {
    this.#subscribers.add(onEvent);
    this.#startReader();
    let reported = this.lostEvents();
    const timer = setInterval(() => {
      const lost = this.lostEvents();
      if (lost > reported) onLost(lost - reported);
      reported = lost;
    }, 1000);
    timer.unref();
    return {
      close: () => {
        clearInterval(timer);
        this.#subscribers.delete(onEvent);
        if (this.#subscribers.size === 0) this.#stopReader();
      },
    };
  }

  /**
   * Lets go of the object: the programs stay attached and the maps pinned,
   * so the kernel goes on forwarding and enforcing until the next agent.
   */
  close(): void {
    this.#stopReader();
    this.#subscribers.clear();
    if (this.#obj !== null && this.#bpf) this.#bpf.closeObject(this.#obj);
    this.#obj = null;
    this.#bpf = null;
    this.#hooks = null;
    this.#maps.clear();
    this.#installed = null;
  }

  /** Removes our programs from every veth we attached and from the underlay (pins stay). */
  detachAll(): void {
    const hooks = this.#hooks;
    if (!hooks) return;
    for (const ifindex of this.#attached.keys()) {
      hooks.detach(ifindex, BPF_TC_INGRESS);
      hooks.detach(ifindex, BPF_TC_EGRESS);
    }
    this.#attached.clear();
    if (this.#netdev) hooks.detach(this.#netdev.ifindex, BPF_TC_INGRESS);
  }

  // ------------------------------------------------------------ internals

  #map(name: MapName): BpfMap {
    const m = this.#maps.get(name);
    if (!m) throw new Error(`ebpf datapath: map ${name} is not loaded`);
    return m;
  }

  /** Opens and loads the object once per process, re-using pinned maps. */
  #load(): Libbpf {
    if (this.#bpf && this.#obj !== null) return this.#bpf;
    const bpf = this.#opts.libbpf ?? libbpf();
    const pinDir = this.#opts.pinDir;
    preparePinDir(pinDir);
    const obj = bpf.openObject(this.#opts.objectPath ?? BPF_OBJECT);
    try {
      const maps = bpf.maps(obj);
      for (const m of maps) bpf.setPinPath(m.ptr, `${pinDir}/maps/${m.name}`);
      try {
        bpf.loadObject(obj);
      } catch (err) {
        throw new Error(
          `ebpf datapath: loading ${this.#opts.objectPath ?? BPF_OBJECT} failed (${(err as Error).message}); ` +
            `if the maps' layout changed since ${pinDir} was pinned, remove it (connections will be judged again)`,
        );
      }
      for (const m of maps) {
        if (!(MAP_NAMES as readonly string[]).includes(m.name)) continue;
        this.#maps.set(
          m.name as MapName,
          new BpfMap(bpf, m.name, bpf.mapFd(m.ptr), bpf.mapMaxEntries(m.ptr), bpf.mapKeySize(m.ptr), bpf.mapValueSize(m.ptr)),
        );
      }
      for (const p of PROGRAMS) {
        const fd = bpf.programFd(obj, p);
        this.#progFd.set(p, fd);
        this.#progId.set(p, bpf.objectId(fd));
        const path = `${pinDir}/progs/${p}`;
        try {
          unlinkSync(path);
        } catch {
          // not pinned yet
        }
        bpf.pinProgram(obj, p, path);
      }
    } catch (err) {
      bpf.closeObject(obj);
      this.#maps.clear();
      throw err;
    }
    this.#bpf = bpf;
    this.#hooks = deviceHooks(bpf, new Set(PROGRAMS), this.#opts.attach);
    this.#obj = obj;
    // Re-adopt: what the pinned maps hold is the starting point of the first diff.
    const installed = {} as Record<StateMapName, MapContents>;
    for (const name of STATE_MAPS) installed[name] = this.#map(name).dump();
    this.#installed = installed;
    this.#synced = false;
    this.#ids = StableIds.fromMaps(installed);
    return bpf;
  }

  #attachEndpoints(endpoints: readonly RenderedEndpoint[]): void {
    const bpf = this.#bpf!;
    const hooks = this.#hooks!;
    const ingress = this.#progId.get('from_container')!;
    const egress = this.#progId.get('to_container')!;
    const live = new Set<number>();
    for (const e of endpoints) {
      live.add(e.ifindex);
      const a = this.#attached.get(e.ifindex);
      if (a && a.ingress === ingress && a.egress === egress && a.ifname === e.hostIfname) continue;
      hooks.attach(e.ifindex, BPF_TC_INGRESS, this.#progFd.get('from_container')!, ingress);
      hooks.attach(e.ifindex, BPF_TC_EGRESS, this.#progFd.get('to_container')!, egress);
      this.#attached.set(e.ifindex, { ifname: e.hostIfname, endpoint: e.key, ingress, egress });
    }
    // Endpoints gone while their veth stays: take the programs off (a deleted veth takes them itself).
    for (const [ifindex, a] of [...this.#attached]) {
      if (live.has(ifindex)) continue;
      if (bpf.ifNameToIndex(a.ifname) === ifindex) {
        hooks.detach(ifindex, BPF_TC_INGRESS);
        hooks.detach(ifindex, BPF_TC_EGRESS);
      }
      this.#attached.delete(ifindex);
    }
  }

  /** Zeroes the endpoints' forwarded slots and deletes their drop counters (one walk of the drop map for all of them). */
  #resetCounters(epIds: ReadonlySet<number>): void {
    const fwd = this.#map('fwd_counters');
    const cpus = this.#bpf!.possibleCpus();
    for (const epId of epIds) for (const dir of [DIR_INGRESS, DIR_EGRESS]) fwd.zeroPerCpu(fwdCounterKey(epId, dir), cpus);
    const drops = this.#map('counters');
    for (const k of drops.keys()) if (epIds.has(decodeCounterKey(k).epId)) drops.delete(k);
  }

  #endpointNames(): Map<number, string> {
    const out = new Map<number, string>();
    for (const e of this.#rendered?.endpoints ?? []) out.set(e.epId, e.key);
    if (out.size === 0 && this.#installed) {
      // Before the first apply: the pinned endpoints, by address.
      for (const v of this.#installed.endpoints.values()) {
        const e = decodeEndpointValue(v);
        out.set(e.epId, e.ip);
      }
    }
    return out;
  }

  #startReader(): void {
    if (this.#reader) return;
    const bpf = this.#load();
    const names = (): Map<number, string> => this.#endpointNames();
    let cache = names();
    let cachedFor = this.#rendered;
    const rb = bpf.ringBuffer(this.#map('events').fd, (data) => {
      if (cachedFor !== this.#rendered) {
        cache = names();
        cachedFor = this.#rendered;
      }
      const e = decodeEvent(data, (id) => cache.get(id));
      if (!e) return;
      for (const s of this.#subscribers) {
        try {
          s(e);
        } catch {
          // a subscriber's failure must not unwind through libbpf
        }
      }
    });
    const poll = koffi.node.poll(rb.epollFd, { readable: true }, () => {
      rb.consume();
    });
    this.#reader = {
      close: () => {
        poll.close();
        rb.free();
      },
    };
  }

  #stopReader(): void {
    this.#reader?.close();
    this.#reader = null;
  }
}

function decodeU16(hexKey: string, off: number): number {
  const b = Buffer.from(hexKey, 'hex');
  return b.readUInt16LE(off);
}

/**
 * Endpoint, service and backend ids: kept for as long as their thing exists,
 * recovered from the pinned maps by a new process, the smallest free one for
 * anything new.
 */
class StableIds {
  #ep = new Map<string, number>();
  #svc = new Map<string, number>();
  #backend = new Map<string, number>();
  #fqdn = new Map<string, number>();

  static fromMaps(m: Record<StateMapName, MapContents>): StableIds {
    const ids = new StableIds();
    for (const v of m.endpoints.values()) {
      const e = decodeEndpointValue(v);
      ids.#ep.set(e.ip, e.epId);
    }
    for (const [k, v] of m.services) ids.#svc.set(k, decodeSvcValue(v).svcId);
    for (const [k, v] of m.backends) {
      const b = decodeBackendValue(v);
      ids.#backend.set(`${b.addr}:${b.port}`, decodeU32(k));
    }
    return ids;
  }

  source(): IdSource {
    return {
      endpointId: (ip) => take(this.#ep, ip, EP_ID_MAX),
      serviceId: (key) => take(this.#svc, key, 0xffffffff),
      backendId: (ip, port) => take(this.#backend, `${ip}:${port}`, 0xffffffff),
      // A hash as the first choice: a new process given the same names arrives
      // at the same numbers, and its first apply rewrites nothing.
      fqdnIdentity: (m) => take(this.#fqdn, m, FQDN_IDENTITY_COUNT - 1, fnv1a(m) % FQDN_IDENTITY_COUNT),
    };
  }

  /** Forgets ids of things the last render no longer has. */
  keepOnly(r: RenderedState): void {
    const eps = new Set(r.endpoints.map((e) => e.ip));
    for (const ip of [...this.#ep.keys()]) if (!eps.has(ip)) this.#ep.delete(ip);
    for (const k of [...this.#svc.keys()]) if (!r.maps.services.has(k)) this.#svc.delete(k);
    const backends = new Set([...r.maps.backends.values()].map((v) => {
      const b = decodeBackendValue(v);
      return `${b.addr}:${b.port}`;
    }));
    for (const k of [...this.#backend.keys()]) if (!backends.has(k)) this.#backend.delete(k);
    for (const k of [...this.#fqdn.keys()]) if (!r.fqdnMemberships.has(k)) this.#fqdn.delete(k);
  }
}

/** The id `key` has, or the first free one from `first` (wrapping to 1 after `max`). */
function take(ids: Map<string, number>, key: string, max: number, first = 1): number {
  const have = ids.get(key);
  if (have !== undefined) return have;
  const used = new Set(ids.values());
  let id = Math.min(Math.max(first, 1), max);
  for (let n = 0; n < max; n++, id = id >= max ? 1 : id + 1) {
    if (!used.has(id)) {
      ids.set(key, id);
      return id;
    }
  }
  throw new Error('ebpf datapath: id space exhausted');
}
