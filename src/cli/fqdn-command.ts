/**
 * `palisade fqdn cache`: what each node's DNS proxy learned — every DNS name
 * with the addresses toFQDNs policies now allow for it, the seconds each has
 * left, and the pods whose lookups returned it (like `cilium fqdn cache list`).
 */
import type { Command } from 'commander';
import type { FqdnCacheRow } from '../agent/index.ts';
import { readLabState, agentSocketPath, labFromEnv, unixRequest } from '../lab/index.ts';
import { bold, CliError, dim, red } from './style.ts';

interface Row extends FqdnCacheRow {
  node: string;
}

export function registerFqdn(program: Command): void {
  const fqdn = program.command('fqdn').description('toFQDNs: what the DNS proxies learned');
  fqdn
    .command('cache')
    .description('List learned DNS names → addresses with TTL left and the pods that resolved them')
    .option('--lab <name>', 'the lab (default: $PALISADE_LAB, else "default")')
    .option('-n, --namespace <ns>', 'only names resolved by pods of this namespace')
    .option('--pod <pod>', 'only names resolved by this pod (`ns/pod`, or a pod of --namespace, else of default)')
    .option('--name <pattern>', 'only names containing this text')
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
An address is reachable through a toFQDNs rule only once a pod on the same node
resolved a matching name through the proxy; it stays until its TTL (at least the
agents' minimum, 60 s by default) has passed and its connections have ended.
A negative TTL means an expired address kept for connections still open.

Examples:
  palisade fqdn cache
  palisade fqdn cache -n shop --pod frontend
  palisade fqdn cache --name github -o json`,
    )
    .action(async (o: { lab?: string; namespace?: string; pod?: string; name?: string; output: string }) => {
      if (o.output !== 'text' && o.output !== 'json') throw new CliError(`--output: ${JSON.stringify(o.output)} is not text or json`);
      const lab = labFromEnv(o.lab);
      const s = await readLabState(lab);
      if (!s) throw new CliError(`no lab ${lab} on this machine (palisade lab list)`, 1);
      const pod = o.pod === undefined ? undefined : o.pod.includes('/') ? o.pod : `${o.namespace ?? 'default'}/${o.pod}`;
      const rows: Row[] = [];
      const silent: string[] = [];
      await Promise.all(
        s.nodes.map(async (n) => {
          const r = await unixRequest(agentSocketPath(lab, n.name), 'GET', '/v1/fqdn/cache', undefined, 3000).catch(() => undefined);
          if (r?.status !== 200) return void silent.push(n.name);
          for (const row of JSON.parse(r.body) as FqdnCacheRow[]) rows.push({ node: n.name, ...row });
        }),
      );
      const selected = rows
        .map((r) => ({
          ...r,
          resolvedBy: r.resolvedBy.filter(
            (b) => (o.namespace === undefined || b.namespace === o.namespace) && (pod === undefined || `${b.namespace}/${b.pod}` === pod),
          ),
        }))
        .filter((r) => r.resolvedBy.length > 0 || (o.namespace === undefined && pod === undefined))
        .filter((r) => o.name === undefined || r.name.includes(o.name.toLowerCase()))
        .sort((a, b) => a.name.localeCompare(b.name) || a.node.localeCompare(b.node) || a.ip.localeCompare(b.ip));
      for (const n of silent) process.stderr.write(`${red('warning')}: the agent of ${n} is not answering; its cache is missing\n`);
      if (silent.length) process.exitCode = 1;
      if (o.output === 'json') {
        console.log(JSON.stringify(selected, null, 2));
        return;
      }
      if (selected.length === 0) {
        console.log(dim('No names learned (yet): pods learn them by resolving names their toFQDNs rules select.'));
        return;
      }
      const table = [
        ['NODE', 'NAME', 'IP', 'TTL', 'RESOLVED BY'],
        ...selected.map((r) => [
          r.node,
          r.name,
          r.ip,
          r.ttlLeft > 0 ? `${r.ttlLeft}s` : `expired (${-r.ttlLeft}s ago), open connections`,
          r.resolvedBy.map((b) => (b.pod ? `${b.namespace}/${b.pod}` : b.ip)).join(', '),
        ]),
      ];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      table.forEach((row, i) => {
        const line = row.map((c, j) => (j === row.length - 1 ? c : c.padEnd(widths[j]!))).join('  ');
        console.log(i === 0 ? bold(line) : line);
      });
    });
}
