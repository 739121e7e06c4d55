/**
 * Prometheus for a lab (`lab up --prometheus`): Debian's /usr/bin/prometheus
 * scraping every agent's published metrics with the scrape configuration
 * docs/metrics.md gives for real clusters: job `networkobservability-hubble`,
 * `instance` = the node's name, `cluster` = the cluster's (here: the lab's) name.
 *
 *   controller  publishLab ─► prometheus/targets.json (one target per node's published /metrics)
 *   lab up      prometheus/prometheus.yml ─► /usr/bin/prometheus on 127.0.0.1:<free port>, TSDB in prometheus/data
 *
 * A real cluster finds the agents with kubernetes_sd (role pod). The lab's
 * agents are not pods, so a targets file stands in for discovery and carries
 * the meta label Kubernetes SD would set (__meta_kubernetes_pod_node_name):
 * the relabelling is then the real cluster's, rule for rule.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { stringify } from 'yaml';
import { labDir } from './paths.ts';
import { startLabProcessReady } from './processes.ts';
import { LabError } from './errors.ts';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';
/** The scrape job ACNS names for Hubble's metrics; the Grafana dashboards select it. */
export const HUBBLE_JOB = 'networkobservability-hubble';
/** A lab is watched by a person over minutes: scrape more often than a cluster's 30 s. */
const LAB_SCRAPE_INTERVAL = '5s';

const prometheusDir = (lab: string): string => `${labDir(lab)}/prometheus`;
const configPath = (lab: string): string => `${prometheusDir(lab)}/prometheus.yml`;
const targetsPath = (lab: string): string => `${prometheusDir(lab)}/targets.json`;

/** `instance` = node name and `cluster` = the cluster's name, as in docs/metrics.md. */
function hubbleRelabelConfigs(cluster: string): object[] {
  return [
    { target_label: 'cluster', replacement: cluster, action: 'replace' },
    { source_labels: ['__meta_kubernetes_pod_node_name'], target_label: 'instance', action: 'replace' },
  ];
}

function labPrometheusConfig(lab: string): object {
  return {
    global: { scrape_interval: LAB_SCRAPE_INTERVAL, evaluation_interval: LAB_SCRAPE_INTERVAL },
    scrape_configs: [
      {
        job_name: HUBBLE_JOB,
        scrape_interval: LAB_SCRAPE_INTERVAL,
        file_sd_configs: [{ files: [targetsPath(lab)], refresh_interval: LAB_SCRAPE_INTERVAL }],
        relabel_configs: hubbleRelabelConfigs(lab),
      },
    ],
  };
}

/**
 * The lab's discovery: one target per node's published metrics (node → http://127.0.0.1:<port>/metrics).
 * Written whole and renamed into place, so Prometheus never reads half a file.
 */
export async function writeScrapeTargets(lab: string, metrics: Record<string, string>): Promise<void> {
  const groups = Object.entries(metrics).map(([node, url]) => {
    const u = new URL(url);
    return { targets: [u.host], labels: { __metrics_path__: u.pathname, __meta_kubernetes_pod_node_name: node } };
  });
  await mkdir(prometheusDir(lab), { recursive: true });
  const tmp = `${targetsPath(lab)}.tmp`;
  await writeFile(tmp, JSON.stringify(groups, null, 2));
  await rename(tmp, targetsPath(lab));
}

/** Checked before a lab is built, so a missing package costs nothing to undo. */
export function assertPrometheusInstalled(): void {
  if (!existsSync(PROMETHEUS_BIN)) throw new LabError(`--prometheus needs ${PROMETHEUS_BIN}: apt-get install prometheus (scripts/setup.sh installs it)`);
}

/** Starts the lab's Prometheus and resolves once it answers /-/ready. */
export async function startPrometheus(lab: string, timeoutMs = 30_000): Promise<{ url: string; pid: number }> {
  await mkdir(`${prometheusDir(lab)}/data`, { recursive: true });
  await writeFile(configPath(lab), `# Written by palisade lab up --prometheus; docs/metrics.md explains it.\n${stringify(labPrometheusConfig(lab))}`);
  // The free port is found by binding and letting go, so another process may
  // take it first: Prometheus then exits at once, and another port is tried.
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    const r = await startLabProcessReady(
      {
        lab,
        name: 'prometheus',
        program: PROMETHEUS_BIN,
        args: [
          `--config.file=${configPath(lab)}`,
          `--storage.tsdb.path=${prometheusDir(lab)}/data`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--storage.tsdb.retention.time=1d',
        ],
      },
      async () => ((await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.ok ? url : undefined),
      timeoutMs,
      100,
    );
    if (r.ready) return { url, pid: r.pid };
    if (r.exited && attempt < 3 && /address already in use/.test(r.log)) continue;
    throw new LabError(`Prometheus ${r.exited ? 'exited' : `was not ready within ${timeoutMs / 1000} s`} (log ${r.logFile})${r.log ? `:\n${r.log}` : ''}`);
  }
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}
