/**
 * `palisade lab up|down|status|list`, and the lab's internal processes
 * (`lab controller`, `agent`) that `lab up` starts.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { publishedPath, type Published, labDown, labUp, LabError, listLabs, readLabState, restartAgent, consoleProgress, agentSocketPath, DEFAULT_LAB, kubeconfigPath, labFromEnv, type LabState, type LabService, isAlive, PROJECT_ROOT, nodePid, restartsOf, withCurrentAgentPids, unixRequest, runController, logsDir, HUBBLE_JOB } from '../lab/index.ts';
import type { ChildExit, Restarts } from '../lab/index.ts';
import { spawnSync } from 'node:child_process';
import { runAgent, runNodeProxy } from '../agent/index.ts';
import { bold, CliError, dim, green, red } from './style.ts';
import { KNP_IPBLOCK_HELP, knpIpBlockSelectsPods } from './policy-trace.ts';

function asCli<T>(fn: () => Promise<T>): Promise<T> {
  return fn().catch((err: unknown) => {
    if (err instanceof LabError) throw new CliError(err.message, 1);
    throw err;
  });
}

export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('A whole Kubernetes-like cluster out of network namespaces on this machine (root)');

  lab
    .command('up')
    .description('Create a lab: node namespaces on an underlay, the API server, the controller, one agent per node and the web UI')
    .option('--name <name>', 'lab name (letters and digits)', DEFAULT_LAB)
    .option('--nodes <n>', 'number of nodes', '2')
    .option('--datapath <mode>', 'legacy (routing + nftables) or ebpf (tc programs, host routing that bypasses netfilter)', 'legacy')
    .option('--demo', 'also deploy the demo application (examples/lab/demo-app.yaml)')
    .option('--fqdn-min-ttl <seconds>', 'toFQDNs: keep a learned address at least this long, whatever the DNS TTL (agents default to 60)')
    .option('--fqdn-max-ips <n>', 'toFQDNs: addresses kept per DNS name, oldest out first (agents default to 1000)')
    .option('--bpf-attach <kind>', 'ebpf: put the programs on tcx hooks (Linux 6.6+) or on tc clsact filters (default: tcx where the kernel has it)')
    .option('--knp-ipblock <semantics>', `${KNP_IPBLOCK_HELP}; agent config networkPolicy.ipBlockSelectsPods`)
    .option('--no-ui', 'do not start the web UI (palisade ui --lab <name>)')
    .option('--prometheus', `also run Prometheus (Debian's /usr/bin/prometheus) scraping the agents, job ${HUBBLE_JOB} (docs/metrics.md)`)
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
Everything the lab creates carries its name: namespaces pl-<name>-…, files under
/run/palisade/<name>/. Several labs can run side by side. It stays up until
'palisade lab down --name <name>'.

Examples:
  palisade lab up
  palisade lab up --name test --nodes 3
  palisade lab up --prometheus                     # the UI's charts read from it
  palisade lab status                              # the URLs of the UI and Prometheus
  palisade apply -f examples/lab/demo-app.yaml   # then: palisade get pods -A`,
    )
    .action(async (o: { name: string; nodes: string; datapath: string; output: string; demo?: boolean; fqdnMinTtl?: string; fqdnMaxIps?: string; bpfAttach?: string; knpIpblock?: string; prometheus?: boolean; ui: boolean }) => {
      if (o.datapath !== 'legacy' && o.datapath !== 'ebpf') throw new CliError(`--datapath: ${JSON.stringify(o.datapath)} is not legacy or ebpf`);
      if (o.bpfAttach !== undefined && o.bpfAttach !== 'tcx' && o.bpfAttach !== 'tc') throw new CliError(`--bpf-attach: ${JSON.stringify(o.bpfAttach)} is not tcx or tc`);
      if (o.bpfAttach !== undefined && o.datapath !== 'ebpf') throw new CliError('--bpf-attach needs --datapath ebpf');
      const networkPolicy = o.knpIpblock === undefined ? undefined : { ipBlockSelectsPods: knpIpBlockSelectsPods(o.knpIpblock) };
      const fqdn = {
        ...(o.fqdnMinTtl !== undefined ? { minTtl: wholeNumber('--fqdn-min-ttl', o.fqdnMinTtl, 0) } : {}),
        ...(o.fqdnMaxIps !== undefined ? { maxIpsPerName: wholeNumber('--fqdn-max-ips', o.fqdnMaxIps, 1) } : {}),
      };
      process.stderr.write(`Bringing up lab ${bold(o.name)} (${o.nodes} nodes, ${o.datapath} datapath)\n`);
      const progress = consoleProgress();
      const s = await asCli(() => labUp({ name: o.name, nodes: Number(o.nodes), datapath: o.datapath as 'legacy' | 'ebpf', progress, ...(Object.keys(fqdn).length ? { fqdn } : {}), ...(o.bpfAttach ? { bpfAttach: o.bpfAttach as 'tcx' | 'tc' } : {}), ...(networkPolicy ? { networkPolicy } : {}), prometheus: o.prometheus === true, ui: o.ui }));
      if (o.demo) await progress('demo application (examples/lab/demo-app.yaml)', () => applyDemo(o.name));
      if (o.output === 'json') console.log(JSON.stringify(s, null, 2));
      else printSummary(s);
    });

  lab
    .command('down')
    .description('Remove a lab and every trace of it (also after a crash)')
    .option('--name <name>', 'lab name', labFromEnv())
    .action(async (o: { name: string }) => {
      const r = await asCli(() => labDown(o.name));
      if (r.namespaces.length === 0 && r.removedDirs.length === 0 && r.processes === 0) {
        console.log(`lab ${o.name}: nothing to remove`);
        return;
      }
      console.log(`lab ${o.name} removed: ${r.processes} processes, ${r.namespaces.length} network namespaces, ${r.removedDirs.join(', ') || 'no files'}`);
    });

  lab
    .command('status')
    .description('Show a lab: API server, controller, nodes and agents, with health')
    .option('--name <name>', 'lab name', labFromEnv())
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (o: { name: string; output: string }) => {
      const recorded = await readLabState(o.name);
      if (!recorded) throw new CliError(`no lab ${o.name} on this machine (palisade lab list)`, 1);
      const s = withCurrentAgentPids(recorded);
      const restarts = Object.fromEntries(s.nodes.map((n) => [n.name, restartsOf(s.name, n.name, 'agent') ?? null]));
      const proxyRestarts = Object.fromEntries(s.nodes.map((n) => [n.name, restartsOf(s.name, n.name, 'proxy') ?? null]));
      const agents = await Promise.all(
        s.nodes.map(async (n) => {
          const r = await unixRequest(agentSocketPath(s.name, n.name), 'GET', '/v1/status', undefined, 2000).catch(() => undefined);
          return { node: n.name, status: r?.status === 200 ? (JSON.parse(r.body) as AgentStatusView) : undefined };
        }),
      );
      if (o.output === 'json') {
        const agentStatus = Object.fromEntries(agents.map((a) => [a.node, a.status ?? null]));
        const service = (v: LabService | undefined): object | null => (v ? { ...v, running: isAlive(v.pid) } : null);
        console.log(JSON.stringify({ ...s, prometheus: service(s.prometheus), ui: service(s.ui), published: readPublished(s.name) ?? null, agentStatus, agentRestarts: restarts, proxyRestarts }, null, 2));
        return;
      }
      printStatus(s, agents, restarts, proxyRestarts);
      if (agents.some((a) => !a.status?.ready)) process.exitCode = 1;
    });

  lab
    .command('list')
    .description('Labs on this machine')
    .action(async () => {
      const names = await listLabs();
      if (names.length === 0) console.log('no labs');
      for (const n of names) {
        const s = await readLabState(n);
        console.log(s ? `${n}\t${s.nodes.length} nodes\t${s.datapath}\t${s.apiServer.url}\tsince ${s.createdAt}` : `${n}\t(leftovers only: palisade lab down --name ${n})`);
      }
    });

  lab
    .command('restart-agent')
    .description("Restart a node's agent; policy stays enforced in the kernel meanwhile")
    .argument('<node>', 'node name, e.g. node-1')
    .option('--name <name>', 'lab name', labFromEnv())
    .action(async (node: string, o: { name: string }) => {
      const pid = await asCli(() => restartAgent(o.name, node));
      console.log(`agent on ${node} restarted (pid ${pid}) and ready`);
    });

  lab
    .command('controller', { hidden: true })
    .description("The lab's scheduler and kubelets (started by lab up)")
    .requiredOption('--name <name>')
    .option('--run-dir <dir>')
    .action(async (o: { name: string }) => {
      await runController(o.name);
      await new Promise(() => {}); // runs until signalled
    });

  program
    .command('node-proxy', { hidden: true })
    .description("The node's HTTP and DNS proxies, beside the agent (started by lab up, or as a DaemonSet container)")
    .requiredOption('--config <file>')
    .action(async (o: { config: string }) => {
      await runNodeProxy(o.config);
      await new Promise(() => {});
    });

  program
    .command('agent', { hidden: true })
    .description('The node agent (started by lab up, or as a DaemonSet)')
    .requiredOption('--config <file>')
    .action(async (o: { config: string }) => {
      await runAgent(o.config);
      await new Promise(() => {});
    });
}

async function applyDemo(lab: string): Promise<void> {
  const r = spawnSync(`${PROJECT_ROOT}bin/palisade`, ['apply', '--lab', lab, '-f', `${PROJECT_ROOT}examples/lab/demo-app.yaml`, '--timeout', '60s'], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new CliError(`applying the demo application failed:\n${r.stdout}${r.stderr}`, 1);
}

interface AgentStatusView {
  ready: boolean;
  proxyLinked?: boolean;
  endpoints: unknown[];
  drops: { packets: number }[];
  rejectedPolicies: { policy: string; faults: string[] }[];
  datapath: { mode: string; endpoints: { endpoint: string; unenforceable: string[] }[] };
}

function readPublished(lab: string): Published | undefined {
  try {
    return JSON.parse(readFileSync(publishedPath(lab), 'utf8')) as Published;
  } catch {
    return undefined;
  }
}

function printSummary(s: LabState): void {
  console.log(`\n${green('Lab')} ${bold(s.name)} is up: ${s.nodes.length} nodes, ${s.datapath} datapath`);
  console.log(`  API server   ${s.apiServer.url}`);
  console.log(`  kubeconfig   ${kubeconfigPath(s.name)}   ${dim(`(kubectl --kubeconfig ${kubeconfigPath(s.name)} get pods -A)`)}`);
  for (const n of s.nodes) console.log(`  ${n.name.padEnd(12)} ${n.underlayIp.padEnd(14)} pods ${n.podCIDR}`);
  if (s.prometheus) console.log(`  Prometheus   ${s.prometheus.url}   ${dim(`(job ${HUBBLE_JOB}, every 5 s)`)}`);
  if (s.ui) console.log(`  UI           ${bold(s.ui.url)}   ${dim('(service map, flows, drops, DNS, HTTP, health)')}`);
  const flag = s.name === DEFAULT_LAB ? '' : ` --lab ${s.name}`;
  console.log(`\nNext: palisade apply${flag} -f examples/lab/demo-app.yaml · palisade get pods -A${flag} · palisade lab down${s.name === DEFAULT_LAB ? '' : ` --name ${s.name}`}`);
}

function printStatus(s: LabState, agents: { node: string; status: AgentStatusView | undefined }[], restarts: Record<string, Restarts | null>, proxyRestarts: Record<string, Restarts | null>): void {
  const ok = (b: boolean): string => (b ? green('✓') : red('✗'));
  console.log(`Lab ${bold(s.name)} — ${s.datapath} datapath, up since ${s.createdAt}`);
  console.log(`  API server   ${ok(isAlive(s.apiServer.pid))} ${s.apiServer.url} ${dim(`pid ${s.apiServer.pid}`)}`);
  console.log(`  kubeconfig   ${existsSync(kubeconfigPath(s.name)) ? kubeconfigPath(s.name) : red('missing')}`);
  console.log(`  controller   ${ok(isAlive(s.controller.pid))} ${dim(`pid ${s.controller.pid}`)}`);
  const pub = readPublished(s.name);
  if (pub) console.log(`  Hubble relay ${pub.relay}   ${dim('(gRPC Observer API; palisade observe reads the agents directly)')}`);
  if (s.prometheus) console.log(`  Prometheus   ${serviceText(s.name, 'prometheus', s.prometheus)}  ${dim(`(job ${HUBBLE_JOB})`)}`);
  if (s.ui) console.log(`  UI           ${serviceText(s.name, 'ui', s.ui)}`);
  for (const n of s.nodes) {
    const a = agents.find((x) => x.node === n.name)?.status;
    const pid = s.agents[n.name]?.pid ?? 0;
    const drops = a ? a.drops.reduce((t, d) => t + d.packets, 0) : 0;
    const r = restarts[n.name];
    const backoff = r?.backoffUntil && Date.parse(r.backoffUntil) > Date.now();
    const state = a ? (a.ready ? 'ready' : 'starting') : backoff ? 'CrashLoopBackOff' : isAlive(pid) ? 'not answering' : 'down';
    console.log(
      `  ${n.name.padEnd(12)} ${n.underlayIp.padEnd(14)} pods ${n.podCIDR.padEnd(15)} agent ${ok(a?.ready ?? false)} ${state}` +
        (a ? `  endpoints ${a.endpoints.length}  policy drops ${drops}` : '') +
        `  restarts ${r?.restarts ?? 0}${r?.lastExit ? ` ${dim(`(last: ${exitText(r.lastExit)}, ${ago(r.lastExit.at)})`)}` : ''}` +
        ` ${dim(`pid ${pid}`)}`,
    );
    const pr = proxyRestarts[n.name];
    const proxyPid = nodePid(s.name, n.name, 'proxy');
    console.log(
      `      node proxy ${ok(a?.proxyLinked ?? false)} ${a?.proxyLinked ? 'linked' : isAlive(proxyPid) ? 'not linked' : 'down'}` +
        `  restarts ${pr?.restarts ?? 0}${pr?.lastExit ? ` ${dim(`(last: ${exitText(pr.lastExit)}, ${ago(pr.lastExit.at)})`)}` : ''} ${dim(`pid ${proxyPid}`)}`,
    );
    if (pub?.metrics[n.name]) console.log(`      metrics ${pub.metrics[n.name]}`);
    for (const r of a?.rejectedPolicies ?? []) console.log(`      ${red('rejected')} ${r.policy}: ${r.faults.join('; ')}`);
    for (const e of a?.datapath.endpoints ?? []) for (const u of e.unenforceable) console.log(`      ${red('not enforced')} ${e.endpoint} ${u}`);
  }
}

/** A lab service's URL first (scripts pick it out), then whether it runs. */
function serviceText(lab: string, name: string, v: LabService): string {
  return isAlive(v.pid) ? `${v.url}  ${green('✓')} running ${dim(`pid ${v.pid}`)}` : `${v.url}  ${red('✗')} down ${dim(`(log ${logsDir(lab)}/${name}.log)`)}`;
}

/** How an agent ended, as kubectl describes a container's last state. */
function exitText(e: ChildExit): string {
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
}

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function wholeNumber(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min) throw new CliError(`${flag}: ${JSON.stringify(text)} is not a whole number ≥ ${min}`);
  return n;
}
