/**
 * `palisade agent --config FILE`: the node agent. In the lab it runs inside
 * its node's network namespace; on Kubernetes, as a DaemonSet pod. Its
 * HTTP and DNS proxies run beside it as `palisade node-proxy` (node-proxy.ts).
 */
import { mkdir } from 'node:fs/promises';
import { pino } from 'pino';
import { createSocket } from 'node:dgram';
import { EbpfDatapath, LegacyDatapath, NFLOG_GROUP, NFLOG_PROBE, openNflog } from '../datapath/index.ts';
import { loadAgentConfig } from './config.ts';
import { Agent } from './agent.ts';
import { serveAgentApi } from './agent-api.ts';
import { eventAsPacket, packetSink } from './flow-events.ts';
import { HTTP_PROXY_PORT } from './http-proxy.ts';
import { DNS_PROXY_PORT } from './dns-proxy.ts';
import { dialProxy } from './proxy-link.ts';
import { proxyLinkPath } from './node-proxy.ts';
import { startObserverServer } from '../flows/index.ts';

export async function runAgent(configFile: string): Promise<void> {
  const cfg = await loadAgentConfig(configFile);
  const log = pino({ base: { node: cfg.node }, level: process.env['PALISADE_LOG_LEVEL'] ?? 'info' });
  await mkdir(cfg.runDir, { recursive: true });
  const ebpf = cfg.datapath === 'ebpf' ? new EbpfDatapath({ pinDir: cfg.pinDir ?? `${cfg.runDir}/bpf`, attach: cfg.bpfAttach }) : undefined;
  const agent = new Agent(cfg, ebpf ?? new LegacyDatapath(), log);
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
  const sink = packetSink(agent.flowContext(), agent.flows);
  if (ebpf) {
    // eBPF: decisions arrive through the programs' ring buffer.
    ebpf.readEvents((e) => sink(eventAsPacket(e)));
    let reported = 0;
    setInterval(() => {
      const lost = ebpf.lostEvents();
      if (lost > reported) agent.flows.recordLost('PERF_EVENT_RING_BUFFER', lost - reported);
      reported = lost;
    }, 1000).unref();
  } else {
    // Legacy: decisions logged by nftables become flow records.
    await openNflog(NFLOG_GROUP, sink, {
      onLost: (n) => agent.flows.recordLost('PERF_EVENT_RING_BUFFER', n),
      onDrainedAfterOverrun: sendLossProbe,
    }).catch((err: unknown) => {
      log.error({ err }, 'cannot read datapath events: flow records will lack L3/L4 decisions');
    });
  }
  const observer = await startObserverServer({ store: agent.flows, address: `unix:${cfg.runDir}/observer.sock` }).catch((err: unknown) => {
    log.error({ err }, 'cannot serve the Hubble Observer API');
    return undefined;
  });
  process.on('exit', () => void observer?.close());
}

/**
 * Packets the kernel could not hand us (reader too slow) are lost events,
 * never silent. Losses show as sequence gaps once a later event arrives; once
 * the reader has caught up after an overrun, a probe datagram (logged by the
 * datapath) is that later event, so the tail of a burst is counted too.
 */
const probeSocket = createSocket('udp4');
probeSocket.on('error', () => {});
probeSocket.unref();
function sendLossProbe(): void {
  probeSocket.send(Buffer.alloc(1), NFLOG_PROBE.port, NFLOG_PROBE.ip);
}
