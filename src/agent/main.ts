/**
 * `palisade agent --config FILE`: the node agent. In the lab it runs inside
 * its node's network namespace; on Kubernetes, as a DaemonSet pod.
 */
import { mkdir } from 'node:fs/promises';
import { pino } from 'pino';
import { LegacyDatapath } from '../datapath/index.ts';
import { loadAgentConfig } from './config.ts';
import { Agent } from './agent.ts';
import { serveAgentApi } from './agent-api.ts';

export async function runAgent(configFile: string): Promise<void> {
  const cfg = await loadAgentConfig(configFile);
  const log = pino({ base: { node: cfg.node }, level: process.env['PALISADE_LOG_LEVEL'] ?? 'info' });
  await mkdir(cfg.runDir, { recursive: true });
  if (cfg.datapath !== 'legacy') throw new Error(`datapath ${cfg.datapath} is not available yet; use legacy`);
  const agent = new Agent(cfg, new LegacyDatapath(), log);
  // The API socket opens first so `lab up` can watch /healthz while the agent syncs.
  const server = await serveAgentApi(agent, `${cfg.runDir}/agent.sock`);
  const stop = async (signal: string): Promise<void> => {
    log.info({ signal }, 'agent stopping; programmed policy stays in the kernel');
    setTimeout(() => process.exit(0), 500).unref(); // do not wait on watch connections to drain
    server.close();
    await agent.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await agent.start();
}
