/**
 * `palisade node-proxy --config FILE`: the node's HTTP and DNS proxies in a
 * process of their own, beside the agent (as Cilium runs Envoy and its DNS
 * proxy outside the agent), so that allowed L7 and DNS traffic goes on while
 * the agent restarts or crashes.
 *
 *   datapath steering ─► :15001 HTTP proxy ─┐
 *                    ─► :15053 DNS proxy  ─┼─ decide from ClusterCache (own informers, own engine)
 *                                          └─ learned names, flow records ─► AgentLink ─► agent
 *
 * It reads the agent's configuration and its endpoint registry (the CNI
 * plugin's addresses of local pods, before the API server has them). The
 * listeners open only once the cache is synced: a listener with an empty
 * policy would allow everything; until then steered packets find no socket
 * and are dropped, failing closed.
 */
import { watch } from 'node:fs';
import { pino } from 'pino';
import { loadAgentConfig, nameCacheFile } from './config.ts';
import { ClusterCache } from './cluster-cache.ts';
import { EndpointRegistry } from './endpoint-registry.ts';
import { AgentLink } from './proxy-link.ts';
import { startHttpProxy } from './http-proxy.ts';
import { createDnsProxy, listenDnsProxy } from './dns-proxy.ts';
import { FlowStore } from '../flows/index.ts';
import type { FlowContext } from './flow-events.ts';

export const proxyLinkPath = (runDir: string): string => `${runDir}/proxy.sock`;

export async function runNodeProxy(configFile: string): Promise<void> {
  const cfg = await loadAgentConfig(configFile);
  const log = pino({ base: { node: cfg.node, process: 'node-proxy' }, level: process.env['PALISADE_LOG_LEVEL'] ?? 'info' });
  const registryFile = `${cfg.runDir}/endpoints.json`;
  let registry = new EndpointRegistry(registryFile);
  await registry.load();
  const cluster = new ClusterCache({ cfg, log, localAddress: (ns, pod) => registry.byPod(ns, pod)?.ip, onChange: () => undefined });
  // Records go to the agent; this store only hands them over.
  const flows = new FlowStore({ nodeName: cfg.node, capacity: 16 });
  const link = new AgentLink(
    () => dns.fqdnCache.exportEntries(),
    () => dns.stats(),
  );
  flows.onFlow((e) => link.flow(e.flow));
  const ctx: FlowContext = {
    node: cfg.node,
    snapshot: () => cluster.snapshot(),
    fqdns: (ip) => dns.fqdnCache.namesForIp(ip),
    ownAddresses: () => [cfg.network.underlayIp],
    peerAddresses: () => [...cluster.nodes.values()].filter((n) => n.name !== cfg.node).map((n) => n.ip),
  };
  const dns = createDnsProxy({
    ctx,
    flows,
    cacheFile: nameCacheFile(cfg.runDir),
    ...(cfg.fqdn?.minTtl !== undefined ? { minTtl: cfg.fqdn.minTtl } : {}),
    ...(cfg.fqdn?.maxIpsPerName !== undefined ? { maxIpsPerName: cfg.fqdn.maxIpsPerName } : {}),
    onLearned: (pod, name, ips, ttl) => link.learned(pod, name, ips, ttl),
    onForgotten: (name, ips) => link.forgotten(name, ips),
  });
  const loaded = await dns.start();
  if (loaded > 0) log.info({ entries: loaded }, 'FQDN name cache restored');
  await cluster.start();
  // A pod the CNI plugin just wired: its address, before the API server has it.
  let reloading = false;
  const registryWatch = watch(cfg.runDir, (_event, file) => {
    if (file !== 'endpoints.json' || reloading) return;
    reloading = true;
    setTimeout(() => {
      reloading = false;
      const next = new EndpointRegistry(registryFile);
      void next.load().then(() => {
        registry = next;
        for (const r of next.all()) cluster.refreshLocalPod(r.namespace, r.pod);
      });
    }, 5);
  });
  const http = await startHttpProxy(ctx, flows, cfg.httpProxy);
  const dnsListener = await listenDnsProxy(dns);
  await link.serve(proxyLinkPath(cfg.runDir));
  log.info({ http: http.address(), httpLimits: http.admission.limits, policies: cluster.engine.stats }, 'node proxy ready');
  const stop = async (signal: string): Promise<void> => {
    log.info({ signal }, 'node proxy stopping');
    setTimeout(() => process.exit(0), 1000).unref();
    registryWatch.close();
    link.close();
    http.close();
    // Saves the name cache for the next proxy (and the agent's first apply).
    await dnsListener.close().catch((err: unknown) => log.error({ err }, 'DNS proxy did not close cleanly'));
    await cluster.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
