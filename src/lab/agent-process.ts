/**
 * How a lab node's agent is started, and where its supervisor records it:
 * shared by the supervisor process and by the commands that read or stop it.
 */
import { readFileSync } from 'node:fs';
import { CLI_MAIN, NODE_FLAGS, pidsDir } from './processes.ts';
import { nodeDir, nodeNetns, type LabState } from './paths.ts';
import type { AgentRestarts } from './agent-supervisor.ts';

/**
 * An agent's memory is bounded by construction, as a DaemonSet's limit would
 * bound it: flows live in a fixed-size ring, and V8's heap may not outgrow
 * this (under a flood of events it would otherwise grow lazily before
 * collecting). The young generation is 32 MiB a semi-space: fewer scavenges
 * under DNS load. GC runs on the event-loop thread alone
 * (`--single-threaded-gc`): an agent gets about one core, as its CPU limit
 * would give it, and V8's helper threads on that core took the loop's turn
 * during every scavenge (a 4 ms scavenge became an 18 ms stall).
 */
export const AGENT_NODE_FLAGS = ['--max-old-space-size=256', '--max-semi-space-size=32', '--single-threaded-gc'];

/** The agent's pid file: the supervisor rewrites it at every start. */
export const agentPidPath = (lab: string, node: string): string => `${pidsDir(lab)}/agent-${node}.pid`;
export const agentRestartsPath = (lab: string, node: string): string => `${nodeDir(lab, node)}/agent-restarts.json`;
/** The supervisor's name among the lab's processes (pids/, logs/). */
export const supervisorName = (node: string): string => `agent-supervisor-${node}`;

/**
 * The agent's command: nsenter enters only the network namespace; unlike
 * `ip netns exec` it keeps the host's /sys, where the BPF filesystem with the
 * datapath's pins lives. nsenter execs node, so the child's pid is the agent's.
 */
export function agentStartCommand(lab: string, node: string): [string, string[]] {
  return [
    'nsenter',
    [`--net=/run/netns/${nodeNetns(lab, node)}`, process.execPath, ...NODE_FLAGS, ...AGENT_NODE_FLAGS, CLI_MAIN, 'agent', '--config', `${nodeDir(lab, node)}/agent.json`],
  ];
}

/** The node's agent pid now (the supervisor's latest start), or 0. */
export function agentPid(lab: string, node: string): number {
  try {
    const pid = Number(readFileSync(agentPidPath(lab, node), 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : 0;
  } catch {
    return 0;
  }
}

export function agentRestarts(lab: string, node: string): AgentRestarts | undefined {
  try {
    return JSON.parse(readFileSync(agentRestartsPath(lab, node), 'utf8')) as AgentRestarts;
  } catch {
    return undefined;
  }
}

/** The state with every agent's current pid (lab.json keeps the one from `lab up`). */
export function withCurrentAgentPids(s: LabState): LabState {
  const agents = Object.fromEntries(s.nodes.map((n) => [n.name, { pid: agentPid(s.name, n.name) || (s.agents[n.name]?.pid ?? 0) }]));
  return { ...s, agents };
}
