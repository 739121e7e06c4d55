/**
 * `palisade exec -n NS POD -- CMD ARGS…`: run a command inside a pod's network
 * namespace. Lab pods are network namespaces, not containers, so this is
 * `ip netns exec pl-<lab>-pod-<ns>-<pod> CMD ARGS` with the terminal handed
 * over (stdio inherited) and the command's exit status passed through
 * (a signal n becomes 128+n, as a shell reports it).
 *
 * Checks, in the order a person can fix them: the pod exists in the API,
 * its namespace exists on this machine (/run/netns/<name>), we are root.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { podNetns } from '../lab/index.ts';
import { addConnectionOptions, connectKube, describeApiError, isNotFound, type ConnectionOptions } from './kube-client.ts';
import type { KubeIo } from './kube-io.ts';
import { POD } from './kube-kinds.ts';
import { CliError } from './style.ts';

const NETNS_DIR = '/run/netns';

interface ExecOptions extends ConnectionOptions {
  namespace?: string;
}

/** The shell convention for a child's end: its exit code, or 128 + the number of the signal that killed it. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal !== null ? constants.signals[signal] : undefined;
  return 128 + (n ?? 0);
}

/** Runs `argv` in network namespace `netns` with the terminal inherited; resolves to its exit status. */
export function runInNetns(netns: string, argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal; the CLI must outlive it to report its status.
    const ignoreInt = (): void => {};
    const forward = (signal: NodeJS.Signals) => (): void => { child.kill(signal); };
    const onTerm = forward('SIGTERM');
    const onHup = forward('SIGHUP');
    process.on('SIGINT', ignoreInt);
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onHup);
    const done = (): void => {
      process.off('SIGINT', ignoreInt);
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', onHup);
    };
    child.once('error', (e: NodeJS.ErrnoException) => {
      done();
      reject(e.code === 'ENOENT' ? new CliError("'ip' (iproute2) is not installed or not on PATH: exec needs it to enter the pod's network namespace", 1) : e);
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(exitStatus(code, signal));
    });
  });
}

export function registerExec(program: Command, io: KubeIo): void {
  const cmd = program
    .command('exec')
    .description("Run a command inside a pod's network namespace (needs root)")
    .argument('<pod>', 'the pod')
    .argument('<command...>', 'the command and its arguments, after --')
    .option('-n, --namespace <ns>', 'the pod\'s namespace (default: the kubeconfig context\'s, "default" in a lab)');
  addConnectionOptions(cmd)
    .addHelpText('after', `
A lab pod is a network namespace (pl-<lab>-pod-<namespace>-<pod>), so the
command runs on this machine with the pod's interfaces, addresses and routes:
  ip netns exec pl-<lab>-pod-<ns>-<pod> COMMAND ARGS…
Its exit status is passed through (killed by signal n: 128+n).

Examples:
  sudo palisade exec -n star-wars xwing -- curl -s http://deathstar/v1/
  sudo palisade exec tiefighter -- ip addr
  sudo palisade exec -n default client -- sh`)
    .action(async (pod: string, argv: string[], opts: ExecOptions) => {
      const client = connectKube(opts);
      const namespace = opts.namespace ?? client.defaultNamespace;
      try {
        await client.read(POD, pod, namespace);
      } catch (e) {
        if (e instanceof CliError) throw e;
        if (isNotFound(e)) throw new CliError(`pod ${JSON.stringify(pod)} not found in namespace ${JSON.stringify(namespace)}`, 1);
        throw new CliError(`pod ${namespace}/${pod}: ${describeApiError(e)}`, 1);
      }
      const netns = podNetns(client.lab, namespace, pod);
      if (!existsSync(`${NETNS_DIR}/${netns}`)) {
        throw new CliError(`pod ${namespace}/${pod} has no network namespace on this machine (${NETNS_DIR}/${netns}): is the lab '${client.lab}' up? (palisade lab status)`, 1);
      }
      if (process.getuid?.() !== 0) {
        throw new CliError(`exec enters the pod's network namespace (ip netns exec ${netns}), which needs root: run it with sudo`, 1);
      }
      const status = await runInNetns(netns, argv);
      if (status !== 0) io.setExitCode(status);
    });
}
