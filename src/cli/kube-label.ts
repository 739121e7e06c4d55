/**
 * `palisade label KIND NAME k=v … k- …`: change an object's labels with a
 * JSON merge patch on metadata.labels, as kubectl label does:
 *
 *   - `k=v` sets a label; changing an existing different value needs --overwrite
 *     ("'app' already has a value (x), and --overwrite is false");
 *   - `k-` removes one (a missing label is a warning, not an error);
 *   - the patch carries the resourceVersion that was read, so a concurrent
 *     change makes it fail (409) instead of silently overwriting what the
 *     check above allowed.
 *
 * Label syntax is checked before anything is sent: keys are `[prefix/]name`,
 * values at most 63 characters (the Kubernetes rules, k8s.io/apimachinery validation).
 */
import type { Command } from 'commander';
import { labelValueError, qualifiedNameError } from '../k8s/index.ts';
import { addConnectionOptions, connectKube, describeApiError, isNotFound, type ConnectionOptions } from './kube-client.ts';
import type { KubeIo } from './kube-io.ts';
import { knownKindWords, objectRef, resolveKind } from './kube-kinds.ts';
import { CliError, yellow } from './style.ts';

interface LabelOptions extends ConnectionOptions {
  namespace?: string;
  overwrite?: boolean;
}

export interface LabelChanges {
  set: Map<string, string>;
  remove: Set<string>;
}

export function parseLabelChanges(args: string[]): LabelChanges {
  const set = new Map<string, string>();
  const remove = new Set<string>();
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq >= 0 ? arg.slice(0, eq) : arg.endsWith('-') ? arg.slice(0, -1) : undefined;
    if (key === undefined) throw new CliError(`${JSON.stringify(arg)} is neither key=value (set a label) nor key- (remove one)`, 2);
    const keyError = qualifiedNameError(key);
    if (keyError !== undefined) throw new CliError(keyError, 2);
    if (set.has(key) || remove.has(key)) throw new CliError(`label ${JSON.stringify(key)} is given more than once`, 2);
    if (eq < 0) {
      remove.add(key);
      continue;
    }
    const value = arg.slice(eq + 1);
    const valueError = labelValueError(value);
    if (valueError !== undefined) throw new CliError(`${key}: ${valueError}`, 2);
    set.set(key, value);
  }
  if (set.size === 0 && remove.size === 0) throw new CliError('give at least one label change: key=value or key-', 2);
  return { set, remove };
}

/** The merge patch for metadata.labels (null removes), or undefined when nothing would change. */
export function labelPatch(current: Record<string, string>, changes: LabelChanges, overwrite: boolean): { patch: Record<string, string | null> | undefined; missing: string[] } {
  const patch: Record<string, string | null> = {};
  const missing: string[] = [];
  for (const [key, value] of changes.set) {
    const old = current[key];
    if (old === value) continue;
    if (old !== undefined && !overwrite) throw new CliError(`'${key}' already has a value (${old}), and --overwrite is false`, 1);
    patch[key] = value;
  }
  for (const key of changes.remove) {
    if (current[key] === undefined) missing.push(key);
    else patch[key] = null;
  }
  return { patch: Object.keys(patch).length > 0 ? patch : undefined, missing };
}

export function registerLabel(program: Command, io: KubeIo): void {
  const cmd = program
    .command('label')
    .description('Add, change or remove labels of a namespace, pod or other object')
    .argument('<kind>', 'ns, pod, svc, cnp, … (any kind `get` knows)')
    .argument('<name>', 'the object')
    .argument('<changes...>', 'key=value to set, key- to remove')
    .option('-n, --namespace <ns>', 'namespace of a namespaced object (default: the kubeconfig context\'s, "default" in a lab)')
    .option('--overwrite', 'allow changing the value of an existing label');
  addConnectionOptions(cmd)
    .addHelpText('after', `
Examples:
  palisade label ns star-wars io.cilium/mtls-enabled=true
  palisade label pod xwing -n star-wars org=empire --overwrite
  palisade label pod xwing class-`)
    .action(async (kindWord: string, name: string, args: string[], opts: LabelOptions) => {
      const kind = resolveKind(kindWord);
      if (kind === undefined) throw new CliError(`unknown resource type ${JSON.stringify(kindWord)}: use one of ${knownKindWords()}`, 2);
      const changes = parseLabelChanges(args);
      const client = connectKube(opts);
      const namespace = kind.namespaced ? opts.namespace ?? client.defaultNamespace : undefined;
      const ref = objectRef(kind, name);
      let live;
      try {
        live = await client.read(kind, name, namespace);
      } catch (e) {
        if (isNotFound(e)) throw new CliError(`${ref} not found${namespace !== undefined ? ` in namespace ${JSON.stringify(namespace)}` : ''}`, 1);
        throw new CliError(`${ref}: ${describeApiError(e)}`, 1);
      }
      const { patch, missing } = labelPatch(live.metadata?.labels ?? {}, changes, opts.overwrite === true);
      for (const key of missing) io.err(`${yellow('warning:')} label ${JSON.stringify(key)} not found on ${ref}\n`);
      if (patch === undefined) {
        io.out(`${ref} not labeled\n`);
        return;
      }
      try {
        await client.mergePatch({
          apiVersion: kind.apiVersion,
          kind: kind.kind,
          metadata: { name, ...(namespace !== undefined ? { namespace } : {}), resourceVersion: live.metadata?.resourceVersion, labels: patch },
        });
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError(`${ref}: ${describeApiError(e)}`, 1);
      }
      io.out(`${ref} labeled\n`);
    });
}
