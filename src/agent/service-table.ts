/**
 * Services and EndpointSlices → the ServiceEntry list the datapath programs.
 * A Service port finds its backends in the slices labelled with the Service's
 * name (kubernetes.io/service-name), by port name; only ready endpoints serve.
 */
import type { ServiceEntry } from '../datapath/index.ts';
import type { Service } from '../k8s/index.ts';

export interface EndpointSlice {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  addressType?: string;
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean }; nodeName?: string }[];
  ports?: { name?: string; port?: number; protocol?: string }[];
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export function serviceEntries(services: Iterable<Service>, slices: Iterable<EndpointSlice>): ServiceEntry[] {
  const byService = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!svc || (s.addressType ?? 'IPv4') !== 'IPv4') continue;
    const key = `${s.metadata.namespace ?? 'default'}/${svc}`;
    byService.set(key, [...(byService.get(key) ?? []), s]);
  }
  const out: ServiceEntry[] = [];
  for (const svc of services) {
    const ip = svc.spec.clusterIP;
    if (!ip || ip === 'None') continue;
    const key = `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
    for (const p of svc.spec.ports ?? []) {
      const protocol = p.protocol ?? 'TCP';
      const backends: { ip: string; port: number }[] = [];
      for (const slice of byService.get(key) ?? []) {
        const sp = slice.ports?.find((x) => (x.name ?? '') === (p.name ?? '') && (x.protocol ?? 'TCP') === protocol);
        if (sp?.port === undefined) continue;
        for (const e of slice.endpoints ?? []) {
          if (e.conditions?.ready === false) continue;
          for (const a of e.addresses) backends.push({ ip: a, port: sp.port });
        }
      }
      out.push({ key: `${key}:${p.port}/${protocol}`, clusterIP: ip, port: p.port, protocol, backends });
    }
  }
  return out;
}
