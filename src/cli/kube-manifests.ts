/**
 * Manifests for `apply -f` and `delete -f`: loaded and validated by
 * src/k8s/manifest, and refused whole when any file has any fault — "a file
 * with any fault is applied not at all", extended here to the whole command
 * line, so a half-applied set never happens.
 */
import { formatFault, loadManifests, type ManifestEntry } from '../k8s/manifest/index.ts';
import type { KubeIo } from './kube-io.ts';
import { CliError, red } from './style.ts';

export async function loadManifestsOrFail(paths: string[], io: KubeIo, verb: 'applied' | 'deleted'): Promise<ManifestEntry[]> {
  const files = await loadManifests(paths, { stdin: io.stdin });
  const faults = files.flatMap((f) => f.faults);
  if (faults.length > 0) {
    const lines = faults.map((f) => `  ${red('✗')} ${formatFault(f)}`);
    throw new CliError(`${faults.length} ${faults.length === 1 ? 'fault' : 'faults'} in the manifests; nothing was ${verb}:\n${lines.join('\n')}`, 1);
  }
  const entries = files.flatMap((f) => f.entries);
  if (entries.length === 0) throw new CliError(`no objects in ${paths.join(', ')}; nothing was ${verb}`, 1);
  return entries;
}
