/**
 * The two processes a lab node runs, how they start, and where their
 * supervisor records them: shared by the supervisor and by the commands
 * that read or stop them.
 *
 *   agent       `palisade agent`       informers → policy → datapath; the node's API socket
 *   proxy       `palisade node-proxy`  the HTTP and DNS proxies, which outlive agent restarts
 */
import { readFileSync } from 'node:fs';
import { CLI_MAIN, NODE_FLAGS, pidsDir } from './processes.ts';
import { nodeDir, nodeNetns, type LabState } from './paths.ts';
import type { Restarts } from './supervisor.ts';

export type NodeProcess = 'agent' | 'proxy';
export const NODE_PROCESSES: readonly NodeProcess[] = ['agent', 'proxy'];

/**
 * Both processes' memory is bounded by construction, as a DaemonSet's limit
 * would bound it: flows live in a fixed-size ring, and V8's heap may not
 * outgrow this. The young generation is 32 MiB a semi-space: fewer scavenges
 * under DNS load. GC runs on the event-loop thread alone
 * (`--single-threaded-gc`): a process gets about one core, as its CPU limit
 * would give it, and V8's helper threads on that core took the loop's turn
 * during every scavenge (a 4 ms scavenge became an 18 ms stall).
 */
export const AGENT_NODE_FLAGS = ['--max-old-space-size=256', '--max-semi-space-size=32', '--single-threaded-gc'];

const COMMAND: Record<NodeProcess, string> = { agent: 'agent', proxy: 'node-proxy' };

/** The process's pid file: the supervisor rewrites it at every start. */
export const nodePidPath = (lab: string, node: string, p: NodeProcess): string => `${pidsDir(lab)}/${p}-${node}.pid`;
export const restartsPath = (lab: string, node: string, p: NodeProcess): string => `${nodeDir(lab, node)}/${p}-restarts.json`;
/** The supervisor's name among the lab's processes (pids/, logs/). */
export const supervisorName = (node: string): string => `supervisor-${node}`;

/**
 * A node process's command: nsenter enters only the network namespace;
 * unlike `ip netns exec` it keeps the host's /sys, where the BPF filesystem
 * with the datapath's pins lives. nsenter execs node, so the child's pid is the process's.
 */
export function nodeProcessCommand(lab: string, node: string, p: NodeProcess): [string, string[]] {
  return [
    'nsenter',
    [`--net=/run/netns/${nodeNetns(lab, node)}`, process.execPath, ...NODE_FLAGS, ...AGENT_NODE_FLAGS, CLI_MAIN, COMMAND[p], '--config', `${nodeDir(lab, node)}/agent.json`],
  ];
}

/** The process's pid now (the supervisor's latest start), or 0. */
export function nodePid(lab: string, node: string, p: NodeProcess): number {
  try {
    const pid = Number(readFileSync(nodePidPath(lab, node, p), 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : 0;
  } catch {
    return 0;
  }
}

export const agentPid = (lab: string, node: string): number => nodePid(lab, node, 'agent');

export function restartsOf(lab: string, node: string, p: NodeProcess): Restarts | undefined {
  try {
    return JSON.parse(readFileSync(restartsPath(lab, node, p), 'utf8')) as Restarts;
  } catch {
    return undefined;
  }
}

/** The state with every agent's current pid (lab.json keeps the one from `lab up`). */
export function withCurrentAgentPids(s: LabState): LabState {
  const agents = Object.fromEntries(s.nodes.map((n) => [n.name, { pid: agentPid(s.name, n.name) || (s.agents[n.name]?.pid ?? 0) }]));
  return { ...s, agents };
}
