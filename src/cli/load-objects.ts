/** Loads manifests for a command and stops with every fault listed when any file is faulty. */
import { loadManifests, type ManifestEntry } from '../k8s/index.ts';
import { faultsError } from './kube-manifests.ts';

export async function loadObjectsOrFail(paths: string[]): Promise<ManifestEntry[]> {
  const files = await loadManifests(paths);
  const faults = files.flatMap((f) => f.faults);
  if (faults.length > 0) throw faultsError(faults, 'nothing was used', '');
  return files.flatMap((f) => f.entries);
}
