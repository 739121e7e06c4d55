/**
 * `palisade status`: each node's datapath as its agent reports it — the mode,
 * what is programmed per endpoint (and, on eBPF, which programs are attached
 * where and how full each map is), drops, and what could not be enforced.
 */
import type { Command } from 'commander';
import { readLabState, agentSocketPath, labFromEnv, unixRequest } from '../lab/index.ts';
import { bold, CliError, dim, green, red } from './style.ts';

interface DatapathView {
  mode: string;
  /** eBPF: tcx or tc (clsact). */
  hook?: string | null;
  ipcacheEntries: number;
  services: number;
  endpoints: { endpoint: string; ip: string; ingressEnforced: boolean; egressEnforced: boolean; rules: number; unenforceable: string[] }[];
  lastApply?: { full: boolean; durationMs: number };
  programs?: { endpoint: string; ifname: string; fromContainer: number; toContainer: number; current: boolean }[];
  netdev?: { ifname: string; fromNetdev: number } | null;
  maps?: { name: string; entries: number | null; maxEntries: number }[];
  lostEvents?: number;
}

interface AgentView {
  node: string;
  ready: boolean;
  datapath: DatapathView;
  drops: { packets: number }[];
  flows: { num_flows: number; max_flows: number; seen_flows: number };
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("Each node's datapath: mode, endpoints and their programs, map fill, drops")
    .option('--lab <name>', 'the lab (default: $PALISADE_LAB, else "default")')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (o: { lab?: string; output: string }) => {
      const lab = labFromEnv(o.lab);
      const s = await readLabState(lab);
      if (!s) throw new CliError(`no lab ${lab} on this machine (palisade lab list)`, 1);
      const views = await Promise.all(
        s.nodes.map(async (n) => {
          const r = await unixRequest(agentSocketPath(lab, n.name), 'GET', '/v1/status', undefined, 3000).catch(() => undefined);
          return { node: n.name, view: r?.status === 200 ? (JSON.parse(r.body) as AgentView) : undefined };
        }),
      );
      if (o.output === 'json') {
        console.log(JSON.stringify(Object.fromEntries(views.map((v) => [v.node, v.view ?? null])), null, 2));
        return;
      }
      for (const { node, view } of views) {
        if (!view) {
          console.log(`${bold(node)}  ${red('agent not answering')}`);
          process.exitCode = 1;
          continue;
        }
        const d = view.datapath;
        const drops = view.drops.reduce((t, x) => t + x.packets, 0);
        console.log(
          `${bold(node)}  datapath ${bold(d.mode)}${d.hook ? dim(` (${d.hook})`) : ''}  ${view.ready ? green('ready') : red('starting')}  ipcache ${d.ipcacheEntries}  services ${d.services}  policy drops ${drops}  flows ${view.flows.num_flows}/${view.flows.max_flows}` +
            (d.lastApply ? dim(`  last apply ${d.lastApply.full ? 'full' : 'incremental'} ${d.lastApply.durationMs} ms`) : ''),
        );
        if (d.netdev) console.log(`  underlay ${d.netdev.ifname}: from_netdev ${d.netdev.fromNetdev ? `prog ${d.netdev.fromNetdev}` : red('not attached')}`);
        for (const e of d.endpoints) {
          const prog = d.programs?.find((p) => p.endpoint === e.endpoint);
          const enforced = [e.ingressEnforced ? 'ingress' : '', e.egressEnforced ? 'egress' : ''].filter(Boolean).join('+') || 'open';
          const progs = prog ? `  ${prog.ifname} from_container ${prog.fromContainer || red('none')} to_container ${prog.toContainer || red('none')}` : '';
          console.log(`  ${e.endpoint.padEnd(28)} ${e.ip.padEnd(14)} ${enforced.padEnd(14)} ${String(e.rules).padStart(4)} ${d.mode === 'ebpf' ? 'entries' : 'rules'}${progs}`);
          for (const u of e.unenforceable) console.log(`      ${red('not enforced')} ${u}`);
        }
        if (d.maps?.length) {
          console.log(`  maps: ${d.maps.map((m) => `${m.name} ${m.entries ?? '?'}/${m.maxEntries}`).join(', ')}${d.lostEvents ? `  lost events ${d.lostEvents}` : ''}`);
        }
      }
    });
}
