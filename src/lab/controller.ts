/**
 * The lab controller: the parts of Kubernetes a lab needs besides the API
 * server — a scheduler (pods without spec.nodeName go to the node with the
 * fewest pods) and a kubelet for every node (sandbox, CNI, containers, status).
 *
 *   pod informer ──► schedule (patch spec.nodeName)
 *                ──► per pod, one at a time: start sandbox ─► status Running + podIP
 *                ──► pod deleted ─► stop sandbox (containers, CNI DEL, namespace)
 *   every second ──► restart containers that exited (restartPolicy Always, backoff)
 *
 * It runs in the host's network namespace and reaches the API server on loopback.
 */
import * as k8s from '@kubernetes/client-node';
import { readdir } from 'node:fs/promises';
import type { Pod, Service } from '../k8s/index.ts';
import { rawLister, RawObjectApi } from '../kube-client/index.ts';
import { ServiceController, type EndpointSliceObject } from './service-controller.ts';
import { DNS_POD } from './cluster-dns.ts';
import { publishLab } from './publish.ts';
import { addExternalHost, listExternalHosts, removeExternalHost } from './world/index.ts';
import { kubeconfigPath, labDir, type LabState } from './paths.ts';
import { readSandbox, startContainer, startSandbox, stopSandbox, waitUntilListening, writeSandbox, type SandboxState } from './sandbox.ts';
import { isAlive } from './processes.ts';
import { readLabState } from './state.ts';

type Log = (msg: string) => void;

export async function runController(lab: string, log: Log = (m) => console.log(`${new Date().toISOString()} ${m}`)): Promise<void> {
  const state = await readLabState(lab);
  if (!state) throw new Error(`lab ${lab} has no state file; is it up?`);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath(lab));
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const c = new Controller(lab, state, core, log);
  const watch = (path: string, apiVersion: string, kind: string): k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject> => {
    const informer = k8s.makeInformer(kc, path, rawLister(kc, apiVersion, kind));
    informer.on(k8s.ERROR, (err) => {
      log(`${kind} watch failed: ${String(err)}; restarting`);
      setTimeout(() => void informer.start().catch(() => {}), 1000);
    });
    return informer;
  };
  const pods = watch('/api/v1/pods', 'v1', 'Pod');
  const services = watch('/api/v1/services', 'v1', 'Service');
  const slices = watch('/apis/discovery.k8s.io/v1/endpointslices', 'discovery.k8s.io/v1', 'EndpointSlice');
  const svc = new ServiceController({
    api: RawObjectApi.makeRaw(kc, false),
    pods: () => pods.list() as unknown as Pod[],
    services: () => services.list() as unknown as Service[],
    slices: () => slices.list() as unknown as EndpointSliceObject[],
    lab,
    log,
    onSrvChange: () => c.restartContainerNow(`${DNS_POD.namespace}/${DNS_POD.name}`),
  });
  const on = (o: k8s.KubernetesObject): void => {
    c.observe(o as unknown as Pod);
    svc.changed();
  };
  pods.on(k8s.ADD, on);
  pods.on(k8s.UPDATE, on);
  pods.on(k8s.DELETE, (o) => {
    c.forget(o as unknown as Pod);
    svc.changed();
  });
  for (const ev of [k8s.ADD, k8s.UPDATE, k8s.DELETE] as const) services.on(ev, () => svc.changed());
  const hosts = watch('/apis/lab.palisade.dev/v1/externalhosts', 'lab.palisade.dev/v1', 'ExternalHost');
  const ext = new ExternalHostController(lab, log, RawObjectApi.makeRaw(kc, false));
  hosts.on(k8s.ADD, (o) => ext.observe(o as never));
  hosts.on(k8s.UPDATE, (o) => ext.observe(o as never));
  hosts.on(k8s.DELETE, (o) => ext.forget(o.metadata?.name ?? ''));
  await Promise.all([slices.start(), services.start(), hosts.start()]);
  await ext.removeOrphans(new Set(hosts.list().map((h) => h.metadata?.name ?? '')));
  await pods.start();
  await c.reconcileOrphans(pods.list().map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));
  svc.changed();
  const published = await publishLab(state);
  log(`published: metrics ${Object.values(published.metrics).join(' ')}, Hubble relay ${published.relay}`);
  setInterval(() => void c.restartExited(), 250).unref();
  const stop = (): void => process.exit(0); // sandboxes stay: a restarted controller re-adopts them
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  log(`controller for lab ${lab} running (${state.nodes.length} nodes)`);
}

class Controller {
  readonly #lab: string;
  readonly #state: LabState;
  readonly #core: k8s.CoreV1Api;
  readonly #log: Log;
  readonly #pods = new Map<string, Pod>();
  readonly #sandboxes = new Map<string, SandboxState>();
  /** One operation per pod at a time, in arrival order. */
  readonly #queues = new Map<string, Promise<void>>();

  constructor(lab: string, state: LabState, core: k8s.CoreV1Api, log: Log) {
    this.#lab = lab;
    this.#state = state;
    this.#core = core;
    this.#log = log;
  }

  observe(pod: Pod): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    this.#pods.set(key, pod);
    this.#enqueue(key, () => this.#sync(key));
  }

  forget(pod: Pod): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    this.#pods.delete(key);
    this.#enqueue(key, () => this.#sync(key));
  }

  #enqueue(key: string, op: () => Promise<void>): void {
    const prev = this.#queues.get(key) ?? Promise.resolve();
    const next = prev.then(op).catch((err: unknown) => this.#log(`${key}: ${err instanceof Error ? err.message : String(err)}`));
    this.#queues.set(key, next);
  }

  async #sync(key: string): Promise<void> {
    const pod = this.#pods.get(key);
    const [ns = '', name = ''] = key.split('/');
    let sandbox = this.#sandboxes.get(key) ?? (await readSandbox(this.#lab, ns, name));
    if (sandbox && (!pod || (pod.metadata.uid && sandbox.uid !== pod.metadata.uid))) {
      // Deleted, or deleted and re-created under the same name: the old sandbox goes.
      await stopSandbox(this.#lab, sandbox);
      this.#sandboxes.delete(key);
      this.#log(`${key}: sandbox removed`);
      sandbox = undefined;
    }
    if (!pod) return;
    if (!pod.spec.nodeName) {
      await this.#schedule(pod);
      return;
    }
    if (sandbox) {
      this.#sandboxes.set(key, sandbox);
      return;
    }
    const node = this.#state.nodes.find((n) => n.name === pod.spec.nodeName);
    if (!node) {
      await this.#setStatus(pod, { phase: 'Pending', message: `node ${pod.spec.nodeName} does not exist in lab ${this.#lab}` });
      return;
    }
    try {
      const s = await startSandbox(this.#lab, pod, node.name);
      this.#sandboxes.set(key, s);
      const missing = await waitUntilListening(pod, s.netns, 15_000);
      if (missing.length > 0) this.#log(`${key}: still not listening on ${missing.join(', ')} after 15 s; reporting it running anyway`);
      await this.#setStatus(pod, {
        phase: 'Running',
        podIP: s.ip,
        podIPs: [{ ip: s.ip }],
        hostIP: node.underlayIp,
        conditions: [{ type: 'Ready', status: 'True' }],
        // What kubectl's READY and RESTARTS columns read.
        containerStatuses: pod.spec.containers.map((c) => ({ name: c.name, ready: true, started: true, restartCount: 0, state: { running: {} } })),
      });
      this.#log(`${key}: running on ${node.name} at ${s.ip}`);
    } catch (err) {
      await this.#setStatus(pod, { phase: 'Pending', message: err instanceof Error ? err.message : String(err) });
      throw err;
    }
  }

  async #schedule(pod: Pod): Promise<void> {
    const load = new Map(this.#state.nodes.map((n) => [n.name, 0]));
    for (const p of this.#pods.values()) if (p.spec.nodeName) load.set(p.spec.nodeName, (load.get(p.spec.nodeName) ?? 0) + 1);
    const [node] = [...load].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0] ?? [];
    if (!node) return;
    await this.#core.patchNamespacedPod(
      { namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name, body: { spec: { nodeName: node } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  async #setStatus(pod: Pod, status: Record<string, unknown>): Promise<void> {
    await this.#core.patchNamespacedPodStatus(
      { namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name, body: { status } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  /** Sandboxes on disk whose pod no longer exists (deleted while the controller was down). */
  async reconcileOrphans(live: string[]): Promise<void> {
    const keep = new Set(live);
    let dirs: string[] = [];
    try {
      dirs = await readdir(`${labDir(this.#lab)}/pods`);
    } catch {
      return;
    }
    for (const d of dirs) {
      const [ns = '', ...rest] = d.split('_');
      const key = `${ns}/${rest.join('_')}`;
      if (!keep.has(key)) this.#enqueue(key, () => this.#sync(key));
    }
  }

  /** Restarts a pod's containers at once (cluster DNS re-reading its configuration). */
  restartContainerNow(key: string): void {
    const s = this.#sandboxes.get(key);
    if (!s) return;
    for (const c of Object.values(s.containers)) {
      if (c.pid <= 0) continue;
      try {
        process.kill(-c.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      c.nextAt = 0;
      c.restarts = 0; // a deliberate restart is no crash: no backoff
    }
    this.#log(`${key}: restarted to reload its configuration`);
  }

  /** restartPolicy Always: a container that exited is started again, with a growing delay. */
  async restartExited(): Promise<void> {
    for (const [key, s] of this.#sandboxes) {
      const pod = this.#pods.get(key);
      if (!pod) continue;
      for (const [name, c] of Object.entries(s.containers)) {
        if (c.pid <= 0 || isAlive(c.pid)) continue;
        const backoff = Math.min(10, 2 ** c.restarts);
        if ((c.nextAt ?? 0) > Date.now()) continue;
        c.pid = startContainer(this.#lab, pod, name, s.netns, s.ip);
        c.nextAt = Date.now() + backoff * 1000;
        c.restarts++;
        await writeSandbox(this.#lab, s);
        this.#log(`${key}: container ${name} exited; restarted (${c.restarts})`);
      }
    }
  }
}

/**
 * ExternalHost objects → hosts outside the cluster (src/lab/world): made on
 * add, re-made when their spec changes, removed on delete; hosts left from
 * objects deleted while the controller was down are removed at start.
 */
export class ExternalHostController {
  readonly #lab: string;
  readonly #log: Log;
  readonly #api: RawObjectApi | undefined;
  readonly #applied = new Map<string, string>();
  #queue: Promise<void> = Promise.resolve();

  /** With `api`, each host's address is written back to its object's status (`get externalhosts` shows it). */
  constructor(lab: string, log: Log, api?: RawObjectApi) {
    this.#lab = lab;
    this.#log = log;
    this.#api = api;
  }

  observe(o: { metadata?: { name?: string }; spec?: { names?: string[]; ports?: number[]; addresses?: string[] } }): void {
    const name = o.metadata?.name;
    if (!name) return;
    const spec = { name, names: o.spec?.names ?? [], ...(o.spec?.ports ? { ports: o.spec.ports } : {}), ...(o.spec?.addresses ? { addresses: o.spec.addresses } : {}) };
    const text = JSON.stringify(spec);
    if (this.#applied.get(name) === text) return;
    this.#applied.set(name, text);
    this.#run(`externalhost ${name}`, async () => {
      const h = await addExternalHost(this.#lab, spec);
      this.#log(`externalhost ${name}: ${spec.names.join(', ')} at ${h.ip}`);
      await this.#api?.patch(
        { apiVersion: 'lab.palisade.dev/v1', kind: 'ExternalHost', metadata: { name }, status: { ip: h.ip } } as k8s.KubernetesObject,
        undefined, undefined, undefined, undefined, k8s.PatchStrategy.MergePatch,
      );
    });
  }

  forget(name: string): void {
    this.#applied.delete(name);
    this.#run(`externalhost ${name}`, async () => {
      await removeExternalHost(this.#lab, name);
      this.#log(`externalhost ${name}: removed`);
    });
  }

  async removeOrphans(live: Set<string>): Promise<void> {
    for (const h of await listExternalHosts(this.#lab)) if (!live.has(h.name)) this.forget(h.name);
  }

  #run(what: string, op: () => Promise<void>): void {
    this.#queue = this.#queue.then(op).catch((err: unknown) => this.#log(`${what}: ${err instanceof Error ? err.message : String(err)}`));
  }
}
