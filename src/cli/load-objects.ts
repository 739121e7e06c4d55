/** Loads manifests for a command and stops with every fault listed when any file is faulty. */
import { formatFault, loadManifests, type ManifestEntry } from '../k8s/manifest/index.ts';
import { CliError, red } from './style.ts';

export async function loadObjectsOrFail(paths: string[]): Promise<ManifestEntry[]> {
  const files = await loadManifests(paths);
  const faults = files.flatMap((f) => f.faults);
  if (faults.length > 0) {
    const lines = faults.map((f) => `  ${red('✗')} ${formatFault(f)}`);
    throw new CliError(`${faults.length} fault${faults.length === 1 ? '' : 's'}; nothing was used:\n${lines.join('\n')}`, 1);
  }
  return files.flatMap((f) => f.entries);
}
