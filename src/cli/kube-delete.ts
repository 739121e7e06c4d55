/**
 * `palisade delete -f FILE` and `palisade delete KIND NAME…`.
 *
 * With -f, the objects of the manifests are deleted (everything else first,
 * Namespaces last: a Namespace's deletion takes its objects with it, and
 * deleting them first keeps the output one line per object). A NotFound is
 * reported and the command goes on, as "delete what this file made" is done
 * when the thing is gone; --ignore-not-found silences it. Any other refusal
 * makes the command exit 1.
 *
 * With KIND NAME, a NotFound is an error unless --ignore-not-found.
 */
import type { Command } from 'commander';
import { addConnectionOptions, connectKube, describeApiError, isNotFound, type ConnectionOptions, type KubeClient } from './kube-client.ts';
import type { KubeIo } from './kube-io.ts';
import { kindByKind, knownKindWords, POLICIES_WORDS, resolveKind, type KindInfo } from './kube-kinds.ts';
import { loadManifestsOrFail } from './kube-manifests.ts';
import { CliError, red, yellow } from './style.ts';

interface DeleteOptions extends ConnectionOptions {
  filename?: string[];
  namespace?: string;
  ignoreNotFound?: boolean;
}

interface DeleteTarget {
  kind: KindInfo;
  name: string;
  namespace: string | undefined;
}

/** kubectl's line: `pod "frontend" deleted`, `ciliumnetworkpolicy.cilium.io "allow-fe" deleted`. */
function deletedLine(t: DeleteTarget): string {
  const type = t.kind.group === '' ? t.kind.singular : `${t.kind.singular}.${t.kind.group}`;
  return `${type} ${JSON.stringify(t.name)} deleted\n`;
}

/** KIND NAME… or KIND/NAME… → what to delete (the namespace is filled in later). */
export function parseDeleteArgs(args: string[]): { kind: KindInfo; name: string }[] {
  const kindOf = (word: string): KindInfo => {
    if (POLICIES_WORDS.includes(word.toLowerCase())) {
      throw new CliError(`"${word}" names three kinds; say which: cnp, ccnp or netpol`, 2);
    }
    const kind = resolveKind(word);
    if (kind === undefined) throw new CliError(`unknown resource type ${JSON.stringify(word)}: use one of ${knownKindWords()}`, 2);
    return kind;
  };
  const make = (kind: KindInfo, name: string): { kind: KindInfo; name: string } => ({ kind, name });
  if (args.length === 0) throw new CliError('say what to delete: -f FILE, or KIND NAME (e.g. delete pod frontend)', 2);
  if (args.every((a) => a.includes('/'))) {
    return args.map((a) => {
      const slash = a.indexOf('/');
      return make(kindOf(a.slice(0, slash)), a.slice(slash + 1));
    });
  }
  const [word, ...names] = args;
  if (names.length === 0) throw new CliError(`name the ${word} to delete: delete ${word} NAME`, 2);
  const kind = kindOf(word!);
  return names.map((n) => make(kind, n));
}

async function deleteAll(client: KubeClient, targets: DeleteTarget[], notFoundFatal: boolean, ignoreNotFound: boolean, io: KubeIo): Promise<void> {
  const failures: string[] = [];
  for (const t of targets) {
    try {
      await client.delete(t.kind, t.name, t.namespace);
      io.out(deletedLine(t));
    } catch (e) {
      if (e instanceof CliError) throw e;
      if (isNotFound(e) && (ignoreNotFound || !notFoundFatal)) {
        if (!ignoreNotFound) io.err(`${yellow('warning:')} ${describeApiError(e)}\n`);
        continue;
      }
      failures.push(describeApiError(e));
    }
  }
  if (failures.length === 0) return;
  // One object: its error is the message; several: each on its own line, then the count.
  if (targets.length === 1) throw new CliError(failures[0]!, 1);
  for (const f of failures) io.err(`${red('error:')} ${f}\n`);
  throw new CliError(`${failures.length} of ${targets.length} objects were not deleted`, 1);
}

export function registerDelete(program: Command, io: KubeIo): void {
  const cmd = program
    .command('delete')
    .description('Delete the objects of manifests (-f), or objects by kind and name')
    .argument('[what...]', 'KIND NAME [NAME…], or KIND/NAME …')
    .option('-f, --filename <path...>', 'file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeatable')
    .option('-n, --namespace <ns>', 'namespace (default: the kubeconfig context\'s, "default" in a lab)')
    .option('--ignore-not-found', 'say nothing about objects that do not exist');
  addConnectionOptions(cmd)
    .addHelpText('after', `
With -f, manifests are validated first (any fault: nothing is deleted); an
object that is already gone is reported as a warning and is not an error.

Examples:
  palisade delete -f examples/star-wars/
  palisade delete pod xwing
  palisade delete cnp allow-fe -n star-wars
  palisade delete ccnp/deny-world --ignore-not-found`)
    .action(async (what: string[], opts: DeleteOptions) => {
      if (opts.filename !== undefined && what.length > 0) throw new CliError('use -f FILE or KIND NAME, not both', 2);
      if (opts.filename !== undefined) {
        const entries = await loadManifestsOrFail(opts.filename, io, 'deleted');
        const client = connectKube(opts);
        const namespace = opts.namespace ?? client.defaultNamespace;
        const targets = entries.map((e): DeleteTarget => {
          const kind = kindByKind(e.object.kind, e.object.apiVersion);
          if (kind === undefined) throw new CliError(`${e.source}#${e.doc}: kind ${e.object.kind} cannot be deleted by this command`, 1);
          return { kind, name: e.object.metadata.name, namespace: kind.namespaced ? e.object.metadata.namespace ?? namespace : undefined };
        });
        const ordered = [...targets.filter((t) => t.kind.kind !== 'Namespace'), ...targets.filter((t) => t.kind.kind === 'Namespace')];
        await deleteAll(client, ordered, false, opts.ignoreNotFound === true, io);
        return;
      }
      const named = parseDeleteArgs(what);
      const client = connectKube(opts);
      const namespace = opts.namespace ?? client.defaultNamespace;
      const targets = named.map((t): DeleteTarget => ({ ...t, namespace: t.kind.namespaced ? namespace : undefined }));
      await deleteAll(client, targets, true, opts.ignoreNotFound === true, io);
    });
}
