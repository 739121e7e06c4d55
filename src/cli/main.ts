/**
 * The `palisade` command line.
 *
 *   palisade policy validate|trace   policy engine, offline (src/policy)
 *   palisade apply|delete|get|exec|logs|label   objects of a lab (or any cluster) via its API server
 *   palisade lab up|down|status|list        a cluster of network namespaces (src/lab)
 *   palisade workload http-echo|tcp-echo|udp-echo   servers for lab pods
 *   palisade version
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { registerValidate } from './policy-validate.ts';
import { registerPolicyTest } from './policy-test.ts';
import { registerTrace } from './policy-trace.ts';
import { registerKubeCommands } from './kube-commands.ts';
import { registerLabCommands } from './lab-commands.ts';
import { registerObserve } from './observe-command.ts';
import { registerStatus } from './status-command.ts';
import { registerFqdn } from './fqdn-command.ts';
import { registerUi } from './ui-command.ts';
import { unixFlowSource } from '../flows/index.ts';
import { readLabState, agentSocketPath, labFromEnv } from '../lab/index.ts';
import { CliError, red } from './style.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('palisade')
    .description('Palisade: Cilium-compatible network policy, FQDN and L7 filtering, eBPF host routing and flow observability for Kubernetes')
    .version(pkg.version, '-v, --version')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  const policy = program.command('policy').description('Validate policies and trace verdicts, offline');
  registerValidate(policy);
  registerTrace(policy);
  registerPolicyTest(policy);

  registerLabCommands(program);
  registerKubeCommands(program);
  registerStatus(program);
  registerFqdn(program);
  registerUi(program);
  registerObserve(program, {
    // Every node's agent, straight over its unix socket (the lab's, or $PALISADE_LAB's).
    sources: async (labOption) => {
      const lab = labFromEnv(labOption);
      const s = await readLabState(lab);
      if (!s) throw new CliError(`no lab ${lab} on this machine (palisade lab list); choose one with --lab`, 1);
      return s.nodes.map((n) => unixFlowSource(n.name, agentSocketPath(lab, n.name)));
    },
  });
  program
    .command('workload')
    .description('Servers for lab pods: http-echo, tcp-echo, udp-echo (palisade workload http-echo --port 80)')
    .helpOption(false)
    .allowUnknownOption()
    .argument('[args...]')
    .action(async (args: string[]) => {
      // The same lean entry point bin/palisade uses for pods.
      process.argv = [process.argv[0] ?? 'node', 'workload', ...args];
      await (await import('../workload/index.ts')).runWorkloadMain();
    });

  program
    .command('version')
    .description('Print the version')
    .action(() => console.log(`palisade ${pkg.version} (node ${process.versions.node})`));
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof CliError) {
      console.error(`${red('error:')} ${err.message}`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

// Run as the CLI, not when a test imports buildProgram.
if (import.meta.main) await main();
