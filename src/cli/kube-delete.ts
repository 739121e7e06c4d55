/**
 * `palisade delete -f FILE` and `palisade delete KIND NAME…`, as kubectl delete.
 *
 * With -f, an object is named by its apiVersion, kind, namespace and name;
 * nothing else of the manifest is read, so a manifest cut down to its name
 * deletes too. A fault in those fields, a kind the lab does not serve, or a
 * namespace other than an explicit -n refuses the whole command before
 * anything is deleted (kubectl would delete the objects before the fault).
 * Namespaces go last: a Namespace's deletion takes its objects with it, and
 * deleting them first keeps the output one line per object.
 *
 * Each object is then deleted in turn. One that fails — NotFound included —
 * is reported on stderr with kubectl's words and the others are still
 * deleted; the command then exits 1. --ignore-not-found passes over missing
 * objects in silence.
 */
import type { Command } from 'commander';
import { pathSegmentNameError, STDIN_SOURCE, type Fault, type ManifestRef } from '../k8s/index.ts';
import { addConnectionOptions, apiStatus, connectKube, isNotFound, type ConnectionOptions, type KubeClient } from './kube-client.ts';
import type { KubeIo } from './kube-io.ts';
import { kindByKind, knownKindWords, POLICIES_WORDS, resolveKind, typeName, type KindInfo } from './kube-kinds.ts';
import { loadObjectRefsOrFail } from './kube-manifests.ts';
import { CliError } from './style.ts';

interface DeleteOptions extends ConnectionOptions {
  filename?: string[];
  namespace?: string;
  ignoreNotFound?: boolean;
}

interface DeleteTarget {
  kind: KindInfo;
  name: string;
  namespace: string | undefined;
  /** The manifest that named it (delete -f), as kubectl names it in errors. */
  source?: string;
}

/** kubectl's line: `pod "frontend" deleted`, `ciliumnetworkpolicy.cilium.io "allow-fe" deleted`. */
function deletedLine(t: DeleteTarget): string {
  return `${typeName(t.kind)} ${JSON.stringify(t.name)} deleted\n`;
}

/**
 * kubectl's line for an object not deleted: `Error from server (NotFound): pods "x" not found`,
 * with `error when deleting "FILE": ` before the server's message under -f.
 */
function failedLine(t: DeleteTarget, e: unknown): string {
  const when = t.source === undefined ? '' : `error when deleting ${JSON.stringify(t.source === STDIN_SOURCE ? 'STDIN' : t.source)}: `;
  const status = apiStatus(e);
  if (status !== undefined) return `Error from server (${status.reason}): ${when}${status.message}\n`;
  return `error: ${when}${e instanceof Error ? e.message : String(e)}\n`;
}

/** A name typed on the command line, checked as kubectl checks it before asking the server. */
function checkedName(name: string): string {
  const error = pathSegmentNameError(name);
  if (error !== undefined) throw new CliError(error, 1);
  return name;
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
  if (args.length === 0) throw new CliError('say what to delete: -f FILE, or KIND NAME (e.g. delete pod frontend)', 2);
  if (args.every((a) => a.includes('/'))) {
    return args.map((a) => {
      const slash = a.indexOf('/');
      return { kind: kindOf(a.slice(0, slash)), name: checkedName(a.slice(slash + 1)) };
    });
  }
  const [word, ...names] = args;
  if (names.length === 0) throw new CliError(`name the ${word} to delete: delete ${word} NAME`, 2);
  const kind = kindOf(word!);
  return names.map((n) => ({ kind, name: checkedName(n) }));
}

/**
 * The objects the manifests name → what to delete; faults for kinds the lab
 * does not serve and for a namespace that contradicts an explicit -n.
 */
function manifestTargets(refs: readonly ManifestRef[], explicitNamespace: string | undefined): { targets: DeleteTarget[]; faults: Fault[] } {
  const targets: DeleteTarget[] = [];
  const faults: Fault[] = [];
  for (const { ref, source, doc, path } of refs) {
    const fault = (field: string, message: string): void => {
      faults.push({ source, doc, path: path === '' ? field : `${path}.${field}`, message });
    };
    const kind = kindByKind(ref.kind, ref.apiVersion);
    if (kind === undefined) {
      const served = kindByKind(ref.kind);
      fault('kind', served !== undefined
        ? `no kind ${ref.kind} in apiVersion ${ref.apiVersion}: it is served by ${served.apiVersion}`
        : `the lab does not serve kind ${ref.kind} (apiVersion ${ref.apiVersion}); it serves ${knownKindWords()}`);
      continue;
    }
    if (kind.namespaced && explicitNamespace !== undefined && ref.namespace !== undefined && ref.namespace !== explicitNamespace) {
      fault('metadata.namespace', `the namespace from the provided object ${JSON.stringify(ref.namespace)} does not match the namespace ${JSON.stringify(explicitNamespace)}. You must pass '--namespace=${ref.namespace}' to perform this operation.`);
      continue;
    }
    // A namespaced object that names no namespace is in -n's, or the kubeconfig's (filled in once connected).
    targets.push({ kind, name: ref.name, namespace: kind.namespaced ? ref.namespace ?? explicitNamespace : undefined, source });
  }
  return { targets, faults };
}

/** Deletes each target in turn; a failure is reported and the rest still go. Returns how many failed. */
async function deleteEach(client: KubeClient, targets: readonly DeleteTarget[], ignoreNotFound: boolean, io: KubeIo): Promise<number> {
  let failed = 0;
  for (const t of targets) {
    try {
      await client.delete(t.kind, t.name, t.namespace);
      io.out(deletedLine(t));
    } catch (e) {
      if (e instanceof CliError) throw e; // cannot reach the server: nothing else will work either
      if (ignoreNotFound && isNotFound(e)) continue;
      failed++;
      io.err(failedLine(t, e));
    }
  }
  return failed;
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
With -f, objects are named by apiVersion, kind, metadata.namespace and
metadata.name; the rest of the manifest is not read. A fault in those fields
deletes nothing. An object that cannot be deleted (NotFound included) is
reported as kubectl does, the others are still deleted, and the command
exits 1; --ignore-not-found passes over objects that do not exist.

Examples:
  palisade delete -f examples/star-wars/
  palisade delete pod xwing
  palisade delete cnp allow-fe -n star-wars
  palisade delete ccnp/deny-world --ignore-not-found`)
    .action(async (what: string[], opts: DeleteOptions) => {
      if (opts.filename !== undefined && what.length > 0) throw new CliError('use -f FILE or KIND NAME, not both', 2);
      let named: DeleteTarget[];
      if (opts.filename !== undefined) {
        const targets = await loadObjectRefsOrFail(opts.filename, io, (refs) => manifestTargets(refs, opts.namespace));
        named = [...targets.filter((t) => t.kind.kind !== 'Namespace'), ...targets.filter((t) => t.kind.kind === 'Namespace')];
      } else {
        named = parseDeleteArgs(what).map((t) => ({ ...t, namespace: t.kind.namespaced ? opts.namespace : undefined }));
      }
      const client = connectKube(opts);
      const targets = named.map((t) => (t.kind.namespaced ? { ...t, namespace: t.namespace ?? client.defaultNamespace } : t));
      if (opts.namespace !== undefined && targets.some((t) => !t.kind.namespaced)) {
        io.err('Warning: deleting cluster-scoped resources, not scoped to the provided namespace\n');
      }
      const failed = await deleteEach(client, targets, opts.ignoreNotFound === true, io);
      if (failed > 0) io.setExitCode(1);
    });
}
