/**
 * The lab's Service machinery, as kube-controller-manager and the API server
 * do it in a cluster:
 *
 *   Service without clusterIP ──► allocate one in the service range (patch spec.clusterIP)
 *   Services + running Pods   ──► EndpointSlices (one per Service and backend port layout)
 *   Services                  ──► cluster DNS records (cluster-dns.ts)
 *
 * Everything is recomputed from the informers' caches on each change
 * (coalesced), so a missed event can never leave a stale slice behind.
 */
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Pod, Service } from '../k8s/index.ts';
import type { RawObjectApi } from '../kube-client/index.ts';
import { labelsMatch, serviceSelector } from '../k8s/index.ts';
import { KUBE_DNS_IP, renderDnsRecords, writeDnsRecords } from './cluster-dns.ts';

export interface EndpointSliceObject {
  apiVersion: 'discovery.k8s.io/v1';
  kind: 'EndpointSlice';
  metadata: { name: string; namespace: string; labels: Record<string, string>; resourceVersion?: string };
  addressType: 'IPv4';
  endpoints: { addresses: string[]; conditions: { ready: boolean; serving: boolean; terminating: boolean }; nodeName?: string; targetRef: { kind: 'Pod'; namespace: string; name: string; uid?: string } }[];
  ports: { name: string; port: number; protocol: string }[];
}

export const MANAGED_BY = 'lab.palisade.dev';
const SERVICE_NAME = 'kubernetes.io/service-name';

export interface ServiceControllerDeps {
  api: RawObjectApi;
  pods: () => Pod[];
  services: () => Service[];
  slices: () => EndpointSliceObject[];
  lab: string;
  log: (m: string) => void;
  /** Called when named ports changed, so cluster DNS must reload its SRV records. */
  onSrvChange: () => void;
}

export class ServiceController {
  readonly #d: ServiceControllerDeps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(deps: ServiceControllerDeps) {
    this.#d = deps;
  }

  /** Something changed: reconcile soon (bursts coalesce into one pass). */
  changed(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#running.then(() => this.reconcile()).catch((err: unknown) => this.#d.log(`services: ${String(err)}`));
    }, 20);
  }

  async reconcile(): Promise<void> {
    const services = this.#d.services();
    await this.#allocateClusterIPs(services);
    const pods = this.#d.pods();
    const desired = new Map<string, EndpointSliceObject>();
    for (const svc of services) for (const s of desiredSlices(svc, pods)) desired.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
    const existing = new Map(
      this.#d.slices().filter((s) => s.metadata.labels?.['endpointslice.kubernetes.io/managed-by'] === MANAGED_BY).map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]),
    );
    for (const [key, want] of desired) {
      const have = existing.get(key);
      if (!have) await this.#d.api.create(want as unknown as k8s.KubernetesObject);
      else if (JSON.stringify([have.endpoints ?? [], have.ports ?? []]) !== JSON.stringify([want.endpoints, want.ports])) {
        const next = { ...want, metadata: { ...want.metadata, resourceVersion: have.metadata.resourceVersion } };
        await this.#d.api.replace(next as unknown as k8s.KubernetesObject);
      }
    }
    for (const [key, have] of existing) {
      if (!desired.has(key)) await this.#d.api.delete(have as unknown as k8s.KubernetesObject).catch(() => undefined);
    }
    if (await writeDnsRecords(this.#d.lab, renderDnsRecords(services))) this.#d.onSrvChange();
  }

  async #allocateClusterIPs(services: Service[]): Promise<void> {
    const used = new Set(services.map((s) => s.spec.clusterIP).filter((ip): ip is string => !!ip));
    used.add(KUBE_DNS_IP);
    for (const s of services) {
      if (s.spec.clusterIP) continue;
      const ip = allocate(`${s.metadata.namespace}/${s.metadata.name}`, used);
      used.add(ip);
      s.spec.clusterIP = ip; // seen by this pass already; the patch makes it durable
      const patch = { apiVersion: 'v1', kind: 'Service', metadata: { name: s.metadata.name, namespace: s.metadata.namespace ?? 'default' }, spec: { clusterIP: ip, clusterIPs: [ip] } };
      await this.#d.api.patch(patch, undefined, undefined, 'palisade-lab', undefined, k8s.PatchStrategy.MergePatch);
      this.#d.log(`service ${s.metadata.namespace}/${s.metadata.name}: clusterIP ${ip}`);
    }
  }
}

/** A stable address in 10.96.1.0–10.96.255.254 from the Service's name, probing past taken ones. */
export function allocate(key: string, used: ReadonlySet<string>): string {
  const span = 255 * 254;
  let n = createHash('sha256').update(key).digest().readUInt32BE(0) % span;
  for (let i = 0; i < span; i++, n = (n + 1) % span) {
    const ip = `10.96.${1 + Math.floor(n / 254)}.${1 + (n % 254)}`;
    if (!used.has(ip)) return ip;
  }
  throw new Error('the service range 10.96.0.0/16 is full');
}

/**
 * The slices a Service should have: its ready pods, grouped by how its ports
 * resolve on them (a named targetPort may mean a different number per pod).
 */
export function desiredSlices(svc: Service, pods: Pod[]): EndpointSliceObject[] {
  const selector = serviceSelector(svc);
  if (!selector) return [];
  const ns = svc.metadata.namespace ?? 'default';
  const groups = new Map<string, { ports: EndpointSliceObject['ports']; endpoints: EndpointSliceObject['endpoints'] }>();
  for (const pod of pods) {
    if ((pod.metadata.namespace ?? 'default') !== ns || !labelsMatch(selector, pod.metadata.labels ?? {})) continue;
    const ip = pod.status?.podIP;
    if (!ip || pod.status?.phase !== 'Running' || pod.metadata.deletionTimestamp) continue;
    const ports: EndpointSliceObject['ports'] = [];
    for (const p of svc.spec.ports ?? []) {
      let port: number | undefined = typeof p.targetPort === 'number' ? p.targetPort : p.targetPort === undefined ? p.port : undefined;
      if (typeof p.targetPort === 'string') {
        for (const c of pod.spec.containers) for (const cp of c.ports ?? []) if (cp.name === p.targetPort) port = cp.containerPort;
      }
      if (port !== undefined) ports.push({ name: p.name ?? '', port, protocol: p.protocol ?? 'TCP' });
    }
    const sig = JSON.stringify(ports);
    const g = groups.get(sig) ?? { ports, endpoints: [] };
    g.endpoints.push({
      addresses: [ip],
      conditions: { ready: true, serving: true, terminating: false },
      ...(pod.spec.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      targetRef: { kind: 'Pod', namespace: ns, name: pod.metadata.name, ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}) },
    });
    groups.set(sig, g);
  }
  const out: EndpointSliceObject[] = [];
  let i = 0;
  // A Service whose pods are all gone keeps one empty slice: "no endpoints" is news too.
  if (groups.size === 0) groups.set('[]', { ports: [], endpoints: [] });
  for (const g of [...groups.values()].sort((a, b) => JSON.stringify(a.ports).localeCompare(JSON.stringify(b.ports)))) {
    g.endpoints.sort((a, b) => a.targetRef.name.localeCompare(b.targetRef.name));
    out.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: i === 0 ? svc.metadata.name : `${svc.metadata.name}-${i}`,
        namespace: ns,
        labels: { [SERVICE_NAME]: svc.metadata.name, 'endpointslice.kubernetes.io/managed-by': MANAGED_BY },
      },
      addressType: 'IPv4',
      endpoints: g.endpoints,
      ports: g.ports,
    });
    i++;
  }
  return out;
}
