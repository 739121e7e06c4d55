/**
 * Where a lab's things live. Every name derives from the lab's name, so labs
 * sit side by side and `lab down --name X` can find all of X from leftovers:
 *
 *   network namespaces   pl-<lab>-fabric, pl-<lab>-<node>, pl-<lab>-pod-<ns>-<pod>
 *   runtime files        /run/palisade/<lab>/…  (state, sockets, logs, kubeconfig)
 *   BPF pins             /sys/fs/bpf/palisade/<lab>/
 */
export const RUN_ROOT = '/run/palisade';
export const BPF_ROOT = '/sys/fs/bpf/palisade';
export const DEFAULT_LAB = 'default';

/**
 * Lab names become parts of namespace and file names. No '-': `pl-<lab>-` must
 * never be a prefix of another lab's names (lab `a` against lab `a-b`).
 */
export const LAB_NAME_RE = /^[a-z0-9]{1,16}$/;

export function validateLabName(name: string): string | null {
  return LAB_NAME_RE.test(name) ? null : `lab name ${JSON.stringify(name)} must be 1–16 lower-case letters or digits`;
}

/** The marker every lab process carries in its command line: the lab's directory. */
export const labMarker = (lab: string): string => `${labDir(lab)}/`;

/** The lab a command means: --lab, else $PALISADE_LAB, else `default`. */
export function labFromEnv(flag?: string): string {
  return flag ?? process.env['PALISADE_LAB'] ?? DEFAULT_LAB;
}

export const labDir = (lab: string): string => `${RUN_ROOT}/${lab}`;
export const labStatePath = (lab: string): string => `${labDir(lab)}/lab.json`;
export const kubeconfigPath = (lab: string): string => `${labDir(lab)}/kubeconfig`;
export const apiSocketPath = (lab: string): string => `${labDir(lab)}/api.sock`;
export const apiDataPath = (lab: string): string => `${labDir(lab)}/apiserver-data.json`;
export const logsDir = (lab: string): string => `${labDir(lab)}/logs`;
export const nodeDir = (lab: string, node: string): string => `${labDir(lab)}/nodes/${node}`;
export const agentSocketPath = (lab: string, node: string): string => `${nodeDir(lab, node)}/agent.sock`;
export const podDir = (lab: string, ns: string, pod: string): string => `${labDir(lab)}/pods/${ns}_${pod}`;
export const containerLogPath = (lab: string, ns: string, pod: string, container: string): string =>
  `${podDir(lab, ns, pod)}/${container}.log`;
export const bpfDir = (lab: string): string => `${BPF_ROOT}/${lab}`;
/** Where `palisade ui --url-file` tells lab up its address. */
export const uiUrlFile = (lab: string): string => `${labDir(lab)}/ui.json`;

export const NETNS_PREFIX = 'pl-';
export const labNetnsPrefix = (lab: string): string => `${NETNS_PREFIX}${lab}-`;
export const fabricNetns = (lab: string): string => `${labNetnsPrefix(lab)}fabric`;
export const nodeNetns = (lab: string, node: string): string => `${labNetnsPrefix(lab)}${node}`;
export const podNetns = (lab: string, ns: string, pod: string): string => `${labNetnsPrefix(lab)}pod-${ns}-${pod}`;

/** What `lab up` records and every other command reads. */
export interface LabState {
  name: string;
  datapath: 'legacy' | 'ebpf';
  createdAt: string;
  /** The checkout the lab runs from (agents and pods run its bin/palisade). */
  root: string;
  nodes: LabNode[];
  apiServer: { url: string; pid: number };
  controller: { pid: number };
  agents: Record<string, { pid: number }>;
  network: LabNetwork;
  /** toFQDNs tuning handed to every agent (absent: the agent's defaults). */
  fqdn?: FqdnSettings;
  /** eBPF: how the agents put programs on devices (absent: auto, tcx where the kernel has it). */
  bpfAttach?: 'tcx' | 'tc';
  /** NetworkPolicy semantics handed to every agent (absent: the agent's defaults). */
  networkPolicy?: NetworkPolicySettings;
  /** Prometheus scraping the agents (lab up --prometheus); absent: the lab has none. */
  prometheus?: LabService;
  /** The web UI (`palisade ui --lab`); absent: lab up --no-ui. */
  ui?: LabService;
}

/** A lab process that serves a person on the host's loopback. */
export interface LabService {
  url: string;
  pid: number;
}

export interface NetworkPolicySettings {
  /** A NetworkPolicy ipBlock selects pod addresses too (Kubernetes; the agent's default); false: outside the cluster only (Cilium). */
  ipBlockSelectsPods?: boolean;
}

export interface FqdnSettings {
  /** Seconds a learned address lives at least (Cilium's --tofqdns-min-ttl). */
  minTtl?: number;
  /** Addresses kept per name, oldest out first (Cilium's --tofqdns-endpoint-max-ip-per-hostname). */
  maxIpsPerName?: number;
}

export interface LabNode {
  name: string;
  /** Address on the underlay bridge. */
  underlayIp: string;
  podCIDR: string;
}

export interface LabNetwork {
  underlayCIDR: string;
  /** The fabric's address on the underlay: every node's default gateway. */
  fabricIp: string;
  clusterPodCIDR: string;
  serviceCIDR: string;
  /** Addresses of the outside world (ExternalHosts). */
  worldCIDR: string;
}
