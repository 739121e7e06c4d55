/** The agent's configuration: one JSON file, written by `lab up` (or a DaemonSet's ConfigMap). */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

const Config = z.strictObject({
  node: z.string().min(1),
  /** Where the agent keeps its socket and state (endpoints survive a restart). */
  runDir: z.string().min(1),
  datapath: z.enum(['legacy', 'ebpf']).default('legacy'),
  /** eBPF datapath: where its maps and programs are pinned (a directory on bpffs). */
  pinDir: z.string().optional(),
  /** eBPF datapath: programs on tcx hooks (Linux 6.6+), on clsact tc filters, or auto (tcx where the kernel has it). */
  bpfAttach: z.enum(['auto', 'tcx', 'tc']).default('auto'),
  /**
   * Flow logs to disk, as ACNS writes container network logs: JSON lines,
   * size-rotated, only the flows that match `include` (Hubble FlowFilters; all when absent).
   */
  flowLog: z
    .strictObject({
      path: z.string().min(1),
      maxSizeBytes: z.number().int().positive().optional(),
      maxFiles: z.number().int().positive().optional(),
      include: z.array(z.record(z.string(), z.unknown())).optional(),
    })
    .optional(),
  /** toFQDNs: how long learned addresses live at least (seconds, default 60) and how many a name keeps (default 1,000). */
  fqdn: z
    .strictObject({
      minTtl: z.number().int().min(0).max(86_400).optional(),
      maxIpsPerName: z.number().int().min(1).max(100_000).optional(),
    })
    .optional(),
  /**
   * The node's HTTP proxy: connections one pod (source address) may hold open
   * at once (default 512), and all pods together (default 4,096, and never
   * more than a quarter of the proxy process's descriptor limit).
   */
  httpProxy: z
    .strictObject({
      maxConnectionsPerPod: z.number().int().min(1).optional(),
      maxConnections: z.number().int().min(1).optional(),
    })
    .optional(),
  /** Kubernetes NetworkPolicy semantics where implementations differ. */
  networkPolicy: z
    .strictObject({
      /**
       * An ipBlock peer selects pods whose address lies in it, as upstream
       * Kubernetes intends (default true); false keeps Cilium's meaning,
       * addresses outside the cluster only (cilium#9209). CiliumNetworkPolicy
       * CIDR rules select the outside world only either way.
       */
      ipBlockSelectsPods: z.boolean().optional(),
    })
    .optional(),
  /**
   * The flow metrics' context labels (Hubble's context options): `labelsContext`
   * (default source_namespace, source_workload, destination_namespace,
   * destination_workload, traffic_direction), `source`/`destination` as
   * "namespace/pod" (`contextLabels`, default both), the DNS `query` label
   * (default on), and how many values a label keeps before "other" (default 256).
   */
  metrics: z
    .strictObject({
      labelsContext: z
        .array(z.enum(['source_pod', 'source_namespace', 'source_workload', 'source_app', 'destination_pod', 'destination_namespace', 'destination_workload', 'destination_app', 'traffic_direction']))
        .optional(),
      contextLabels: z.array(z.enum(['source', 'destination'])).optional(),
      dnsQuery: z.boolean().optional(),
      maxContextValues: z.number().int().min(1).max(100_000).optional(),
    })
    .optional(),
  /** Flow records kept per node (Hubble's ring buffer); default 8,192. */
  flowBufferSize: z.number().int().min(16).max(1 << 22).optional(),
  /** Either a unix socket of the API server (lab) or a kubeconfig file. */
  apiSocket: z.string().optional(),
  kubeconfig: z.string().optional(),
  network: z.strictObject({
    underlayIp: z.string(),
    underlayIf: z.string().default('eth0'),
    underlayCIDR: z.string(),
    podCIDR: z.string(),
    clusterPodCIDR: z.string(),
  }),
});

export type AgentConfig = z.infer<typeof Config>;

export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  const raw: unknown = JSON.parse(await readFile(file, 'utf8'));
  const r = Config.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${file}: ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(lines.join('\n'));
  }
  if (!r.data.apiSocket && !r.data.kubeconfig) throw new Error(`${file}: one of apiSocket or kubeconfig is required`);
  return r.data;
}

/** Where the node proxy's DNS proxy saves its name cache; the agent loads it before its first apply. */
export const nameCacheFile = (runDir: string): string => `${runDir}/fqdn-cache.json`;
