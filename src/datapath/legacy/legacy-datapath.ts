/**
 * The legacy datapath: kernel routing between pods and nodes, policy in
 * nftables. The baseline every eBPF benchmark compares against.
 *
 *   pod ─veth─► node (routes: local pod /32 via its veth, other nodes' pod
 *               CIDRs via their underlay address) ─► underlay bridge ─► node ─veth─► pod
 *   pod → world: masqueraded to the node's underlay address (table ip palisade_nat)
 *   policy: table inet palisade (see ruleset.ts), changed by atomic nft transactions
 *   events: decisions logged to NFLOG, read back as DatapathEvents (events.ts)
 *   traffic: bytes per address pair in table inet palisade_traffic (traffic.ts)
 *   node set-up: ../node-setup.ts, shared with the eBPF datapath
 *
 * Runs inside the node's network namespace (the agent's own).
 */
import { performance } from 'node:perf_hooks';
import { assertNotRootNetns, nft, run } from '../../kernel/index.ts';
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
import { setupNodeNetwork } from '../node-setup.ts';
import { diffTransaction, fullTransaction, renderState, TABLE, type RulesetState } from './ruleset.ts';
import { renderServices } from './render-services.ts';
import { libnftablesAvailable, nftInProcess } from './libnftables.ts';
import { readLegacyEvents } from './events.ts';
import { readTrafficSet, trafficTableScript } from './traffic.ts';

export class LegacyDatapath implements Datapath {
  readonly mode = 'legacy' as const;
  #installed: RulesetState | null = null;
  #servicesInstalled: string | null = null;
  #serviceCount = 0;
  #lastApply: ApplyResult | undefined;

  /** Sysctls, routes to peers, the proxies' policy route and masquerade: all of it node-setup.ts. */
  async setupNode(node: NodeNetwork, peers: readonly PeerNode[]): Promise<void> {
    assertNotRootNetns('legacy datapath');
    await setupNodeNetwork(node, peers);
    await nft(trafficTableScript(node.clusterPodCIDR));
  }

  readTraffic(): Promise<TrafficCounter[]> {
    return readTrafficSet();
  }

  /** Decisions the ruleset logs to NFLOG (events.ts); chain ids are named from the installed ruleset. */
  readEvents(onEvent: (e: DatapathEvent) => void, onLost: (events: number) => void): Promise<DatapathEventReader> {
    assertNotRootNetns('legacy datapath');
    let names: Map<string, string> | undefined;
    let namesFor: RulesetState | null = null;
    const endpointKey = (chainId: string): string | undefined => {
      if (namesFor !== this.#installed || !names) {
        namesFor = this.#installed;
        names = new Map([...(namesFor?.endpoints.values() ?? [])].map((e) => [e.id, e.key]));
      }
      return names.get(chainId);
    };
    return readLegacyEvents(endpointKey, onEvent, onLost);
  }

  async apply(state: DatapathState): Promise<ApplyResult> {
    assertNotRootNetns('legacy datapath');
    const t0 = performance.now();
    // Services: their own table, rewritten whole (atomically) when anything in it changed.
    const services = renderServices(state.services);
    if (services !== this.#servicesInstalled) {
      await policyNft(services);
      this.#servicesInstalled = services;
      this.#serviceCount = state.services.length;
    }
    const next = renderState(state);
    let result: ApplyResult;
    const diff = this.#installed ? diffTransaction(this.#installed, next) : undefined;
    if (diff === null) {
      result = { full: false, endpointsProgrammed: 0, ipcacheChanges: 0, durationMs: performance.now() - t0 };
    } else if (diff !== undefined) {
      try {
        await policyNft(diff.script);
        result = { full: false, endpointsProgrammed: diff.endpoints, ipcacheChanges: diff.ipcacheChanges, durationMs: 0 };
      } catch {
        // The kernel's table is not what we last wrote (someone flushed it?):
        // rewrite it whole, still in one transaction.
        await policyNft(fullTransaction(next));
        result = { full: true, endpointsProgrammed: next.endpoints.size, ipcacheChanges: next.ipcache.size, durationMs: 0 };
      }
    } else {
      await policyNft(fullTransaction(next));
      result = { full: true, endpointsProgrammed: next.endpoints.size, ipcacheChanges: next.ipcache.size, durationMs: 0 };
    }
    this.#installed = next;
    result.durationMs = Math.round((performance.now() - t0) * 100) / 100;
    this.#lastApply = result;
    return result;
  }

  async dropCounters(): Promise<DropCounter[]> {
    if (!this.#installed) return [];
    const r = await run('nft', ['-j', 'list', 'counters', 'table', ...TABLE.split(' ')], { allowFailure: true });
    if (r.code !== 0) return [];
    const byId = new Map([...this.#installed.endpoints.values()].map((e) => [e.id, e.key]));
    const out: DropCounter[] = [];
    const doc = JSON.parse(r.stdout) as { nftables: { counter?: { name: string; packets: number; bytes: number } }[] };
    for (const item of doc.nftables) {
      const c = item.counter;
      const m = c && /^(e[0-9a-f]+)_(in|eg)_(deny|denied)$/.exec(c.name);
      const key = m?.[1] !== undefined ? byId.get(m[1]) : undefined;
      if (!c || !m || key === undefined) continue;
      out.push({
        endpoint: key,
        direction: m[2] === 'in' ? 'ingress' : 'egress',
        reason: m[3] === 'deny' ? 'POLICY_DENY' : 'POLICY_DENIED',
        packets: c.packets,
        bytes: c.bytes,
      });
    }
    return out;
  }

  status(): DatapathStatus {
    const s = this.#installed;
    return {
      mode: this.mode,
      endpoints: s
        ? [...s.endpoints.values()].map((e) => ({
            endpoint: e.key,
            ip: e.ip,
            ingressEnforced: e.ingressEnforced,
            egressEnforced: e.egressEnforced,
            rules: (e.ingress?.length ?? 0) + (e.egress?.length ?? 0),
            unenforceable: e.unenforceable,
          }))
        : [],
      ipcacheEntries: s?.ipcache.size ?? 0,
      services: this.#serviceCount,
      ...(this.#lastApply ? { lastApply: this.#lastApply } : {}),
    };
  }
}

/** Policy transactions go through libnftables in-process when it loads (milliseconds matter: see libnftables.ts). */
function policyNft(script: string): Promise<void> {
  return libnftablesAvailable() ? nftInProcess(script) : nft(script);
}
