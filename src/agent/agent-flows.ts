/**
 * The agent's flow records: one store that every producer feeds (datapath
 * events, the node proxy's L7 and DNS records), the Prometheus metrics
 * derived from it, and the flow log to disk when configured.
 */
import { FlowLog, FlowMetrics, FlowStore, type FlowFilter } from '../flows/index.ts';
import type { AgentConfig } from './config.ts';

export function agentFlows(cfg: AgentConfig): { flows: FlowStore; metrics: FlowMetrics } {
  const flows = new FlowStore({ nodeName: cfg.node, ...(cfg.flowBufferSize ? { capacity: cfg.flowBufferSize } : {}) });
  const { labelsContext, contextLabels, dnsQuery, maxContextValues } = cfg.metrics ?? {};
  const metrics = new FlowMetrics({ ...(labelsContext ? { labelsContext } : {}), ...(contextLabels ? { contextLabels } : {}), ...(dnsQuery !== undefined ? { dnsQuery } : {}), ...(maxContextValues ? { maxContextValues } : {}), connectionEvents: cfg.datapath === 'ebpf' ? 'policy-verdict' : 'trace' });
  flows.onFlow((e) => metrics.observeFlow(e));
  metrics.trackLostEvents(() => flows.status().lost);
  if (cfg.flowLog) {
    const { path, maxSizeBytes, maxFiles, include } = cfg.flowLog;
    const log = new FlowLog({ path, ...(maxSizeBytes ? { maxSizeBytes } : {}), ...(maxFiles ? { maxFiles } : {}), ...(include ? { include: include as FlowFilter[] } : {}) });
    flows.onFlow((e) => log.write(e));
  }
  return { flows, metrics };
}
