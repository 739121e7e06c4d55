/**
 * The legacy datapath: kernel routing between pods and nodes, policy in
 * nftables. The baseline every eBPF benchmark compares against.
 *
 *   pod ─veth─► node (routes: local pod /32 via its veth, other nodes' pod
 *               CIDRs via their underlay address) ─► underlay bridge ─► node ─veth─► pod
 *   pod → world: masqueraded to the node's underlay address (table ip palisade_nat)
 *   policy: table inet palisade (see ruleset.ts), changed by atomic nft transactions
 *
 * Runs inside the node's network namespace (the agent's own).
 */
import { performance } from 'node:perf_hooks';
import { ipBatch, nft, run } from '../../kernel/index.ts';
import type {
  ApplyResult,
  Datapath,
  DatapathState,
  DatapathStatus,
  DropCounter,
  NodeNetwork,
  PeerNode,
} from '../types.ts';
import { assertNotRootNetns } from '../../kernel/index.ts';
import { diffTransaction, fullTransaction, renderState, TABLE, type RulesetState } from './ruleset.ts';
import { renderServices } from './render-services.ts';
import { PROXY_MARK } from './render-policy.ts';
import { libnftablesAvailable, nftInProcess } from './libnftables.ts';

/** The routing table that turns marked (TPROXY'd) packets into local deliveries. */
const PROXY_TABLE = 100;

const NAT_TABLE = 'ip palisade_nat';

const PROXY_RULE_PREF = 100;

/** The policy-routing rule for marked packets, added when missing; a stale one (another priority) goes after. */
async function ensureProxyRule(): Promise<void> {
  const mark = `0x${PROXY_MARK.toString(16)}`;
  const rules = JSON.parse((await run('ip', ['-j', 'rule', 'show'])).stdout || '[]') as { priority: number; fwmark?: string; fwmask?: string; table?: string }[];
  const ours = rules.filter((r) => r.fwmark === mark && r.fwmask === mark && r.table === String(PROXY_TABLE));
  if (!ours.some((r) => r.priority === PROXY_RULE_PREF)) {
    await run('ip', ['rule', 'add', 'fwmark', `${mark}/${mark}`, 'lookup', String(PROXY_TABLE), 'pref', String(PROXY_RULE_PREF)]);
  }
  for (const r of ours.filter((r) => r.priority !== PROXY_RULE_PREF)) {
    await run('ip', ['rule', 'del', 'pref', String(r.priority), 'fwmark', `${mark}/${mark}`, 'lookup', String(PROXY_TABLE)]);
  }
}

export class LegacyDatapath implements Datapath {
  readonly mode = 'legacy' as const;
  #installed: RulesetState | null = null;
  #servicesInstalled: string | null = null;
  #serviceCount = 0;
  #lastApply: ApplyResult | undefined;

  async setupNode(node: NodeNetwork, peers: readonly PeerNode[]): Promise<void> {
    assertNotRootNetns('legacy datapath');
    await writeSysctls({
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.rp_filter': '0',
      'net.ipv4.conf.default.rp_filter': '0',
    });
    await ipBatch(peers.filter((p) => p.name !== node.name).map((p) => `route replace ${p.podCIDR} via ${p.ip} dev ${node.underlayIf}`));
    // TPROXY'd packets (marked) are delivered to this node's proxies. A restarted
    // agent finds the rule in place and leaves it: deleting and re-adding it
    // would, for a moment, route steered DNS and HTTP past the proxies.
    await ensureProxyRule();
    await ipBatch([`route replace local 0.0.0.0/0 dev lo table ${PROXY_TABLE}`]);
    // Pods reach the world from the node's address; pod-to-pod and pod-to-node keep their own.
    await nft(
      [
        `add table ${NAT_TABLE}`,
        `delete table ${NAT_TABLE}`,
        `table ${NAT_TABLE} {`,
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    ip saddr ${node.clusterPodCIDR} ip daddr != { ${node.clusterPodCIDR}, ${node.underlayCIDR} } oifname "${node.underlayIf}" masquerade`,
        '  }',
        '}',
      ].join('\n') + '\n',
    );
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

/** Namespaced sysctls of the current (node) network namespace. */
async function writeSysctls(values: Record<string, string>): Promise<void> {
  await run('sysctl', ['-q', '-w', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
}
