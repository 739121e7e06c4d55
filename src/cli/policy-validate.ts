/** `palisade policy validate`: every fault of every file, with its path; exit 1 when any. */
import type { Command } from 'commander';
import { formatFault, loadManifests } from '../k8s/index.ts';
import { bold, green, red } from './style.ts';

export function registerValidate(policy: Command): void {
  policy
    .command('validate')
    .description('Check policy and object manifests without applying anything')
    .requiredOption('-f, --filename <path...>', 'file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeatable')
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
Every fault of every file is listed with file, document number (1-based) and
field path, e.g.
  policy.yaml#2 spec.egress[0].toFQDNs[1].matchPattern: '%' is not allowed in a DNS pattern
A file with any fault would be applied not at all.

Exit status: 0 all valid, 1 faults found, 2 usage error.

Examples:
  palisade policy validate -f policies/
  kubectl get cnp -A -o yaml | palisade policy validate -f -`,
    )
    .action(async (opts: { filename: string[]; output: string }) => {
      const files = await loadManifests(opts.filename);
      const faults = files.flatMap((f) => f.faults);
      if (opts.output === 'json') {
        const out = files.map((f) => ({
          source: f.source,
          valid: f.faults.length === 0,
          objects: f.entries.map((e) => ({ kind: e.object.kind, namespace: e.object.metadata.namespace, name: e.object.metadata.name, doc: e.doc })),
          faults: f.faults,
        }));
        console.log(JSON.stringify(out, null, 2));
      } else {
        for (const f of files) {
          if (f.faults.length === 0) {
            console.log(`${green('✓')} ${f.source}: ${f.entries.length} object${f.entries.length === 1 ? '' : 's'} valid`);
          } else {
            console.log(`${red('✗')} ${bold(f.source)}: ${f.faults.length} fault${f.faults.length === 1 ? '' : 's'}`);
            for (const fault of f.faults) console.log(`    ${formatFault(fault)}`);
          }
        }
      }
      process.exitCode = faults.length > 0 ? 1 : 0;
    });
}
