/**
 * `palisade agent --config FILE`: the node agent. In the lab it runs inside
 * its node's network namespace; on Kubernetes, as a DaemonSet pod. Its
 * HTTP and DNS proxies run beside it as `palisade node-proxy` (node-proxy.ts).
 */
import { mkdir } from 'node:fs/promises';
import { pino } from 'pino';
import { EbpfDatapath, LegacyDatapath } from '../datapath/index.ts';
import { loadAgentConfig } from './config.ts';
import { Agent } from './agent.ts';
import { serveAgentApi } from './agent-api.ts';
import { eventSink } from './flow-events.ts';
import { HTTP_PROXY_PORT } from './http-proxy.ts';
import { DNS_PROXY_PORT } from './dns-proxy.ts';
import { dialProxy } from './proxy-link.ts';
import { proxyLinkPath } from './node-proxy.ts';
import { startObserverServer } from '../flows/index.ts';

export async function runAgent(configFile: string): Promise<void> {
  const cfg = await loadAgentConfig(configFile);
  const log = pino({ base: { node: cfg.node }, level: process.env['PALISADE_LOG_LEVEL'] ?? 'info' });
  await mkdir(cfg.runDir, { recursive: true });
  const datapath = cfg.datapath === 'ebpf' ? new EbpfDatapath({ pinDir: cfg.pinDir ?? `${cfg.runDir}/bpf`, attach: cfg.bpfAttach }) : new LegacyDatapath();
  const agent = new Agent(cfg, datapath, log);
  // L7 and DNS policy: steering to the node proxy's ports is programmed from the first apply.
  agent.httpProxyPort = HTTP_PROXY_PORT;
  agent.dnsProxyPort = DNS_PROXY_PORT;
  // The API socket opens first so `lab up` can watch /healthz while the agent syncs.
  const server = await serveAgentApi(agent, `${cfg.runDir}/agent.sock`);
  const stop = async (signal: string): Promise<void> => {
    log.info({ signal }, 'agent stopping; programmed policy stays in the kernel, the node proxy goes on');
    setTimeout(() => process.exit(0), 500).unref(); // do not wait on watch connections to drain
    server.close();
    agent.proxyLink?.close();
    await agent.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // Learned names and L7 records from the node proxy (node-proxy.ts), which outlives this agent.
  agent.proxyLink = dialProxy(proxyLinkPath(cfg.runDir), agent.proxyLinkHandlers());
  await agent.start();
  // Each decision the datapath reports becomes a flow record; what the kernel could not hand over is counted.
  await datapath
    .readEvents(eventSink(agent.flowContext(), agent.flows), (n) => agent.flows.recordLost('PERF_EVENT_RING_BUFFER', n))
    .catch((err: unknown) => {
      log.error({ err }, 'cannot read datapath events: flow records will lack L3/L4 decisions');
    });
  const observer = await startObserverServer({ store: agent.flows, address: `unix:${cfg.runDir}/observer.sock` }).catch((err: unknown) => {
    log.error({ err }, 'cannot serve the Hubble Observer API');
    return undefined;
  });
  process.on('exit', () => void observer?.close());
}
