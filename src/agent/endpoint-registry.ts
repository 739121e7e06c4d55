/**
 * The pods of this node, as the CNI plugin registered them. Kept on disk so a
 * restarted agent knows its endpoints before the first packet needs them.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { LocalEndpoint } from '../datapath/index.ts';
import { EndpointRegistration as Registration } from '../cni/index.ts';

// The CNI plugin's own schema: what it sends is exactly what the API accepts and the registry keeps.
export { Registration };

export class EndpointRegistry {
  readonly #file: string;
  readonly #byContainer = new Map<string, Registration>();

  constructor(file: string) {
    this.#file = file;
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch {
      return; // first start
    }
    for (const r of JSON.parse(text) as unknown[]) {
      const parsed = Registration.safeParse(r);
      if (parsed.success) this.#byContainer.set(parsed.data.containerId, parsed.data);
    }
  }

  async add(r: Registration): Promise<void> {
    // A pod has one sandbox: a new registration replaces an older one of the same pod.
    for (const [id, old] of this.#byContainer) {
      if (old.namespace === r.namespace && old.pod === r.pod && id !== r.containerId) this.#byContainer.delete(id);
    }
    this.#byContainer.set(r.containerId, r);
    await this.#save();
  }

  async remove(containerId: string): Promise<Registration | undefined> {
    const r = this.#byContainer.get(containerId);
    if (r) {
      this.#byContainer.delete(containerId);
      await this.#save();
    }
    return r;
  }

  byPod(namespace: string, pod: string): Registration | undefined {
    for (const r of this.#byContainer.values()) if (r.namespace === namespace && r.pod === pod) return r;
    return undefined;
  }

  all(): Registration[] {
    return [...this.#byContainer.values()];
  }

  localEndpoints(): LocalEndpoint[] {
    return this.all().map((r) => ({ key: `${r.namespace}/${r.pod}`, ip: r.ip, hostIfname: r.hostIfname, containerId: r.containerId }));
  }

  /**
   * Saves run one after another: registrations of pods starting together
   * (one CNI ADD each) once raced on the one temporary file, and the second
   * rename failed with ENOENT, refusing that pod's endpoint.
   */
  #saving: Promise<void> = Promise.resolve();
  #save(): Promise<void> {
    const next = this.#saving.then(async () => {
      const tmp = `${this.#file}.tmp`;
      await writeFile(tmp, JSON.stringify(this.all(), null, 1));
      await rename(tmp, this.#file);
    });
    this.#saving = next.catch(() => undefined);
    return next;
  }
}
