/**
 * The lab: a whole cluster out of network namespaces on one machine.
 *
 *   lifecycle.ts     lab up / down / restart-agent, in order, with progress
 *   lab-network.ts   the underlay bridge, node namespaces and their plumbing
 *   supervisor*.ts   a node's processes (agent, node proxy), restarted when they die
 *   controller.ts    the lab's Service/EndpointSlice controller and pod sandboxes
 *   world/           hosts outside the cluster (ExternalHost), their DNS and CA
 *   paths.ts, state.ts  where a lab keeps its files, and what lab up recorded
 *   publish.ts       the agents' metrics and a Hubble Relay on the host's loopback
 *   prometheus.ts    lab up --prometheus: Prometheus over the published metrics
 *   web-ui.ts        the web UI (`palisade ui --lab`) as a lab process
 */
export { readLabState } from './state.ts';
export { agentSocketPath, labFromEnv, kubeconfigPath, validateLabName, podNetns, containerLogPath, labDir, logsDir, RUN_ROOT, DEFAULT_LAB, type LabState, type LabService } from './paths.ts';
export { HUBBLE_JOB } from './prometheus.ts';
export { unixRequest } from './unix-http.ts';
export { publishedPath, type Published } from './publish.ts';
export { labDown, labUp, listLabs, restartAgent } from './lifecycle.ts';
export { LabError } from './errors.ts';
export { consoleProgress } from './progress.ts';
export { isAlive, PROJECT_ROOT } from './processes.ts';
export { nodePid, restartsOf, withCurrentAgentPids } from './node-processes.ts';
export type { ChildExit, Restarts } from './supervisor.ts';
export { runController } from './controller.ts';
export { buildLabNetwork, destroyLabNetwork, UNDERLAY_IF } from './lab-network.ts';
export { ensureLabCa, issueServerCert } from './world/index.ts';
