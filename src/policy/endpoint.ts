/** What the engine keeps of each pod: its identity, addresses and named ports. */
import type { Pod } from '../k8s/index.ts';
import type { LabelSet } from '../labels/index.ts';
import type { Protocol } from './model.ts';
import type { NamedPort, NamedPorts } from './ports.ts';

export interface EndpointInfo {
  /** `namespace/name`. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly node?: string;
  readonly serviceAccount: string;
  readonly podLabels: Readonly<Record<string, string>>;
  /** Security-relevant labels, the input of the identity. */
  readonly labels: LabelSet;
  readonly identity: number;
  readonly ips: readonly string[];
  readonly namedPorts: NamedPorts;
}

export function endpointKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function podIps(pod: Pod): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip);
  if (pod.status?.podIP && !ips.includes(pod.status.podIP)) ips.unshift(pod.status.podIP);
  return ips;
}

export function podNamedPorts(pod: Pod): NamedPorts {
  const out = new Map<string, NamedPort[]>();
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) {
      if (p.name === undefined) continue;
      const list = out.get(p.name) ?? [];
      list.push({ port: p.containerPort, protocol: (p.protocol ?? 'TCP') as Protocol });
      out.set(p.name, list);
    }
  }
  return out;
}

/** Whether two endpoint records differ in anything policy or the datapath cares about. */
export function endpointDiffers(a: EndpointInfo, b: EndpointInfo): boolean {
  if (a.identity !== b.identity || a.node !== b.node) return true;
  if (a.ips.length !== b.ips.length || a.ips.some((ip, i) => ip !== b.ips[i])) return true;
  return namedPortsText(a.namedPorts) !== namedPortsText(b.namedPorts);
}

function namedPortsText(p: NamedPorts): string {
  return [...p].map(([n, l]) => `${n}=${l.map((x) => `${x.port}/${x.protocol}`).join('+')}`).sort().join(',');
}
