/**
 * Manifests for `apply -f` and `delete -f`: loaded by src/k8s/manifest, and
 * refused whole when any file has any fault — "a file with any fault is
 * applied not at all", extended here to the whole command line, so a
 * half-applied (or half-deleted) set never happens. `apply` validates every
 * object; `delete` reads only which objects the manifests name, as kubectl.
 */
import { formatFault, loadManifestRefs, loadManifests, type Fault, type ManifestEntry, type ManifestRef } from '../k8s/index.ts';
import type { KubeIo } from './kube-io.ts';
import { CliError, red } from './style.ts';

/** The error that lists every fault; `consequence` says what was not done ("nothing was deleted"). */
export function faultsError(faults: readonly Fault[], consequence: string, intro = 'in the manifests'): CliError {
  const lines = faults.map((f) => `  ${red('✗')} ${formatFault(f)}`);
  return new CliError(`${faults.length} ${faults.length === 1 ? 'fault' : 'faults'}${intro === '' ? '' : ` ${intro}`}; ${consequence}:\n${lines.join('\n')}`, 1);
}

export async function loadManifestsOrFail(paths: string[], io: KubeIo, verb: 'applied' | 'deleted'): Promise<ManifestEntry[]> {
  const files = await loadManifests(paths, { stdin: io.stdin });
  const faults = files.flatMap((f) => f.faults);
  if (faults.length > 0) throw faultsError(faults, `nothing was ${verb}`);
  const entries = files.flatMap((f) => f.entries);
  if (entries.length === 0) throw new CliError(`no objects in ${paths.join(', ')}; nothing was ${verb}`, 1);
  return entries;
}

/**
 * The objects the manifests name, by apiVersion, kind, namespace and name,
 * with `check` run on each file's objects; every fault (of those fields, or
 * from `check`) refuses the whole command line.
 */
export async function loadObjectRefsOrFail<T>(paths: string[], io: KubeIo, check: (refs: ManifestRef[]) => { targets: T[]; faults: Fault[] }): Promise<T[]> {
  const files = await loadManifestRefs(paths, { stdin: io.stdin });
  const targets: T[] = [];
  const faults: Fault[] = [];
  for (const file of files) {
    const checked = check(file.refs);
    targets.push(...checked.targets);
    // In document order; the sort is stable, so each document keeps its faults' order.
    faults.push(...[...file.faults, ...checked.faults].sort((a, b) => a.doc - b.doc));
  }
  if (faults.length > 0) throw faultsError(faults, 'nothing was deleted');
  if (targets.length === 0) throw new CliError(`no objects in ${paths.join(', ')}; nothing was deleted`, 1);
  return targets;
}
