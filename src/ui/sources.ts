/**
 * Where the UI's flows, node health and FQDN cache come from:
 *
 *   agentsSource   each node's agent over its unix socket (a lab):
 *                    flows  GET /v1/flows?follow (unixFlowSource, as `palisade observe`)
 *                    health GET /v1/status      fqdn  GET /v1/fqdn/cache
 *                    traffic GET /v1/traffic    (bytes per workload pair, polled by followTraffic)
 *   relaySource    a Hubble Relay's Observer gRPC API (observerFlowSource):
 *                    flows  GetFlows(follow)    health GetNodes   fqdn  (none: the UI shows names from DNS answers)
 *                    traffic (none: flows carry no byte counts, so the heat map's bytes stay 0)
 *
 * followFlows() keeps one stream per FlowSource open for the server's life:
 * it starts with the last minutes of history, and after a failure (an agent
 * restarting, a relay going away) it reconnects with backoff from the last
 * flow it saw, skipping what it already had.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { flowsQueryString, formatFlowTime, getAgentJson, type FlowEnvelope, type FlowSource, type ObserverFlowSource, unixFlowSource, type WorkloadPairTotals, type WorkloadRef } from '../flows/index.ts';
import type { FqdnView, NodeHealth } from './api.ts';
import { workloadName } from './workload.ts';

export interface UiSource {
  /** "lab <name>" or "relay <host:port>". */
  describe: string;
  flows: readonly FlowSource[];
  health(signal: AbortSignal): Promise<NodeHealth[]>;
  /** The agents' FQDN caches; absent when the source has none (a relay). */
  fqdn?(signal: AbortSignal): Promise<FqdnView>;
  /** Bytes forwarded per pair of UI workload ids, cumulative, the agents' counts summed; absent when the source has none (a relay). */
  traffic?(signal: AbortSignal): Promise<TrafficBytes[]>;
  close(): void;
}

/** Bytes from one workload (UI id, workload.ts) to another, cumulative. */
export interface TrafficBytes {
  source: string;
  destination: string;
  bytes: number;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** What the UI reads of an agent's /v1/status. */
interface AgentStatusView {
  ready?: boolean;
  datapath?: { mode?: string; lostEvents?: number };
  flows?: { seen_flows?: number; lost?: Record<string, number> };
}

/** What the UI reads of an agent's /v1/fqdn/cache rows. */
interface FqdnRow {
  name: string;
  ip: string;
  ttlLeft: number;
  resolvedBy: { ip: string; namespace?: string; pod?: string }[];
}

/**
 * An agent's workload as a UI id (workload.ts), or undefined when the UI
 * cannot place it: a pod is `<namespace>/<workload>` (the metrics' rule:
 * workload, then app label, then pod name), the node itself `host/<node>`,
 * other reserved identities `reserved/<name>`; the world is one identity to
 * the agent while the UI draws one node per address or name, so its bytes
 * have no cell.
 */
function trafficWorkloadId(w: WorkloadRef, node: string): string | undefined {
  // Without an app label the agent names a pod itself; the UI names its ReplicaSet's workload.
  if (w.namespace !== '') return `${w.namespace}/${workloadName(w.workload)}`;
  if (w.workload === 'host') return `host/${node}`;
  if (w.workload === 'world' || w.workload === '') return undefined;
  return `reserved/${w.workload}`;
}

export interface AgentNode {
  name: string;
  /** The agent's unix socket (agent.sock). */
  socket: string;
}

/** A lab: every node's agent. `version` is the checkout's, which the lab's agents run. */
export function agentsSource(lab: string, nodes: readonly AgentNode[], version?: string): UiSource {
  return {
    describe: `lab ${lab}`,
    flows: nodes.map((n) => unixFlowSource(n.name, n.socket)),
    health: (signal) =>
      Promise.all(
        nodes.map(async (n): Promise<NodeHealth> => {
          try {
            const s = (await getAgentJson(n.socket, '/v1/status', signal)) as AgentStatusView;
            const lost = Object.values(s.flows?.lost ?? {}).reduce((a, b) => a + b, 0) + (s.datapath?.lostEvents ?? 0);
            return {
              node: n.name,
              state: s.ready === true ? 'ready' : 'degraded',
              ...(s.datapath?.mode !== undefined ? { datapath: s.datapath.mode } : {}),
              ...(version !== undefined ? { version } : {}),
              ...(s.flows?.seen_flows !== undefined ? { flows: s.flows.seen_flows } : {}),
              lost,
              ...(s.ready === true ? {} : { message: 'agent starting: policy not yet applied' }),
            };
          } catch (err) {
            return { node: n.name, state: 'unreachable', message: message(err) };
          }
        }),
      ),
    fqdn: async (signal) => ({
      nodes: await Promise.all(
        nodes.map(async (n) => {
          try {
            const rows = (await getAgentJson(n.socket, '/v1/fqdn/cache', signal)) as FqdnRow[];
            const byName = new Map<string, { name: string; ips: string[]; ttlSeconds: number; pods: Set<string> }>();
            for (const r of rows) {
              const e = byName.get(r.name) ?? { name: r.name, ips: [], ttlSeconds: r.ttlLeft, pods: new Set<string>() };
              e.ips.push(r.ip);
              e.ttlSeconds = Math.max(e.ttlSeconds, r.ttlLeft);
              for (const b of r.resolvedBy) e.pods.add(b.pod ? `${b.namespace ?? ''}/${b.pod}` : b.ip);
              byName.set(r.name, e);
            }
            const entries = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)).map((e) => ({ ...e, pods: [...e.pods].sort() }));
            return { node: n.name, entries };
          } catch (err) {
            return { node: n.name, entries: [], error: message(err) };
          }
        }),
      ),
    }),
    // Each packet is counted by one node only (src/datapath/types.ts TrafficCounter): the agents' rows add up.
    traffic: async (signal) => {
      const sums = new Map<string, TrafficBytes>();
      await Promise.all(
        nodes.map(async (n) => {
          const rows = (await getAgentJson(n.socket, '/v1/traffic', signal)) as WorkloadPairTotals[];
          for (const r of rows) {
            const source = trafficWorkloadId(r.source, n.name);
            const destination = trafficWorkloadId(r.destination, n.name);
            if (source === undefined || destination === undefined) continue;
            const key = `${source}\0${destination}`;
            const t = sums.get(key);
            if (t) t.bytes += r.bytes;
            else sums.set(key, { source, destination, bytes: r.bytes });
          }
        }),
      );
      return [...sums.values()];
    },
    close: () => {},
  };
}

/**
 * Reads the source's traffic every `intervalMs` until `signal` aborts, each
 * reading to `sink`; a failed reading (an agent restarting) is skipped and
 * reported to `onError`. Never rejects.
 */
export async function followTraffic(
  read: (signal: AbortSignal) => Promise<TrafficBytes[]>,
  sink: (rows: TrafficBytes[]) => void,
  onError: (err: unknown) => void,
  signal: AbortSignal,
  intervalMs = 2000,
): Promise<void> {
  while (!signal.aborted) {
    try {
      sink(await read(AbortSignal.any([signal, AbortSignal.timeout(Math.max(intervalMs, 3000))])));
    } catch (err) {
      if (!signal.aborted) onError(err);
    }
    await sleep(intervalMs, undefined, { signal }).catch(() => undefined);
  }
}

/** A Hubble Relay (or any Observer server) at `host:port`. */
export function relaySource(address: string, client: ObserverFlowSource): UiSource {
  return {
    describe: `relay ${address}`,
    flows: [client],
    health: async () => {
      try {
        const nodes = await client.nodes();
        return nodes.map((n): NodeHealth => ({
          node: n.name,
          state: n.state === 'NODE_CONNECTED' ? 'ready' : n.state === 'NODE_UNAVAILABLE' || n.state === 'NODE_GONE' ? 'unreachable' : 'degraded',
          ...(n.version !== '' ? { version: n.version } : {}),
          ...(n.seenFlows !== undefined ? { flows: n.seenFlows } : {}),
          ...(n.state !== 'NODE_CONNECTED' ? { message: `relay reports ${n.state}` } : {}),
        }));
      } catch (err) {
        return [{ node: `relay ${address}`, state: 'unreachable', message: message(err) }];
      }
    },
    close: () => client.close(),
  };
}

export interface FollowSink {
  flow(e: FlowEnvelope): void;
  lost(n: number): void;
  /** A stream failed (it will be retried) or came back (err undefined). */
  status(node: string, err: unknown): void;
}

/** Follows one source until `signal` aborts: history since `historyMs` ago first, then live; reconnects on failure. */
export async function followFlows(src: FlowSource, sink: FollowSink, signal: AbortSignal, historyMs: number): Promise<void> {
  let since = formatFlowTime(Date.now() - historyMs);
  let lastTime = '';
  let lastUuids = new Set<string>();
  let backoff = 500;
  let failing = false;
  while (!signal.aborted) {
    try {
      for await (const r of src.fetch(flowsQueryString({ follow: true, since }), signal)) {
        if ('lost_events' in r) {
          sink.lost(r.lost_events.num_events_lost);
          continue;
        }
        const f = r.flow;
        // After a reconnect from `lastTime`, the flows at that very time may come again.
        if (f.time < lastTime || (f.time === lastTime && f.uuid !== undefined && lastUuids.has(f.uuid))) continue;
        if (f.time !== lastTime) {
          lastTime = f.time;
          lastUuids = new Set();
        }
        if (f.uuid !== undefined) lastUuids.add(f.uuid);
        if (failing) {
          failing = false;
          sink.status(src.node, undefined);
        }
        backoff = 500;
        sink.flow(r);
      }
      if (signal.aborted) return;
      throw new Error('the flow stream ended');
    } catch (err) {
      if (signal.aborted) return;
      if (!failing) sink.status(src.node, err);
      failing = true;
    }
    await sleep(backoff, undefined, { signal }).catch(() => undefined);
    backoff = Math.min(backoff * 2, 5000);
    if (lastTime !== '') since = lastTime;
  }
}
